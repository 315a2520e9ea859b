/**
 * The web UI's controls, found only by role, label and text (the names the
 * page gives them in web/src/), so the tests read like a person using the
 * page and a renamed control fails loudly here.
 */
import type { Locator, Page } from "playwright-core";

/** Form fields by their control's name in `playground()`; values typed as a person would. */
export type FormValues = Partial<Record<"prompt" | "negativePrompt" | "width" | "height" | "steps" | "seed" | "images", string | number>>;

export function playground(page: Page) {
  const byRole = page.getByRole.bind(page);
  const gallery = byRole("region", { name: "Gallery" });
  const controls = {
    apiKey: page.getByLabel("API key", { exact: true }),
    playgroundLink: byRole("link", { name: "Playground", exact: true }),
    graphLink: byRole("link", { name: "Graph", exact: true }),
    model: page.getByLabel("Model", { exact: true }),
    mode: byRole("radiogroup", { name: "Mode" }),
    generateMode: byRole("radio", { name: "Generate", exact: true }),
    editMode: byRole("radio", { name: "Edit", exact: true }),
    prompt: byRole("textbox", { name: "Prompt", exact: true }),
    negativePrompt: byRole("textbox", { name: "Negative prompt", exact: true }),
    width: byRole("spinbutton", { name: /^Width\b/ }),
    height: byRole("spinbutton", { name: /^Height\b/ }),
    steps: byRole("spinbutton", { name: /^Steps\b/ }),
    guidance: byRole("spinbutton", { name: /^Guidance scale\b/ }),
    seed: byRole("spinbutton", { name: /^Seed\b/ }),
    images: byRole("spinbutton", { name: /^Images\b/ }),
    strength: byRole("spinbutton", { name: /^Strength\b/ }),
    generate: byRole("button", { name: "Generate", exact: true }),
    runEdit: byRole("button", { name: "Run edit", exact: true }),
    cancel: byRole("button", { name: "Cancel", exact: true }),
    progress: byRole("progressbar", { name: "Progress" }),
    /** The playground's status line (the graph view's "Live" status is another one). */
    status: byRole("status").filter({ hasNotText: /^\s*Live\b/ }).first(),
    alert: byRole("alert"),
    preview: byRole("img", { name: "Preview", exact: true }),
    gallery,
    /** Gallery items showing a result of `prompt`. */
    results: (prompt: string): Locator => gallery.getByRole("listitem").filter({ has: byRole("img", { name: `Result: ${prompt}`, exact: true }) }),
    sourceImage: page.getByLabel("Source image", { exact: true }),
    mask: page.getByLabel("Mask", { exact: true }),
    brushSize: byRole("slider", { name: /^Brush size\b/ }),
    clearMask: byRole("button", { name: "Clear mask", exact: true }),
  };
  return {
    ...controls,
    /** Types each value into its field, in the object's order. */
    async fill(values: FormValues): Promise<void> {
      for (const [field, value] of Object.entries(values) as [keyof FormValues, string | number][]) await controls[field].fill(String(value));
    },
  };
}

/** What the page's alert says now ("" when there is none or it is empty: a live region may stay in place). */
export async function alertText(page: Page): Promise<string> {
  const alert = page.getByRole("alert");
  return (await alert.count()) === 0 ? "" : ((await alert.textContent()) ?? "").trim();
}

export function graphView(page: Page, name: string) {
  return {
    heading: page.getByRole("heading", { name: `Graph: ${name}`, exact: true }),
    drawing: page.getByRole("group", { name: `Graph of ${name}`, exact: true }),
    /** A node of the drawing, by "<node name> (<calculator>)". */
    node(nodeName: string, calculator: string): Locator {
      return page.getByRole("group", { name: `Graph of ${name}`, exact: true }).getByRole("button", { name: `${nodeName} (${calculator})`, exact: true });
    },
    details: page.getByRole("region", { name: "Node details", exact: true }),
    live: page.getByRole("status").filter({ hasText: /Live/i }),
  };
}

/** The "<processed> done · <mean> ms · <active> active" numbers of a node's text, or undefined when absent. */
export function parseNodeStats(text: string): { done: number; active: number } | undefined {
  const done = /(\d+)\s*done/.exec(text);
  const active = /(\d+)\s*active/.exec(text);
  if (done === null || active === null) return undefined;
  return { done: Number(done[1]), active: Number(active[1]) };
}
