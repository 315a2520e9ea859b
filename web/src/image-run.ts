/**
 * One Images API request. Streams it when the servable can: posts it, reads
 * its server-sent events and hands each one on, already interpreted. A
 * servable whose graph cannot stream refuses `stream` (400, param "stream");
 * the same request is then made once more as a plain JSON request and its
 * images handed on as `completed` events. Resolves when every image has
 * arrived; rejects with a readable ApiError (a refused request, an `error`
 * event, a stream cut short, an answer without images) or with the
 * AbortError of a cancel, which closes the connection and so stops the
 * generation on the server.
 */
import { ApiError, isAbort, type Api } from "./api.js";
import { interpretEvent, interpretUnaryAnswer, type ImageStreamEvent } from "./image-events.js";
import type { RequestShape } from "./image-request.js";
import { readSse } from "./sse.js";

export interface RequestBody {
  readonly body: BodyInit;
  /** For JSON bodies; a FormData body sets its own multipart type. */
  readonly contentType?: string;
}

export interface RunOptions {
  readonly path: "/v3/images/generations" | "/v3/images/edits";
  /** The servable, for messages. */
  readonly model: string;
  /** The request's body, streamed or not. */
  readonly build: (shape: RequestShape) => RequestBody | Promise<RequestBody>;
  /** false when this servable is already known not to stream: no streamed attempt is made. */
  readonly stream: boolean;
  readonly signal: AbortSignal;
  readonly expectedImages: number;
  /** The seed the server used (the `x-rng-seed` header), as soon as the answer starts. */
  readonly onSeed: (seed: number) => void;
  /** The servable cannot stream: the request is made again without it (no progress will come). */
  readonly onUnary: () => void;
  readonly onEvent: (event: Exclude<ImageStreamEvent, { kind: "error" | "other" }>) => void;
}

/** Whether the error is a servable's refusal to stream. */
export const refusesStream = (e: unknown): boolean => e instanceof ApiError && e.status === 400 && e.param === "stream";

/** The message for a 2xx answer that holds no images. */
export const notImagesMessage = (model: string): string => `${model} answered, but not with images: it is not an image-generation servable`;

/** Runs the request; resolves to whether it was streamed. */
export async function runImageRequest(api: Api, o: RunOptions): Promise<{ streamed: boolean }> {
  if (o.stream) {
    try {
      await post(api, o, { stream: true });
      return { streamed: true };
    } catch (e) {
      if (!refusesStream(e)) throw e;
    }
  }
  o.onUnary();
  await post(api, o, { stream: false });
  return { streamed: false };
}

async function post(api: Api, o: RunOptions, shape: RequestShape): Promise<void> {
  const { body, contentType } = await o.build(shape);
  const headers: Record<string, string> = { Accept: shape.stream ? "text/event-stream" : "application/json" };
  if (contentType !== undefined) headers["Content-Type"] = contentType;
  const res = await api.request(o.path, { method: "POST", body, headers, signal: o.signal }, o.model);
  const seedHeader = res.headers.get("x-rng-seed");
  if (seedHeader !== null && Number.isSafeInteger(Number(seedHeader))) o.onSeed(Number(seedHeader));
  if (res.body === null) throw new ApiError("The server answered without a body", res.status);
  const type = res.headers.get("Content-Type") ?? "";
  if (type.startsWith("text/event-stream")) return readStream(res.body, o);
  // A unary answer: asked for, or a server that ignores `stream`.
  let value: unknown = null;
  if (/^application\/(?:[\w.+-]*\+)?json/.test(type)) {
    try {
      value = await res.json();
    } catch (e) {
      if (isAbort(e)) throw e;
    }
  } else {
    await res.body.cancel().catch(() => undefined);
  }
  const images = interpretUnaryAnswer(value);
  if (images === null) throw new ApiError(notImagesMessage(o.model), res.status);
  if (images.length < o.expectedImages) {
    throw new ApiError(`The server answered with ${images.length} of ${o.expectedImages} images: check its log`, res.status);
  }
  for (const image of images) o.onEvent({ kind: "completed", ...image });
}

async function readStream(body: ReadableStream<Uint8Array>, o: RunOptions): Promise<void> {
  let completed = 0;
  for await (const message of readSse(body)) {
    const event = interpretEvent(message);
    if (event.kind === "error") throw new ApiError(event.message, null);
    if (event.kind === "other") continue;
    if (event.kind === "completed") completed++;
    o.onEvent(event);
  }
  if (completed < o.expectedImages) {
    throw new ApiError(`The server closed the connection after ${completed} of ${o.expectedImages} images: check its log`, null);
  }
}
