/**
 * Records, inside the page, every value the playground's Preview image and
 * Progress bar take and when each Result image appears. A MutationObserver
 * sees changes a poller would miss (a tiny model streams a step in a few
 * milliseconds); attributeOldValue keeps values that were replaced before the
 * observer ran. Elements are recognised by their contract names (alt text,
 * role), as the tests' locators are.
 */
import type { Page } from "playwright-core";

export interface Recording {
  /** Distinct consecutive Preview src values (shortened), with the time (ms since the epoch) each was seen. */
  readonly previews: readonly { readonly src: string; readonly t: number }[];
  /** Every aria-valuenow the Progress bar took (consecutive repeats dropped). */
  readonly progress: readonly { readonly value: number; readonly max: number; readonly t: number }[];
  /** Result images as they were added to the page. */
  readonly results: readonly { readonly alt: string; readonly t: number }[];
}

// Plain JavaScript, run in the page before its own scripts (the tests compile without the DOM types).
const RECORDER = `(() => {
  const log = { previews: [], progress: [], results: [] };
  Object.defineProperty(window, "__uiRecording", { value: log });
  const short = (src) => src.length <= 96 ? src : src.slice(0, 40) + "…" + src.length + "…" + src.slice(-40);
  const notePreview = (src) => {
    if (src === null || src === "") return;
    const s = short(src);
    if (log.previews.at(-1)?.src !== s) log.previews.push({ src: s, t: Date.now() });
  };
  const noteProgress = (el, value) => {
    if (value === null || value === "" || log.progress.at(-1)?.value === Number(value)) return;
    log.progress.push({ value: Number(value), max: Number(el.getAttribute("aria-valuemax")), t: Date.now() });
  };
  const isPreview = (el) => el.localName === "img" && el.getAttribute("alt") === "Preview";
  const isProgress = (el) => el.getAttribute("role") === "progressbar";
  const scan = (root) => {
    if (root.nodeType !== 1) return;
    for (const el of [root, ...root.querySelectorAll("img, [role=progressbar]")]) {
      if (isPreview(el)) notePreview(el.getAttribute("src"));
      else if (el.localName === "img" && (el.getAttribute("alt") ?? "").startsWith("Result: ")) log.results.push({ alt: el.getAttribute("alt"), t: Date.now() });
      if (isProgress(el)) noteProgress(el, el.getAttribute("aria-valuenow"));
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "childList") {
        r.addedNodes.forEach(scan);
        continue;
      }
      const el = r.target;
      // Replay the value this mutation replaced; the latest value is read after the loop.
      if (r.attributeName === "src" && isPreview(el)) notePreview(r.oldValue);
      if (r.attributeName === "aria-valuenow" && isProgress(el) && r.oldValue !== null) noteProgress(el, r.oldValue);
    }
    for (const r of records) if (r.type === "attributes") {
      const el = r.target;
      if (r.attributeName === "src" && isPreview(el)) notePreview(el.getAttribute("src"));
      if (r.attributeName === "aria-valuenow" && isProgress(el)) noteProgress(el, el.getAttribute("aria-valuenow"));
      if (r.attributeName === "alt") scan(el);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeOldValue: true, attributeFilter: ["src", "alt", "aria-valuenow"] });
})();`;

/** Installs the recorder for every document the page loads from now on. */
export async function installRecorder(page: Page): Promise<void> {
  await page.addInitScript({ content: RECORDER });
}

export async function readRecording(page: Page): Promise<Recording> {
  return (await page.evaluate("window.__uiRecording")) as Recording;
}

/** Distinct values in order of first appearance. */
export function distinct<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
