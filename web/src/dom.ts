/** A small element builder: tag, attributes (false/null/undefined leave one out), children. */
export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Readonly<Record<string, string | number | boolean | null | undefined>> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child);
  return el;
}

/** A labelled control in a wrapper: `<div class="field"><label for=id>text</label>control</div>`. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLDivElement {
  const wrap = h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  if (hint !== undefined) {
    const hintEl = h("small", { id: `${control.id}-hint`, class: "hint" }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
    wrap.append(hintEl);
  }
  return wrap;
}
