/**
 * What one server-sent event of an Images API stream means to the
 * playground: a partial image, a denoising step (graphserve's
 * `stream_progress`), a finished image, or an error. Events are recognised
 * by their `event:` name or, when that is missing, their JSON `type`, for
 * generations (`image_generation.*`) and edits (`image_edit.*`) alike.
 */
import { describeStreamError } from "./errors.js";
import type { SseMessage } from "./sse.js";

export type ImageStreamEvent =
  | { readonly kind: "partial"; readonly b64: string; readonly format: string; readonly imageIndex: number; readonly partialIndex: number }
  | { readonly kind: "progress"; readonly step: number; readonly steps: number; readonly imageIndex: number }
  | { readonly kind: "completed"; readonly b64: string; readonly format: string; readonly imageIndex: number; readonly seed: number | null; readonly size: string | null }
  | { readonly kind: "error"; readonly message: string }
  /** Something this page does not use (a `[DONE]` marker, a future event type). */
  | { readonly kind: "other" };

const int = (v: unknown, fallback: number): number => (typeof v === "number" && Number.isSafeInteger(v) ? v : fallback);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

export function interpretEvent(message: SseMessage): ImageStreamEvent {
  if (message.event === "error") return { kind: "error", message: describeStreamError(message.data) };
  if (message.data.trim() === "[DONE]") return { kind: "other" };
  let value: unknown;
  try {
    value = JSON.parse(message.data);
  } catch {
    return { kind: "error", message: "The server sent an event this page cannot read; the generation was stopped" };
  }
  if (typeof value !== "object" || value === null) return { kind: "other" };
  const data = value as Record<string, unknown>;
  if ("error" in data) return { kind: "error", message: describeStreamError(message.data) };
  const type = message.event !== "message" ? message.event : (str(data.type) ?? "");
  const suffix = type.slice(type.lastIndexOf(".") + 1);
  if (!/^image_(?:generation|edit)\./.test(type)) return { kind: "other" };
  const imageIndex = int(data.image_index, 0);
  const format = str(data.output_format) ?? "png";
  switch (suffix) {
    case "progress": {
      const steps = int(data.num_inference_steps, 0);
      const step = int(data.step, 0);
      if (steps < 1 || step < 0) return { kind: "other" };
      return { kind: "progress", step: Math.min(step, steps), steps, imageIndex };
    }
    case "partial_image": {
      const b64 = str(data.b64_json);
      if (b64 === null) return { kind: "other" };
      return { kind: "partial", b64, format, imageIndex, partialIndex: int(data.partial_image_index, 0) };
    }
    case "completed": {
      const b64 = str(data.b64_json);
      if (b64 === null) return { kind: "error", message: "The server finished an image without sending it (was response_format changed?)" };
      const seed = typeof data.rng_seed === "number" && Number.isSafeInteger(data.rng_seed) ? data.rng_seed : null;
      return { kind: "completed", b64, format, imageIndex, seed, size: str(data.size) };
    }
    default:
      return { kind: "other" };
  }
}

/**
 * The status line while running: "Step 3 of 20", plus which image when
 * there are several. `imageIndex` is null while it is not known whether the
 * images are denoised together ("(2 images)"), "batch" once they are
 * ("(all 2 images)").
 */
export function progressText(step: number, steps: number, imageIndex: number | null | "batch", imageCount: number): string {
  const base = `Step ${step} of ${steps}`;
  if (imageCount <= 1) return base;
  if (imageIndex === null) return `${base} (${imageCount} images)`;
  return imageIndex === "batch" ? `${base} (all ${imageCount} images)` : `${base} (image ${imageIndex + 1} of ${imageCount})`;
}

/**
 * Status lines for a run's progress events. A backend may denoise a
 * request's images one after another or as one batch (each step then
 * reports every image). The first event cannot tell which, so no image is
 * named until the second one does: the same step for another image is a
 * batch, another step for the same image is one image at a time.
 */
export class ProgressTracker {
  private last: { step: number; imageIndex: number } | null = null;
  private batching: "unknown" | "batch" | "sequential" = "unknown";

  constructor(private readonly imageCount: number) {}

  text(ev: { readonly step: number; readonly steps: number; readonly imageIndex: number }): string {
    const last = this.last;
    if (this.batching === "unknown" && last !== null) {
      if (ev.step === last.step && ev.imageIndex !== last.imageIndex) this.batching = "batch";
      else if (ev.imageIndex === last.imageIndex && ev.step !== last.step) this.batching = "sequential";
    }
    this.last = { step: ev.step, imageIndex: ev.imageIndex };
    const which = this.batching === "batch" ? "batch" : this.batching === "sequential" ? ev.imageIndex : null;
    return progressText(ev.step, ev.steps, which, this.imageCount);
  }
}

/** A finished image as the playground keeps it, from a stream's `completed` event or a unary answer. */
export type CompletedImage = Omit<Extract<ImageStreamEvent, { kind: "completed" }>, "kind">;

/**
 * A unary (non-streamed) Images API answer: `data[].b64_json` with the
 * shared `output_format`, `size` and `rng_seed`. null when the JSON is not
 * an images answer at all (another kind of servable answered).
 */
export function interpretUnaryAnswer(value: unknown): CompletedImage[] | null {
  if (typeof value !== "object" || value === null) return null;
  const answer = value as Record<string, unknown>;
  if (!Array.isArray(answer.data) || answer.data.length === 0) return null;
  const images: CompletedImage[] = [];
  for (const [i, item] of answer.data.entries()) {
    const b64 = typeof item === "object" && item !== null ? str((item as Record<string, unknown>).b64_json) : null;
    if (b64 === null) return null;
    const seed = typeof answer.rng_seed === "number" && Number.isSafeInteger(answer.rng_seed) ? answer.rng_seed : null;
    images.push({ b64, format: str(answer.output_format) ?? "png", imageIndex: i, seed, size: str(answer.size) });
  }
  return images;
}

/** The status line at the end: "Done in 1.2 s (seed 1234)". */
export function doneText(ms: number, seed: number | null): string {
  const seconds = ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
  return `Done in ${seconds} s${seed === null ? "" : ` (seed ${seed})`}`;
}
