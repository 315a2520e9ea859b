/**
 * The playground page: the settings form (with Edit mode's source and mask)
 * on one side, the preview, progress, status and gallery on the other. A
 * submit streams one Images API request; Cancel aborts it, which closes the
 * connection and stops the generation on the server.
 */
import { ApiError, isAbort, type Api } from "./api.js";
import { h } from "./dom.js";
import { createGallery, type GalleryItem } from "./gallery.js";
import { doneText, ProgressTracker } from "./image-events.js";
import { editFields, editSizeFor, fieldOfParam, generationBody, parseSettings, reuseInput, type ImageSettings } from "./image-request.js";
import { runImageRequest, type RunOptions } from "./image-run.js";
import { createMaskEditor } from "./mask-editor.js";
import { createModelPicker } from "./model-picker.js";
import { createPreview } from "./preview.js";
import { createSettingsForm } from "./settings-form.js";

export interface Playground {
  readonly element: HTMLElement;
  /** Reloads the model list (after the API key changes). */
  reloadModels(): Promise<void>;
}

/** `onModel` hears the selected model whenever it changes (for the header's Graph link). */
export function createPlayground(api: Api, onModel: (model: string) => void): Playground {
  const editor = createMaskEditor();
  const form = createSettingsForm(editor.element);
  const preview = createPreview();
  const gallery = createGallery();
  const models = createModelPicker(api, form.model, onModel, (message) => form.showError(message));
  const element = h("div", { class: "playground" }, form.element, h("div", { class: "results" }, preview.element, gallery.element));
  let running: AbortController | null = null;
  let runs = 0;
  /** Servables seen refusing `stream` this visit: asked without it straight away. */
  const unaryModels = new Set<string>();

  const syncAspect = () => {
    const { width, height } = form.read();
    preview.setAspect(Number(width), Number(height));
  };
  form.element.addEventListener("input", (e) => {
    if (e.target instanceof HTMLInputElement && (e.target.id === "width" || e.target.id === "height")) syncAspect();
  });

  editor.onSource = (source) => {
    const size = editSizeFor(source.width, source.height);
    form.write({ width: String(size.width), height: String(size.height) });
    syncAspect();
  };
  editor.onError = (message) => form.showError(`Source image: ${message}`);

  gallery.onReuse = (item) => {
    form.write(reuseInput(item.settings));
    form.showError("");
    syncAspect();
    form.focus("prompt");
  };
  gallery.onEdit = (item) => {
    form.setMode("edit");
    form.write({ prompt: item.settings.prompt });
    editor
      .setSource(item.blob, `seed${item.settings.seed ?? "unknown"}.${item.format === "jpeg" ? "jpg" : item.format}`, `From the gallery: “${item.settings.prompt}”`)
      .then(() => form.focus("prompt"), (e: unknown) => form.showError(`Source image: ${e instanceof Error ? e.message : String(e)}`));
  };

  form.element.addEventListener("submit", (e) => {
    e.preventDefault();
    if (running === null) void run();
  });
  form.cancel.addEventListener("click", () => running?.abort());

  /** Builds the request from the form; null (with the error shown) when the form is not ready. */
  async function buildRequest(s: ImageSettings): Promise<Pick<RunOptions, "path" | "build"> | null> {
    if (s.mode === "generate") {
      return { path: "/v3/images/generations", build: (shape) => ({ body: JSON.stringify(generationBody(s, shape)), contentType: "application/json" }) };
    }
    const source = editor.source();
    if (source === null) {
      form.showError("Source image: choose an image to edit, or use “Edit this image” in the gallery");
      editor.fileInput.focus();
      return null;
    }
    const mask = await editor.maskPng();
    const build: RunOptions["build"] = (shape) => {
      const body = new FormData();
      body.append("image", source.blob, source.name);
      if (mask !== null) body.append("mask", mask, "mask.png");
      for (const [k, v] of editFields(s, shape)) body.append(k, v);
      return { body };
    };
    return { path: "/v3/images/edits", build };
  }

  /** Puts keyboard focus on the form field the server blamed, if the form has one. */
  function focusParam(param: string | null): void {
    const field = param === null ? null : fieldOfParam(param);
    if (field === "image") editor.fileInput.focus();
    else if (field === "mask") editor.focusMask();
    else if (field !== null) form.focus(field);
  }

  async function run(): Promise<void> {
    form.showError("");
    const parsed = parseSettings(form.read());
    if (!parsed.ok) {
      form.showError(parsed.problem.message);
      form.focus(parsed.problem.field);
      return;
    }
    const s = parsed.settings;
    let failure: unknown = null;
    const controller = new AbortController();
    running = controller;
    // The submit button disables itself: a keyboard user who pressed it lands on Cancel, not on <body>.
    const fromSubmit = document.activeElement === form.submit;
    form.setRunning(true);
    if (fromSubmit) form.cancel.focus();
    try {
      const request = await buildRequest(s);
      if (request === null) return;
      preview.setAspect(s.width, s.height);
      preview.setProgress(null, s.steps);
      preview.setStatus("Waiting for the server…");
      const started = performance.now();
      let seed = s.seed;
      let done = 0;
      // The scheduler may run more or fewer steps than asked (PNDM adds one, an edit's strength skips some).
      let stepsRun = s.steps;
      const progress = new ProgressTracker(s.n);
      const runId = ++runs;
      await runImageRequest(api, {
        ...request,
        model: s.model,
        stream: !unaryModels.has(s.model),
        signal: controller.signal,
        expectedImages: s.n,
        onSeed: (used) => { seed = used; },
        onUnary: () => {
          unaryModels.add(s.model);
          preview.setProgress(null, s.steps);
          preview.setStatus("Generating (this model does not stream)…");
        },
        onEvent: (ev) => {
          switch (ev.kind) {
            case "progress":
              stepsRun = ev.steps;
              preview.setProgress(ev.step, ev.steps);
              preview.setStatus(progress.text(ev));
              break;
            case "partial":
              preview.showImage(`data:image/${ev.format};base64,${ev.b64}`);
              break;
            case "completed": {
              done++;
              // A unary answer has no x-rng-seed header: its images say which seed they used.
              seed = ev.seed ?? seed;
              preview.showImage(`data:image/${ev.format};base64,${ev.b64}`);
              const item: GalleryItem = {
                blob: base64ToBlob(ev.b64, `image/${ev.format}`),
                settings: { ...s, seed },
                imageIndex: ev.imageIndex,
                format: ev.format,
                size: ev.size ?? `${s.width}x${s.height}`,
                runId,
              };
              gallery.add(item);
              if (done < s.n) preview.setStatus(`Image ${done} of ${s.n} done`);
              break;
            }
          }
        },
      });
      preview.setProgress(stepsRun, stepsRun);
      preview.setStatus(doneText(performance.now() - started, seed));
    } catch (e) {
      failure = e;
      preview.resetProgress();
      if (isAbort(e)) {
        preview.setStatus("Cancelled");
      } else {
        // ApiErrors are worded already; anything else is a bug worth showing as is.
        form.showError(e instanceof Error ? e.message : String(e));
        preview.setStatus("Failed");
      }
    } finally {
      running = null;
      const onCancel = document.activeElement === form.cancel;
      form.setRunning(false);
      // The Cancel button just got disabled: keep keyboard focus in the form.
      if (onCancel) form.submit.focus();
    }
    if (failure instanceof ApiError) focusParam(failure.param);
  }

  return { element, reloadModels: () => models.reload() };
}

function base64ToBlob(b64: string, type: string): Blob {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}
