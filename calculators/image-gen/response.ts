/**
 * The answer to an images request in OpenAI's shape, a superset of OVMS's
 * `{"data":[{"b64_json":…}]}`: `created`, `data[].b64_json`, and the
 * GPT-image fields `output_format`, `size`, `quality`, `background`, plus
 * `rng_seed` so any image can be replayed. `usage` is left out: it counts
 * tokens of OpenAI's own models and means nothing here.
 *
 * `GeneratedImages` is also the packet ImageGenCalculator sends on its
 * IMAGES output, so another node (Base64EncoderCalculator) can do the
 * encoding; it is plain data, cloneable to a worker thread.
 */
import type { SseEvent } from "../../src/index.js";
import { encodeBatch, encodeImage } from "./codec.js";
import type { Background, ImageRequestKind, OutputFormat, Quality } from "./request.js";

/** How to write the images and what to say about them. */
export interface ResponseFormat {
  readonly kind: ImageRequestKind;
  readonly outputFormat: OutputFormat;
  readonly outputCompression?: number;
  /** What the request asked for; the images are RGB, so the answer says "opaque" unless it asked "auto". */
  readonly background: Background;
  readonly quality: Quality;
  readonly rngSeed: number;
  /** Unix seconds. */
  readonly created: number;
}

/** Generated images, RGB u8 NHWC back to back, with how to answer. */
export interface GeneratedImages {
  readonly format: ResponseFormat;
  readonly data: Uint8Array;
  readonly count: number;
  readonly width: number;
  readonly height: number;
}

/** The response fields every answer and event shares. */
function describe(f: ResponseFormat, width: number, height: number) {
  return {
    output_format: f.outputFormat,
    size: `${width}x${height}`,
    quality: f.quality,
    // The pipelines produce RGB: transparency cannot be honoured, and the answer says so.
    background: "opaque",
    rng_seed: f.rngSeed,
  };
}

const encodeOptions = (f: ResponseFormat) => ({ format: f.outputFormat, compression: f.outputCompression });

/** Encodes the images and writes the JSON body of a unary answer. */
export async function encodeResponse(images: GeneratedImages): Promise<string> {
  const buffers = await encodeBatch(images.data, images.count, images.width, images.height, encodeOptions(images.format));
  return JSON.stringify({
    created: images.format.created,
    data: buffers.map((b) => ({ b64_json: b.toString("base64") })),
    ...describe(images.format, images.width, images.height),
  });
}

/**
 * graphserve's progress event (`stream_progress`): denoising step `step`
 * (1-based) of `numInferenceSteps` is done for image `imageIndex`. No
 * pixels, so it costs nothing to send.
 */
export function progressEvent(kind: ImageRequestKind, imageIndex: number, step: number, numInferenceSteps: number): SseEvent {
  const type = kind === "edits" ? "image_edit.progress" : "image_generation.progress";
  return { event: type, data: { type, step, num_inference_steps: numInferenceSteps, image_index: imageIndex } };
}

/**
 * One streamed image: a partial (with its 0-based `partial_image_index`) or,
 * without an index, a final one. `image_index` (graphserve's) says which
 * image of the answer, in `data` order, it shows when there are several.
 */
export async function imageEvent(f: ResponseFormat, image: { width: number; height: number; data: Uint8Array }, imageIndex: number, partialIndex?: number): Promise<SseEvent> {
  const prefix = f.kind === "edits" ? "image_edit" : "image_generation";
  const type = partialIndex === undefined ? `${prefix}.completed` : `${prefix}.partial_image`;
  const b64 = (await encodeImage(image, encodeOptions(f))).toString("base64");
  const data: Record<string, unknown> = { type, b64_json: b64, created_at: f.created, ...describe(f, image.width, image.height), image_index: imageIndex };
  if (partialIndex !== undefined) data.partial_image_index = partialIndex;
  return { event: type, data };
}
