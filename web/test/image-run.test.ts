import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError, type Api } from "../src/api.js";
import { notImagesMessage, runImageRequest, type RunOptions } from "../src/image-run.js";

interface Sent {
  readonly accept: string | null;
  readonly body: Record<string, unknown>;
}

/** An Api answering each POST with the next of `answers` (a Response, or an ApiError to throw). */
function fakeApi(answers: Array<Response | ApiError>): { api: Api; sent: Sent[] } {
  const sent: Sent[] = [];
  const api: Api = {
    async request(_path, init = {}) {
      sent.push({ accept: new Headers(init.headers).get("Accept"), body: JSON.parse(String(init.body)) as Record<string, unknown> });
      const next = answers.shift();
      if (next === undefined) throw new Error("unexpected request");
      if (next instanceof ApiError) throw next;
      return next;
    },
    json: () => Promise.reject(new Error("not used")),
  };
  return { api, sent };
}

const json = (value: unknown) => new Response(JSON.stringify(value), { headers: { "Content-Type": "application/json" } });
const sse = (...events: Array<[string, unknown]>) =>
  new Response(events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join(""), { headers: { "Content-Type": "text/event-stream" } });
const refusedStream = () => new ApiError("…", 400, "stream", "stream is not available on this servable");

function options(over: Partial<RunOptions> = {}) {
  const log: string[] = [];
  const o: RunOptions = {
    path: "/v3/images/generations",
    model: "pipe",
    build: (shape) => ({ body: JSON.stringify(shape.stream ? { prompt: "p", stream: true, stream_progress: true, partial_images: 2 } : { prompt: "p" }), contentType: "application/json" }),
    stream: true,
    signal: new AbortController().signal,
    expectedImages: 1,
    onSeed: (seed) => log.push(`seed ${seed}`),
    onUnary: () => log.push("unary"),
    onEvent: (ev) => log.push(ev.kind === "completed" ? `completed ${ev.imageIndex} ${ev.b64} seed ${ev.seed}` : ev.kind),
    ...over,
  };
  return { o, log };
}

describe("one image request", () => {
  it("streams when the servable can", async () => {
    const { api, sent } = fakeApi([sse(["image_generation.progress", { step: 1, num_inference_steps: 2 }], ["image_generation.completed", { b64_json: "QQ==", rng_seed: 3 }])]);
    const { o, log } = options();
    assert.deepEqual(await runImageRequest(api, o), { streamed: true });
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.accept, "text/event-stream");
    assert.deepEqual(log, ["progress", "completed 0 QQ== seed 3"]);
  });

  it("asks again without stream when the servable refuses it, and hands on the unary answer's images", async () => {
    const { api, sent } = fakeApi([refusedStream(), json({ data: [{ b64_json: "QQ==" }, { b64_json: "Qg==" }], rng_seed: 9, size: "64x64" })]);
    const { o, log } = options({ expectedImages: 2 });
    assert.deepEqual(await runImageRequest(api, o), { streamed: false });
    assert.deepEqual(sent.map((s) => s.body), [{ prompt: "p", stream: true, stream_progress: true, partial_images: 2 }, { prompt: "p" }]);
    assert.equal(sent[1]!.accept, "application/json");
    assert.deepEqual(log, ["unary", "completed 0 QQ== seed 9", "completed 1 Qg== seed 9"]);
  });

  it("skips the streamed attempt for a servable known not to stream", async () => {
    const { api, sent } = fakeApi([json({ data: [{ b64_json: "QQ==" }] })]);
    const { o, log } = options({ stream: false });
    await runImageRequest(api, o);
    assert.deepEqual(sent.map((s) => s.body), [{ prompt: "p" }]);
    assert.deepEqual(log, ["unary", "completed 0 QQ== seed null"]);
  });

  it("says so when a servable answers, but not with images", async () => {
    // The echo servable answers its request back, as JSON.
    const { api } = fakeApi([json({ prompt: "p", stream: true })]);
    await assert.rejects(runImageRequest(api, options({ model: "echo" }).o), (e: unknown) => e instanceof ApiError && e.message === notImagesMessage("echo"));
    assert.equal(notImagesMessage("echo"), "echo answered, but not with images: it is not an image-generation servable");
    const { api: plain } = fakeApi([new Response("hello", { headers: { "Content-Type": "text/plain" } })]);
    await assert.rejects(runImageRequest(plain, options({ model: "txt" }).o), { message: notImagesMessage("txt") });
  });

  it("passes other refusals on, without a second attempt", async () => {
    const { api, sent } = fakeApi([new ApiError("Size 4000x4000 is larger than this model allows", 400, "size")]);
    await assert.rejects(runImageRequest(api, options().o), { message: "Size 4000x4000 is larger than this model allows" });
    assert.equal(sent.length, 1);
  });

  it("fails a unary answer with fewer images than asked for", async () => {
    const { api } = fakeApi([refusedStream(), json({ data: [{ b64_json: "QQ==" }] })]);
    await assert.rejects(runImageRequest(api, options({ expectedImages: 2 }).o), /answered with 1 of 2 images/);
  });
});
