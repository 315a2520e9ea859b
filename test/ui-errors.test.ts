/**
 * Server errors in a real browser: each shows as a sentence in the page's
 * alert (never the server's raw JSON or the engine's internals): a size the
 * model does not allow, a missing API key, a server that went away.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { browserSkip, openBrowser, waitUntil } from "./helpers/browser.js";
import { startDemoServer } from "./helpers/demo-server.js";
import { alertText, playground } from "./helpers/ui.js";

/** The alert's text once it shows, checked to read as words rather than a dump. */
async function readableAlert(page: Page): Promise<string> {
  const ui = playground(page);
  await ui.alert.waitFor();
  const text = await waitUntil(async () => ((await ui.alert.textContent()) ?? "").trim(), (s) => s !== "", "the alert to say something");
  assert.doesNotMatch(text, /[{}]|"error"|invalid_request_error|MP status|CalculatorGraph|Mediapipe execution failed/, `a message for a person: ${text}`);
  assert.match(text, /^[A-Z].*\w.*\s\w/, `a sentence: ${text}`);
  return text;
}

async function openPlayground(page: Page, url: string, prompt: string) {
  await page.goto(`${url}/#/`);
  const ui = playground(page);
  await waitUntil(() => ui.model.inputValue(), (v) => v === "demo", 'the Model select to offer "demo"');
  await ui.fill({ prompt, steps: 2 });
  return ui;
}

test("ui-errors: a size larger than the model allows is explained", { skip: browserSkip, timeout: 60_000 }, async (t) => {
  const server = await startDemoServer(t);
  const session = await openBrowser(t);
  session.allow(/^console error: Failed to load resource: the server responded with a status of 400 \(Bad Request\) \(\S+\/v3\/images\/generations\)$/);
  const ui = await openPlayground(session.page, server.url, "too big");
  await ui.fill({ width: 2048, height: 2048 });
  const answered = session.page.waitForResponse((r) => new URL(r.url()).pathname === "/v3/images/generations");
  await ui.generate.click();
  assert.equal((await answered).status(), 400);
  const text = await readableAlert(session.page);
  t.diagnostic(`alert: ${text}`);
  assert.match(text, /2048x2048/, "names the size asked for");
  assert.match(text, /1024x1024/, "names the largest size allowed");
  assert.equal(await ui.results("too big").count(), 0);
});

test("ui-errors: a server that needs an API key says so, and the key from the header fixes it", { skip: browserSkip, timeout: 60_000 }, async (t) => {
  const key = "browser-test-key";
  const server = await startDemoServer(t, { apiKey: key });
  const session = await openBrowser(t);
  session.allow(/^console error: Failed to load resource: the server responded with a status of 401 \(Unauthorized\) /);
  const ui = await openPlayground(session.page, server.url, "locked");
  await ui.generate.click();
  const text = await readableAlert(session.page);
  t.diagnostic(`alert: ${text}`);
  assert.match(text, /API key/i, "points at the API key");

  await ui.apiKey.fill(key);
  await ui.generate.click();
  await ui.results("locked").waitFor();
  await waitUntil(() => alertText(session.page), (s) => s === "", "the alert to clear after a success");

  // The key is remembered across reloads.
  await session.page.reload();
  await waitUntil(() => ui.apiKey.inputValue(), (v) => v === key, "the API key to be kept after a reload");
});

test("ui-errors: a server that went away is reported as unreachable", { skip: browserSkip, timeout: 60_000 }, async (t) => {
  const server = await startDemoServer(t);
  const session = await openBrowser(t);
  session.allow(/^request failed: \S+ \S+ \(net::ERR_CONNECTION_REFUSED\)$/);
  session.allow(/^console error: Failed to load resource: net::ERR_CONNECTION_REFUSED /);
  const ui = await openPlayground(session.page, server.url, "nobody home");
  await server.stop();
  await ui.generate.click();
  const text = await readableAlert(session.page);
  t.diagnostic(`alert: ${text}`);
  assert.match(text, /reach|connect/i, "says the server cannot be reached");
});
