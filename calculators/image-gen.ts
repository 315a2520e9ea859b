/**
 * OVMS's ImageGenCalculator: an images request in, the answer out, with the
 * backend loaded once per servable and shared through the
 * IMAGE_GEN_NODE_RESOURCES side packet.
 *
 * Wiring (checked at load):
 * - input: HTTP_REQUEST_PAYLOAD (OVMS's one-node graph), or HttpInputCalculator's
 *   parts: URI plus JSON and/or FIELDS/FILES;
 * - output: HTTP_RESPONSE_PAYLOAD (the node encodes and answers, and can
 *   stream), or IMAGES (raw images for another node to encode, e.g.
 *   Base64EncoderCalculator on the worker pool; no streaming then).
 *
 * A request: validate (request.ts) → decode uploads by their bytes → wait
 * for a generation slot (the server bounds the queue by the node's capacity)
 * → generate, stopping between steps when the client leaves → answer.
 */
import { randomInt } from "node:crypto";
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import {
  Calculator,
  HttpError,
  nodeResources,
  type CalculatorContext,
  type CalculatorContract,
  type HttpRequestPayload,
  type HttpSseResponse,
  type MultipartBody,
  type MultipartFile,
  type NodeShape,
  type SseEvent,
} from "../src/index.js";
import {
  BackendError,
  GenerationCancelledError,
  type GenerationMode,
  type GenerationRequest,
  type GenerationResult,
  type RgbImage,
  type StepDecision,
  type StepProgress,
} from "../src/backends/index.js";
import { checkMaskSize, decodeAlphaMask, decodeImage, decodeMask, readImageSize, type DecodeLimits, type OutputSize } from "./image-gen/codec.js";
import { checkImageGenOptions, type ImageGenCalculatorOptions, type ImageGenSettings } from "./image-gen/options.js";
import { parseImageRequest, toGenerationRequest, type ImageRequest, type ImageRequestKind } from "./image-gen/request.js";
import { ImageGenResources } from "./image-gen/resources.js";
import { encodeResponse, imageEvent, progressEvent, type GeneratedImages, type ResponseFormat } from "./image-gen/response.js";
import { GenerationSlots } from "./image-gen/slots.js";

const RESOURCES = "IMAGE_GEN_NODE_RESOURCES";
const PREVIEW: StepDecision = { preview: true };
/** A stream reader that took no event for this long is behind: previews are skipped while one already waits for it. */
const STALLED_READER_MS = 1000;
/** OpenAI's limit on images per edit request. */
const MAX_EDIT_IMAGES = 16;
/** Largest upload decoded whatever the model, in pixels (8192²: 192 MiB of RGB). */
const MAX_INPUT_PIXELS = 8192 * 8192;
/**
 * How many times the largest output's pixels an upload may have: room to
 * scale a photo down 4× per side (a 12 MP phone photo into a 1024² model),
 * not to decode 64 MP for a 512² answer.
 */
const INPUT_PIXELS_PER_OUTPUT_PIXEL = 16;
/** Largest answer one request may make (RGB bytes over all its images), so 16 inputs × n cannot exhaust memory. */
const MAX_RESULT_BYTES = 1024 ** 3;

export class ImageGenCalculator extends Calculator<ImageGenCalculatorOptions> {
  static override readonly contract: CalculatorContract = {
    inputs: {
      HTTP_REQUEST_PAYLOAD: { optional: true },
      URI: { optional: true },
      JSON: { optional: true },
      FIELDS: { optional: true },
      FILES: { optional: true },
    },
    outputs: { HTTP_RESPONSE_PAYLOAD: { optional: true }, IMAGES: { optional: true, type: "GeneratedImages" } },
    inputSidePackets: { [RESOURCES]: {} },
    options: "mediapipe.ImageGenCalculatorOptions",
    optionsRequired: true,
    validate(node: NodeShape<ImageGenCalculatorOptions>): string | undefined {
      const ins = new Set(node.inputs.map((p) => p.tag));
      const outs = new Set(node.outputs.map((p) => p.tag));
      if (ins.has("HTTP_REQUEST_PAYLOAD") === (ins.has("URI") || ins.has("JSON") || ins.has("FIELDS") || ins.has("FILES"))) {
        return "ImageGenCalculator takes either HTTP_REQUEST_PAYLOAD or HttpInputCalculator's URI with JSON and/or FIELDS/FILES.";
      }
      if (!ins.has("HTTP_REQUEST_PAYLOAD") && (!ins.has("URI") || !(ins.has("JSON") || ins.has("FIELDS")))) {
        return "ImageGenCalculator without HTTP_REQUEST_PAYLOAD needs URI and at least one of JSON or FIELDS.";
      }
      if (outs.has("HTTP_RESPONSE_PAYLOAD") === outs.has("IMAGES")) return "ImageGenCalculator needs exactly one output: HTTP_RESPONSE_PAYLOAD or IMAGES.";
      try {
        checkImageGenOptions(node.options);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    },
    resources: { sidePacket: RESOURCES, load: (ctx) => ImageGenResources.load(ctx as Parameters<typeof ImageGenResources.load>[0]) },
  };

  override async process(ctx: CalculatorContext<ImageGenCalculatorOptions>): Promise<void> {
    const incoming = readRequest(ctx);
    if (incoming === undefined) return;
    const started = performance.now();
    const res = nodeResources<ImageGenResources>(ctx, RESOURCES);
    const request = parseImageRequest(incoming.kind === "edits" ? { kind: "edits", fields: incoming.form!.fields } : { kind: "generations", json: incoming.json as Record<string, unknown> }, res.settings);
    const toImages = ctx.outputs.has("IMAGES");
    if (request.stream && toImages) {
      throw new HttpError(400, "stream is not available on this servable: its graph hands the images to another node (IMAGES); serve the one-node ImageGenCalculator graph to stream", { param: "stream" });
    }
    const modes = res.capabilities.modes;
    const asked: GenerationMode = incoming.kind === "generations" ? "text2image" : incoming.mask !== undefined ? "inpainting" : "image2image";
    // OVMS answers a pipeline the model lacks with FAILED_PRECONDITION, i.e. 412: at once, unless a
    // transparent image (its own mask, by OpenAI's rule) could make an edit without mask an inpainting.
    const alphaMayInpaint = asked === "image2image" && modes.includes("inpainting");
    if (!modes.includes(asked) && !alphaMayInpaint) throw new HttpError(412, PIPELINE_MISSING[asked]);
    const uploads = incoming.kind === "edits" ? await readUploads(incoming, request, res, ctx.signal) : undefined;
    const mode: GenerationMode = uploads?.mask !== undefined ? "inpainting" : asked;
    if (!modes.includes(mode)) {
      throw mode === asked ? new HttpError(412, PIPELINE_MISSING[mode]) : new HttpError(412, ALPHA_WITHOUT_INPAINTING, { param: "image" });
    }
    const inputs: EditInputs | undefined = uploads && { images: await decodeImages(incoming, uploads, ctx.signal), mask: uploads.mask, size: uploads.size };
    // No seed: a random one, returned with the images (OVMS uses 42 every time). Below 2^32,
    // because the generators keep only the low 32 bits: every returned seed names distinct noise.
    const rngSeed = request.rngSeed ?? randomInt(0, 2 ** 32);
    const format: ResponseFormat = {
      kind: incoming.kind,
      outputFormat: request.outputFormat,
      outputCompression: request.outputCompression,
      background: request.background,
      quality: request.quality,
      rngSeed,
      created: Math.floor(Date.now() / 1000),
    };
    const job = new Job(res, request, mode, rngSeed, inputs, incoming.receivedAt ?? started, incoming.requestId);

    // A stream also waits for its slot before answering, so until then any failure is still a plain HTTP error.
    const release = await job.admit(ctx.signal);
    if (request.stream) {
      const stream = streamResponse(job, format, release, incoming.signal);
      // The generation runs behind the returned stream: the graph view shows this call busy until it is over
      // (cancelled if the stream was: the run is over by then, so its signal cannot tell).
      ctx.continueUntil(stream.done, stream.cancelled);
      ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", stream.response);
      return;
    }
    let result: GenerationResult;
    try {
      result = await job.generate(ctx.signal);
    } finally {
      release();
    }
    const images: GeneratedImages = { format, data: result.data, count: result.count, width: result.width, height: result.height };
    if (toImages) ctx.outputs.add("IMAGES", images);
    else ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", await encodeResponse(images));
  }
}

const PIPELINE_MISSING: Record<GenerationMode, string> = {
  text2image: "Text-to-image pipeline is not available for this model",
  image2image: "Image-to-image pipeline is not available for this model",
  inpainting: "Inpainting pipeline is not available for this model",
};
const ALPHA_WITHOUT_INPAINTING =
  "image has transparent pixels (alpha below 128) and no mask was sent, so its transparency is the mask (OpenAI's edit rule), but this model has no inpainting pipeline: send an opaque image to edit all of it";

/** The request as this node received it, whichever way the graph wires it. */
interface Incoming {
  readonly kind: ImageRequestKind;
  readonly json: unknown;
  readonly form: MultipartBody | undefined;
  readonly images: readonly MultipartFile[];
  readonly mask: MultipartFile | undefined;
  readonly receivedAt: number | undefined;
  readonly requestId: string | undefined;
  /** The client's connection (main thread only); outlives the graph run, so a stream can watch it. */
  readonly signal: AbortSignal | undefined;
}

function readRequest(ctx: CalculatorContext): Incoming | undefined {
  let uri: string | undefined;
  let json: unknown;
  let form: MultipartBody | undefined;
  let payload: HttpRequestPayload | undefined;
  if (ctx.inputs.has("HTTP_REQUEST_PAYLOAD")) {
    payload = ctx.inputs.value<HttpRequestPayload>("HTTP_REQUEST_PAYLOAD");
    if (payload === undefined) return undefined;
    uri = payload.path;
    json = payload.json;
    form = payload.multipart;
  } else {
    uri = ctx.inputs.value<string>("URI");
    if (uri === undefined) return undefined;
    uri = uri.split("?")[0];
    if (ctx.inputs.has("JSON")) json = ctx.inputs.value("JSON");
    const fields = ctx.inputs.has("FIELDS") ? ctx.inputs.value<MultipartBody["fields"]>("FIELDS") : undefined;
    if (fields !== undefined) form = { fields, files: (ctx.inputs.has("FILES") ? ctx.inputs.value<readonly MultipartFile[]>("FILES") : undefined) ?? [] };
  }
  const kind: ImageRequestKind | undefined = /\/images\/generations\/?$/.test(uri) ? "generations" : /\/images\/edits\/?$/.test(uri) ? "edits" : undefined;
  if (kind === undefined) throw new HttpError(400, `Unsupported URI: ${uri}`);
  if (kind === "generations" && json === undefined) throw new HttpError(415, "/images/generations expects a JSON body (Content-Type: application/json)", { code: "unsupported_content_type" });
  if (kind === "edits" && form === undefined) {
    throw new HttpError(415, "/images/edits expects a multipart/form-data body with the image as a file part", { code: "unsupported_content_type" });
  }
  const images: MultipartFile[] = [];
  let mask: MultipartFile | undefined;
  for (const file of form?.files ?? []) {
    if (file.field === "image" || file.field === "image[]") images.push(file);
    else if (file.field === "mask" && mask === undefined) mask = file;
    else if (file.field === "mask") throw new HttpError(400, "Key: mask already exists in request options.", { param: "mask" });
    else throw new HttpError(400, `Unhandled parameter: ${file.field}`, { param: file.field });
  }
  if (kind === "edits" && images.length === 0) throw new HttpError(400, "Image field is missing in multipart body", { param: "image" });
  if (images.length > MAX_EDIT_IMAGES) throw new HttpError(400, `${images.length} images sent; at most ${MAX_EDIT_IMAGES} are accepted`, { param: "image" });
  if (mask !== undefined && mask.data.length === 0) mask = undefined; // OVMS: an empty mask part means no mask
  return { kind, json, form, images, mask, receivedAt: payload?.receivedAt, requestId: payload?.requestId, signal: payload?.signal };
}

/**
 * Edit inputs, all decoded straight to the output size. The mask applies to
 * the first image only, as OpenAI says: the mask part, else the first image's
 * transparency (undefined when neither).
 */
interface EditInputs {
  readonly images: readonly RgbImage[];
  readonly mask: RgbImage | undefined;
  readonly size: OutputSize;
}

/**
 * The upload pixel limit of a servable: INPUT_PIXELS_PER_OUTPUT_PIXEL times
 * the largest answer it makes (its largest static resolution, else
 * max_resolution), at most MAX_INPUT_PIXELS.
 */
function uploadLimits(settings: ImageGenSettings): DecodeLimits {
  const outputs = settings.staticResolutions.length > 0 ? settings.staticResolutions : [settings.maxResolution];
  const largest = Math.max(...outputs.map((r) => r.width * r.height));
  return { maxPixels: Math.min(MAX_INPUT_PIXELS, largest * INPUT_PIXELS_PER_OUTPUT_PIXEL) };
}

/**
 * Upload decodes running at once, process-wide, whatever the number of
 * requests: one per core (libvips threads each decode's resize too). Handed
 * out first come, first served like generation slots; a request whose client
 * leaves while it waits gives its place up.
 */
const decodeTurns = new GenerationSlots(Math.max(1, availableParallelism()));

/** Decodes in a turn (see decodeTurns). */
async function inTurn<T>(signal: AbortSignal, decode: () => Promise<T>): Promise<T> {
  const release = await decodeTurns.acquire(signal);
  try {
    return await decode();
  } finally {
    release();
  }
}

/** What readUploads learns before any image is decoded. */
interface Uploads {
  readonly limits: DecodeLimits;
  readonly size: OutputSize;
  /** The mask part, else the first image's transparency (undefined when neither). */
  readonly mask: RgbImage | undefined;
}

const uploadParam = (incoming: Incoming, i: number) => (incoming.images.length > 1 ? `image[${i}]` : "image");

/**
 * Reads every upload's header first (sizes against the servable's limit, the
 * mask's against the first image's, the answer's size), so a request is
 * refused before any pixel is decoded; then decodes the mask, in a decoding
 * turn, at the output size (the request's, or the first image's rounded down
 * to what the model takes): with the mask known, the mode is, and a model
 * without it refuses the edit before the images are decoded.
 */
async function readUploads(incoming: Incoming, request: ImageRequest, res: ImageGenResources, signal: AbortSignal): Promise<Uploads> {
  const limits = uploadLimits(res.settings);
  const param = (i: number) => uploadParam(incoming, i);
  const first = await readImageSize(incoming.images[0].data, param(0), limits);
  for (let i = 1; i < incoming.images.length; i++) await readImageSize(incoming.images[i].data, param(i), limits);
  if (incoming.mask !== undefined) {
    const mask = await readImageSize(incoming.mask.data, "mask", limits);
    checkMaskSize("mask", mask.width, mask.height, first.width, first.height);
  }
  let size: OutputSize;
  if (request.width !== undefined && request.height !== undefined) {
    size = { width: request.width, height: request.height };
  } else {
    const m = res.capabilities.sizeMultiple;
    size = { width: Math.max(m, first.width - (first.width % m)), height: Math.max(m, first.height - (first.height % m)) };
    const max = res.settings.maxResolution;
    if (size.width > max.width || size.height > max.height) {
      throw new HttpError(400, `image size ${first.width}x${first.height} exceeds max_resolution ${max.width}x${max.height}; send a smaller image or a size`, { param: "image" });
    }
  }
  checkAnswerSize(incoming.images.length * request.n, size.width, size.height);
  const { mask: maskPart } = incoming;
  const mask = maskPart !== undefined
    ? await inTurn(signal, () => decodeMask(maskPart.data, "mask", first.width, first.height, limits, size))
    : first.hasAlpha
      ? await inTurn(signal, () => decodeAlphaMask(incoming.images[0].data, param(0), limits, size))
      : undefined;
  return { limits, size, mask };
}

/** Decodes the images one at a time, each in a decoding turn, at the output size, so a request holds output-size pixels only. */
async function decodeImages(incoming: Incoming, { limits, size }: Uploads, signal: AbortSignal): Promise<RgbImage[]> {
  const images: RgbImage[] = [];
  for (const [i, file] of incoming.images.entries()) images.push(await inTurn(signal, () => decodeImage(file.data, uploadParam(incoming, i), limits, size)));
  return images;
}

/** Refuses an answer whose pixels alone would pass MAX_RESULT_BYTES. */
function checkAnswerSize(images: number, width: number, height: number): void {
  const bytes = images * width * height * 3;
  if (bytes > MAX_RESULT_BYTES) {
    throw new HttpError(400, `the answer would hold ${images} images of ${width}x${height} (${bytes} bytes of pixels), over the limit of ${MAX_RESULT_BYTES}; ask for fewer images or a smaller size`, { param: "n" });
  }
}

/** One request's generation work, shared by the unary and streaming paths. */
class Job {
  private readonly requests: GenerationRequest[];

  constructor(
    private readonly res: ImageGenResources,
    readonly request: ImageRequest,
    readonly mode: GenerationMode,
    rngSeed: number,
    inputs: EditInputs | undefined,
    private readonly receivedAt: number,
    private readonly requestId: string | undefined,
  ) {
    const base = toGenerationRequest(request, mode, rngSeed);
    const sized = inputs === undefined ? base : { ...base, width: inputs.size.width, height: inputs.size.height };
    this.checkSize(sized);
    if (inputs === undefined) checkAnswerSize(request.n, sized.width ?? res.capabilities.defaultWidth, sized.height ?? res.capabilities.defaultHeight);
    // Several images: each is edited with the same settings; the mask applies to the first (OpenAI's rule).
    this.requests = inputs === undefined
      ? [sized]
      : inputs.images.map((image, i) => ({ ...sized, mode: i === 0 ? mode : "image2image", image, mask: i === 0 ? inputs.mask : undefined }));
    if (this.requests.some((r) => !res.capabilities.modes.includes(r.mode))) throw new HttpError(412, PIPELINE_MISSING.image2image);
    // What the backend would refuse (sizes, schedule, strength) is refused now, before the request waits for a slot.
    try {
      for (const r of this.requests) res.backend.check(r);
    } catch (e) {
      throw asRequestError(e);
    }
  }

  /** Waits for a generation slot; records the queue wait. */
  async admit(signal: AbortSignal): Promise<() => void> {
    const release = await this.res.slots.acquire(signal);
    const waitMs = performance.now() - this.receivedAt;
    this.res.metrics.queueWait(waitMs / 1000);
    this.res.logger.debug({ requestId: this.requestId, queueWaitMs: Math.round(waitMs) }, "image request got a generation slot");
    return release;
  }

  /**
   * Runs every generation of the request; with `partials` > 0, `onPreview`
   * receives previews after that many steps spread over each run's
   * schedule; `onProgress` hears of every finished step (1-based) of
   * generation `index`. Rejects with a 400 for what the backend refuses.
   */
  async generate(
    signal: AbortSignal,
    partials = 0,
    onPreview?: (index: number, images: readonly RgbImage[]) => void,
    onProgress?: (index: number, step: number, totalSteps: number) => void,
  ): Promise<GenerationResult> {
    const started = performance.now();
    const parts: GenerationResult[] = [];
    try {
      for (let i = 0; i < this.requests.length; i++) {
        // Asked only when previews are wanted: with a step callback the backend waits for its answer after every step.
        let preview: Set<number> | undefined;
        const watch = partials > 0 && onPreview !== undefined;
        const onStep =
          watch || onProgress !== undefined
            ? ({ step, totalSteps }: StepProgress): StepDecision | undefined => {
                onProgress?.(i, step + 1, totalSteps);
                return watch && (preview ??= previewSteps(totalSteps, partials)).has(step) ? PREVIEW : undefined;
              }
            : undefined;
        parts.push(
          await this.res.backend.generate(this.requests[i], {
            signal,
            onStep,
            onPreview: watch ? (_step, images) => onPreview(i, images) : undefined,
          }),
        );
      }
    } catch (e) {
      throw asRequestError(e);
    }
    const seconds = (performance.now() - started) / 1000;
    const result = concat(parts);
    this.res.metrics.generated(this.mode, seconds, result.count);
    this.res.logger.info(
      { requestId: this.requestId, mode: this.mode, images: result.count, size: `${result.width}x${result.height}`, steps: this.request.steps, rngSeed: this.requests[0].rngSeed, generationMs: Math.round(seconds * 1000) },
      "images generated",
    );
    return result;
  }

  private checkSize(r: GenerationRequest): void {
    const caps = this.res.capabilities;
    if (r.width === undefined || r.height === undefined) return;
    const m = caps.sizeMultiple;
    if (r.width % m !== 0 || r.height % m !== 0) {
      throw new HttpError(400, `size ${r.width}x${r.height} is not supported by this model: width and height must be multiples of ${m}`, { param: "size" });
    }
    const fixed = caps.staticResolutions;
    if (fixed.length > 0 && !fixed.some((s) => s.width === r.width && s.height === r.height)) {
      throw new HttpError(400, `size ${r.width}x${r.height} is not supported by this model, which was exported for ${fixed.map((s) => `${s.width}x${s.height}`).join(", ")} only`, { param: "size" });
    }
  }
}

/** What a backend refuses is the request's fault: a 400 with the backend's reason. */
function asRequestError(e: unknown): unknown {
  return e instanceof BackendError ? new HttpError(400, e.message, { param: e.param ?? null }) : e;
}

/** Joins the results of several edits (same size, by construction) into one batch. */
function concat(parts: readonly GenerationResult[]): GenerationResult {
  if (parts.length === 1) return parts[0];
  const data = new Uint8Array(parts.reduce((n, p) => n + p.data.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { ...parts[0], data, count: parts.reduce((n, p) => n + p.count, 0) };
}

/**
 * Steps after which to send partial images: `k` of them spread evenly over
 * the schedule, never the last step (the final image follows it).
 */
function previewSteps(steps: number, k: number): Set<number> {
  const out = new Set<number>();
  for (let i = 1; i <= k; i++) {
    const step = Math.floor((i * steps) / (k + 1)) - 1;
    if (step >= 0 && step < steps - 1) out.add(step);
  }
  return out;
}

/** A streamed answer and when the node's work on it is over. */
interface StreamedAnswer {
  readonly response: HttpSseResponse;
  /**
   * Settles once the generation has ended and every event it queued is
   * encoded, whether or not anyone reads them (a reader is not the node's
   * work, and the server may never start one): resolves when the stream
   * completed or was cancelled, rejects when it failed.
   */
  readonly done: Promise<void>;
  /** Aborted when the stream is cancelled: the client left, or the server stopped reading. */
  readonly cancelled: AbortSignal;
}

/**
 * A streamed answer (OpenAI's image events). Generation starts at once and
 * feeds an ordered list of pending events; the server drains it. The client
 * leaving, or the server stopping the iteration, cancels the generation
 * between steps and frees the slot.
 */
function streamResponse(job: Job, format: ResponseFormat, release: () => void, clientSignal: AbortSignal | undefined): StreamedAnswer {
  const abort = new AbortController();
  const onClientGone = () => abort.abort(clientSignal!.reason);
  if (clientSignal?.aborted) abort.abort(clientSignal.reason);
  else clientSignal?.addEventListener("abort", onClientGone, { once: true });

  const pending: { readonly event: Promise<SseEvent>; readonly partial: boolean }[] = [];
  // Partial images queued and not yet taken by the reader, and when it last took an event (see onPreview).
  let unsentPartials = 0;
  let lastTaken = performance.now();
  let wake: (() => void) | undefined;
  let finished = false;
  // The node's work: the generation, then the encodings it queued (counted, not held, so sent events can be freed).
  let encoding = 0;
  let failure: { readonly error: unknown } | undefined;
  let settleDone: (() => void) | undefined;
  const done = new Promise<void>((resolve, reject) => {
    settleDone = () => {
      if (finished && encoding === 0) (failure === undefined ? resolve() : reject(failure.error));
    };
  });
  const encoded = (failed: boolean, error?: unknown) => {
    // Once the stream was cancelled, whatever fails after is part of stopping, not a failure.
    if (failed && failure === undefined && !abort.signal.aborted) failure = { error };
    encoding--;
    settleDone!();
  };
  const push = (e: Promise<SseEvent>, partial = false) => {
    encoding++;
    // Consumed in order below; this handler also keeps it from being an unhandled rejection meanwhile.
    e.then(() => encoded(false), (err: unknown) => encoded(true, err));
    pending.push({ event: e, partial });
    if (partial) unsentPartials++;
    wake?.();
  };
  const partialIndex = new Map<number, number>();
  // graphserve's stream_progress: one event per step for each image the step advanced (a batch of n per input).
  const perInput = job.request.n;
  const onProgress = job.request.streamProgress
    ? (input: number, step: number, totalSteps: number) => {
        for (let k = 0; k < perInput; k++) push(Promise.resolve(progressEvent(format.kind, input * perInput + k, step, totalSteps)));
      }
    : undefined;

  void job
    .generate(
      abort.signal,
      job.request.partialImages,
      (input, images) => {
        // A reader that has taken nothing for a while, with a preview still waiting, gets no more of them
        // (partial images are best-effort, as OpenAI says): what waits for it stays one preview and the finals.
        if (unsentPartials > 0 && performance.now() - lastTaken > STALLED_READER_MS) return;
        const index = partialIndex.get(input) ?? 0;
        partialIndex.set(input, index + 1);
        images.forEach((image, k) => push(imageEvent(format, image, input * images.length + k, index), true));
      },
      onProgress,
    )
    .then(
      (result) => {
        const size = result.width * result.height * 3;
        for (let i = 0; i < result.count; i++) {
          push(imageEvent(format, { width: result.width, height: result.height, data: result.data.subarray(i * size, (i + 1) * size) }, i));
        }
      },
      (e: unknown) => {
        if (!(e instanceof GenerationCancelledError) && !abort.signal.aborted) push(Promise.reject(e));
      },
    )
    .finally(() => {
      release();
      clientSignal?.removeEventListener("abort", onClientGone);
      finished = true;
      wake?.();
      settleDone!();
    });

  const events: AsyncIterable<SseEvent> = {
    [Symbol.asyncIterator]() {
      return {
        async next(): Promise<IteratorResult<SseEvent>> {
          for (;;) {
            const head = pending.shift();
            if (head !== undefined) {
              if (head.partial) unsentPartials--;
              lastTaken = performance.now();
              return { value: await head.event, done: false };
            }
            if (finished) return { value: undefined, done: true };
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
        },
        async return(): Promise<IteratorResult<SseEvent>> {
          abort.abort(new DOMException("The event stream was closed.", "AbortError"));
          return { value: undefined, done: true };
        },
      };
    },
  };
  return { response: { headers: { "x-rng-seed": String(format.rngSeed) }, events }, done, cancelled: abort.signal };
}
