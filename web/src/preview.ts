/**
 * The running request's view: the preview image (partials, then the final
 * one), the progress bar (role=progressbar "Progress") and the status line
 * (role=status). The preview box keeps the requested aspect ratio so the
 * page does not jump when an image arrives.
 */
import { h } from "./dom.js";

export interface Preview {
  readonly element: HTMLElement;
  showImage(src: string): void;
  setAspect(width: number, height: number): void;
  /** Steps done; null makes the bar indeterminate (waiting for the first step). */
  setProgress(step: number | null, steps: number): void;
  resetProgress(): void;
  setStatus(text: string): void;
}

export function createPreview(): Preview {
  const img = h("img", { alt: "Preview", class: "preview-img" });
  img.hidden = true;
  const placeholder = h("p", { class: "preview-empty" }, "The image appears here as it is made.");
  const box = h("div", { class: "preview-box" }, placeholder, img);
  const fill = h("div", { class: "bar-fill" });
  const bar = h("div", { role: "progressbar", "aria-label": "Progress", "aria-valuemin": 0, "aria-valuemax": 1, "aria-valuenow": 0, class: "bar" }, fill);
  const status = h("p", { role: "status", "aria-live": "polite", class: "status" }, "Ready");
  const element = h("div", { class: "preview" }, box, bar, status);

  return {
    element,
    showImage(src) {
      img.src = src;
      img.hidden = false;
      placeholder.hidden = true;
    },
    setAspect(width, height) {
      if (width > 0 && height > 0) box.style.aspectRatio = `${width} / ${height}`;
    },
    setProgress(step, steps) {
      bar.setAttribute("aria-valuemax", String(Math.max(1, steps)));
      if (step === null) {
        bar.removeAttribute("aria-valuenow");
        bar.classList.add("indeterminate");
        fill.style.width = "";
        return;
      }
      bar.classList.remove("indeterminate");
      bar.setAttribute("aria-valuenow", String(step));
      bar.setAttribute("aria-valuetext", `Step ${step} of ${steps}`);
      fill.style.width = `${(100 * step) / Math.max(1, steps)}%`;
    },
    resetProgress() {
      bar.classList.remove("indeterminate");
      bar.setAttribute("aria-valuenow", "0");
      bar.setAttribute("aria-valuemax", "1");
      bar.removeAttribute("aria-valuetext");
      fill.style.width = "0%";
    },
    setStatus(text) {
      status.textContent = text;
    },
  };
}
