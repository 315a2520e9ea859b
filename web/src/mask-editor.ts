/**
 * Edit mode's source image and the mask painted over it. The canvas keeps
 * the source's own pixel size, so the mask matches the image whatever size
 * it is shown at; strokes follow pointer events (mouse, pen, touch) or the
 * keyboard (arrows move a brush cursor, Space/Enter paint, Shift+arrows
 * paint while moving). The
 * exported mask is OpenAI's convention: a PNG at the source's size, painted
 * pixels transparent (to be changed), the rest opaque black.
 */
import { field, h } from "./dom.js";
import { brushKey, type Point } from "./mask-keys.js";

export interface SourceImage {
  readonly blob: Blob;
  /** The file name sent in the multipart part. */
  readonly name: string;
  readonly width: number;
  readonly height: number;
}

export interface MaskEditor {
  readonly element: HTMLElement;
  readonly fileInput: HTMLInputElement;
  source(): SourceImage | null;
  /** Shows a new source (a file or a gallery image) and clears the mask. */
  setSource(blob: Blob, name: string, caption: string): Promise<SourceImage>;
  /** The mask PNG, or null when nothing is painted (the whole image is edited). */
  maskPng(): Promise<Blob | null>;
  clear(): void;
  /** Focuses the mask (or the file input while there is no source). */
  focusMask(): void;
  /** Called when a new source is shown. */
  onSource: (source: SourceImage) => void;
  /** Called when a chosen file cannot be shown as an image. */
  onError: (message: string) => void;
}

export function createMaskEditor(): MaskEditor {
  const fileInput = h("input", { id: "source-image", name: "image", type: "file", accept: "image/png,image/jpeg,image/webp,image/gif,image/bmp" });
  const img = h("img", { alt: "Source", class: "source", draggable: "false" });
  // role=application: screen readers pass the arrow keys through to the painting instead of reading on.
  const canvas = h("canvas", {
    role: "application", tabindex: 0, "aria-label": "Mask", "aria-describedby": "mask-hint mask-keys", class: "mask", width: 1, height: 1,
  });
  const cursor = h("div", { class: "brush-cursor", "aria-hidden": "true" });
  const placeholder = h("p", { class: "stage-empty" }, "Choose a source image, or “Edit this image” in the gallery.");
  const stage = h("div", { class: "stage" }, placeholder, img, canvas, cursor);
  const caption = h("p", { class: "caption" });
  const brush = h("input", { id: "brush-size", type: "range", min: 4, max: 160, step: 2, value: 40 });
  // A span, not <output>: that is a role=status, and the page has one status line (the run's).
  const brushValue = h("span", { class: "brush-value", "aria-hidden": "true" }, "40 px");
  const clearButton = h("button", { type: "button" }, "Clear mask");
  const element = h(
    "fieldset",
    { class: "edit-source" },
    h("legend", {}, "Source and mask"),
    field("Source image", fileInput),
    stage,
    caption,
    h("p", { id: "mask-hint", class: "hint" }, "Paint over the area to change. With no mask the whole image is changed, or, in an image with transparent areas, those areas."),
    h("p", { id: "mask-keys", class: "hint" }, "Keyboard: arrow keys move the brush, Space or Enter paints, Shift+arrows paint while moving."),
    h("div", { class: "mask-tools" }, h("label", { for: brush.id }, "Brush size"), brush, brushValue, clearButton),
  );
  img.hidden = true;
  canvas.hidden = true;
  cursor.hidden = true;

  const ctx = canvas.getContext("2d");
  let current: SourceImage | null = null;
  let objectUrl: string | null = null;
  let painted = false;
  let last: { x: number; y: number } | null = null;

  /** Source pixels per displayed pixel. */
  const scale = (): { x: number; y: number } => {
    const box = canvas.getBoundingClientRect();
    return { x: canvas.width / Math.max(1, box.width), y: canvas.height / Math.max(1, box.height) };
  };

  /** Paints a dot at p (in source pixels), or a line to it from the previous point of the stroke. */
  function paint(p: { x: number; y: number }): void {
    if (ctx === null) return;
    ctx.fillStyle = ctx.strokeStyle = "#ff2d55";
    ctx.lineCap = ctx.lineJoin = "round";
    const r = (Number(brush.value) / 2) * scale().x;
    ctx.lineWidth = r * 2;
    ctx.beginPath();
    if (last === null) {
      ctx.arc(p.x, p.y, r, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
    }
    last = { x: p.x, y: p.y };
    painted = true;
  }

  function stroke(e: PointerEvent): void {
    const box = canvas.getBoundingClientRect();
    const k = scale();
    paint({ x: (e.clientX - box.left) * k.x, y: (e.clientY - box.top) * k.y });
  }

  // The keyboard brush: a cursor in source pixels, drawn over the canvas while it has focus.
  let at: Point = { x: 0, y: 0 };
  const placeCursor = (): void => {
    cursor.style.left = `${(100 * at.x) / canvas.width}%`;
    cursor.style.top = `${(100 * at.y) / canvas.height}%`;
    cursor.style.width = cursor.style.height = `${brush.value}px`;
  };
  const showCursor = (): void => {
    placeCursor();
    cursor.hidden = false;
  };
  // Shown for keyboard focus (a click focuses the canvas too, and the pointer is its own cursor).
  canvas.addEventListener("focus", () => {
    if (current !== null && canvas.matches(":focus-visible")) showCursor();
  });
  canvas.addEventListener("blur", () => { cursor.hidden = true; });
  canvas.addEventListener("keydown", (e) => {
    if (current === null || e.altKey || e.ctrlKey || e.metaKey) return;
    const action = brushKey({ key: e.key, shift: e.shiftKey, at, brushPx: Number(brush.value), scale: scale(), width: canvas.width, height: canvas.height });
    if (action === null) return;
    e.preventDefault();
    showCursor();
    last = action.kind === "move" ? action.paintFrom : null;
    if (action.kind === "dot" || last !== null) paint(action.at);
    last = null;
    at = action.at;
    placeCursor();
  });

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || current === null) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    last = null;
    stroke(e);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (last === null || !canvas.hasPointerCapture(e.pointerId)) return;
    // Coalesced events keep fast strokes smooth instead of dotted.
    for (const ev of e.getCoalescedEvents?.() ?? [e]) stroke(ev);
  });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("lostpointercapture", end);

  const showBrush = () => {
    brushValue.textContent = `${brush.value} px`;
    brush.setAttribute("aria-valuetext", `${brush.value} pixels`);
    placeCursor();
  };
  showBrush();
  brush.addEventListener("input", showBrush);

  const editor: MaskEditor = {
    element, fileInput,
    source: () => current,
    async setSource(blob, name, text) {
      const url = URL.createObjectURL(blob);
      const probe = new Image();
      probe.src = url;
      try {
        await probe.decode();
      } catch {
        URL.revokeObjectURL(url);
        throw new Error(`${name} is not an image this browser can show`);
      }
      if (objectUrl !== null) URL.revokeObjectURL(objectUrl);
      objectUrl = url;
      img.src = url;
      current = { blob, name, width: probe.naturalWidth, height: probe.naturalHeight };
      canvas.width = current.width;
      canvas.height = current.height;
      at = { x: current.width / 2, y: current.height / 2 };
      placeCursor();
      stage.style.aspectRatio = `${current.width} / ${current.height}`;
      img.hidden = canvas.hidden = false;
      placeholder.hidden = true;
      caption.textContent = `${text} (${current.width}×${current.height})`;
      editor.clear();
      editor.onSource(current);
      return current;
    },
    async maskPng() {
      if (current === null || !painted) return null;
      const out = document.createElement("canvas");
      out.width = canvas.width;
      out.height = canvas.height;
      const o = out.getContext("2d");
      if (o === null) throw new Error("This browser cannot draw the mask (no 2D canvas)");
      o.fillStyle = "#000";
      o.fillRect(0, 0, out.width, out.height);
      // Punch the painted strokes out of the black: alpha 0 marks what to change.
      o.globalCompositeOperation = "destination-out";
      o.drawImage(canvas, 0, 0);
      // Brush edges are antialiased; a mask pixel is either changed or kept, so make them one or the other.
      const pixels = o.getImageData(0, 0, out.width, out.height);
      const d = pixels.data;
      for (let i = 3; i < d.length; i += 4) d[i] = d[i] < 128 ? 0 : 255;
      o.putImageData(pixels, 0, 0);
      return await new Promise<Blob>((resolve, reject) => out.toBlob((b) => (b === null ? reject(new Error("The mask could not be encoded as PNG")) : resolve(b)), "image/png"));
    },
    clear() {
      ctx?.clearRect(0, 0, canvas.width, canvas.height);
      painted = false;
      last = null;
    },
    focusMask() {
      if (current === null) fileInput.focus();
      else canvas.focus();
    },
    onSource: () => undefined,
    onError: () => undefined,
  };

  clearButton.addEventListener("click", () => editor.clear());
  fileInput.addEventListener("change", () => {
    const file = fileInput.files?.[0];
    if (file === undefined) return;
    editor.setSource(file, file.name, file.name).catch((e: unknown) => editor.onError(e instanceof Error ? e.message : String(e)));
  });
  return editor;
}
