/**
 * Debian's chromium, driven headless by playwright-core, for the browser
 * tests. Each page records the console errors, uncaught exceptions and
 * failed requests it sees; when the test ends (passed or failed) the page is
 * photographed into test-output/screenshots/<test name>.png, the browser
 * closed, and any problem the test did not declare expected fails the test.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium, type Page } from "playwright-core";
import { onCleanup } from "./cleanup.js";

/** Debian's chromium (CI installs it); the CHROMIUM_PATH environment variable overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
/** Under the repository root (from `<outDir>/test/helpers/`); gitignored. */
export const SCREENSHOT_DIR = fileURLToPath(new URL("../../../test-output/screenshots/", import.meta.url));

const IN_CI = process.env.CI === "true";

/**
 * The `skip` option for browser tests: a reason when chromium is missing
 * locally; false in CI, where a missing browser must fail instead.
 */
export const browserSkip: string | false =
  existsSync(CHROMIUM_PATH) || IN_CI ? false : `${CHROMIUM_PATH} is missing: install Debian's chromium (apt-get install chromium) to run the browser tests`;

/** Waits on conditions default to this; individual waits may pass longer ones. */
export const UI_TIMEOUT_MS = 20_000;

export interface BrowserSession {
  readonly page: Page;
  /** Declares console errors / failed requests matching `pattern` expected (an answered 401, an aborted fetch). */
  allow(pattern: RegExp): void;
  /** Problems seen so far that no allow() pattern matches. */
  problems(): readonly string[];
  /** A full-page screenshot as `<test name>--<label>.png`; returns its path. */
  screenshot(label: string): Promise<string>;
}

export function screenshotName(testName: string, label?: string): string {
  const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `${slug(testName)}${label === undefined ? "" : `--${slug(label)}`}.png`;
}

/** Launches chromium with one page; everything is closed when the test ends, before cleanups registered earlier (its server). */
export async function openBrowser(t: TestContext): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing${IN_CI ? " in CI: .ci/run must install Debian's chromium" : ""}`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const seen: string[] = [];
  const allowed: RegExp[] = [];
  const problems = () => seen.filter((p) => !allowed.some((re) => re.test(p)));
  let page: Page | undefined;
  const shoot = async (file: string) => {
    const path = join(SCREENSHOT_DIR, file);
    await page!.screenshot({ path, fullPage: true });
    return path;
  };
  onCleanup(t, async () => {
    try {
      if (page !== undefined && !page.isClosed()) await shoot(screenshotName(t.name));
    } catch (e) {
      t.diagnostic(`no screenshot: ${(e as Error).message}`);
    } finally {
      await browser.close();
    }
    const unexpected = problems();
    if (unexpected.length > 0) throw new Error(`the page reported unexpected problems:\n  ${unexpected.join("\n  ")}`);
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.on("console", (msg) => {
    if (msg.type() === "error") seen.push(`console error: ${msg.text()} (${msg.location().url})`);
  });
  page.on("pageerror", (err) => seen.push(`uncaught exception: ${err.message}`));
  page.on("requestfailed", (req) => seen.push(`request failed: ${req.method()} ${req.url()} (${req.failure()?.errorText ?? "?"})`));
  return {
    page,
    allow: (pattern) => void allowed.push(pattern),
    problems,
    screenshot: (label) => shoot(screenshotName(t.name, label)),
  };
}

/**
 * Polls `read` until `ok` holds for its value (expect-style), returning that
 * value; on timeout the error names what was awaited and the last value seen.
 */
export async function waitUntil<T>(read: () => T | Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = UI_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await read();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
