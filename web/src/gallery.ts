/**
 * Results of this visit, newest first, kept in memory: each with the
 * settings that made it (seed included, so it can be made again), and
 * "Reuse settings", "Edit this image" and "Download".
 */
import { h } from "./dom.js";
import { resultFileName, type ImageSettings } from "./image-request.js";

export interface GalleryItem {
  readonly blob: Blob;
  /** Settings as run, with the seed the server used. */
  readonly settings: ImageSettings;
  readonly imageIndex: number;
  readonly format: string;
  /** "WxH" of the image itself. */
  readonly size: string;
  /** Which request made it: a request's images stay together, in order. */
  readonly runId: number;
}

export interface Gallery {
  readonly element: HTMLElement;
  add(item: GalleryItem): void;
  onReuse: (item: GalleryItem) => void;
  onEdit: (item: GalleryItem) => void;
}

/** Older results are dropped (and their memory freed) past this many. */
const MAX_ITEMS = 60;

/** "512x512 · 20 steps · guidance 7.5 · seed 42 · generate". */
export function describeItem(item: GalleryItem): string {
  const s = item.settings;
  const parts = [item.size, `${s.steps} steps`, `guidance ${s.guidanceScale}`, `seed ${s.seed ?? "unknown"}`, s.mode];
  if (s.mode === "edit") parts.push(`strength ${s.strength}`);
  if (s.n > 1) parts.push(`image ${item.imageIndex + 1} of ${s.n}`);
  return parts.join(" · ");
}

export function createGallery(): Gallery {
  const list = h("ul", { class: "gallery-list" });
  const empty = h("p", { class: "gallery-empty" }, "Finished images collect here.");
  const element = h("section", { class: "gallery", "aria-labelledby": "gallery-heading" }, h("h2", { id: "gallery-heading" }, "Gallery"), empty, list);
  const urls = new Map<HTMLLIElement, string>();
  let lastRun: { id: number; li: HTMLLIElement } | null = null;

  const gallery: Gallery = {
    element,
    add(item) {
      const url = URL.createObjectURL(item.blob);
      const s = item.settings;
      const reuse = h("button", { type: "button" }, "Reuse settings");
      const edit = h("button", { type: "button" }, "Edit this image");
      const li = h(
        "li",
        {},
        h("img", { src: url, alt: `Result: ${s.prompt}`, loading: "lazy" }),
        h(
          "div",
          { class: "meta" },
          h("p", { class: "prompt" }, s.prompt),
          h("p", { class: "params" }, describeItem(item)),
          h(
            "div",
            { class: "item-actions" },
            reuse,
            edit,
            h("a", { href: url, download: resultFileName(s.model, s.seed, item.imageIndex, item.format) }, "Download"),
          ),
        ),
      );
      reuse.addEventListener("click", () => gallery.onReuse(item));
      edit.addEventListener("click", () => gallery.onEdit(item));
      urls.set(li, url);
      // Newest request first; within a request, image 1 before image 2.
      if (lastRun !== null && lastRun.id === item.runId && lastRun.li.isConnected) lastRun.li.after(li);
      else list.prepend(li);
      lastRun = { id: item.runId, li };
      empty.hidden = true;
      while (list.children.length > MAX_ITEMS) {
        const old = list.lastElementChild as HTMLLIElement;
        URL.revokeObjectURL(urls.get(old) ?? "");
        urls.delete(old);
        old.remove();
      }
    },
    onReuse: () => undefined,
    onEdit: () => undefined,
  };
  return gallery;
}
