/**
 * graphserve's `stream_progress` extension on the tiny image model: one
 * progress event per denoising step of every image, before its completed
 * event, for generations and edits; refused without `stream`; invisible to
 * a client that does not ask (the openai SDK). Also: a stream in flight is
 * an active run in the graph's stats.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import type { GraphStats } from "../src/server/graph-view-types.js";
import { errorOf, eventually, type TestServer } from "./server-helpers.js";
import { solidImage, sseEvents, startImageServer, type SseEventData } from "./image-server.js";


const progressOf = (events: readonly SseEventData[], type: string) => events.filter((e) => e.data.type === type);

/** Every image's progress: steps 1…total in order, one total for all, each before that image's completed event. */
function assertProgress(events: readonly SseEventData[], prefix: "image_generation" | "image_edit", images: number): number {
  const progress = progressOf(events, `${prefix}.progress`);
  assert.ok(progress.length > 0, "progress events sent");
  for (const e of progress) {
    assert.equal(e.event, `${prefix}.progress`, "the event name is the type");
    assert.deepEqual(Object.keys(e.data).sort(), ["image_index", "num_inference_steps", "step", "type"]);
  }
  const total = progress[0].data.num_inference_steps as number;
  assert.ok(Number.isInteger(total) && total > 0);
  for (let i = 0; i < images; i++) {
    const mine = progress.filter((e) => e.data.image_index === i);
    assert.deepEqual(mine.map((e) => e.data.step), Array.from({ length: total }, (_, k) => k + 1), `image ${i}: one event per step, 1-based, in order`);
    assert.ok(mine.every((e) => e.data.num_inference_steps === total));
    const completedAt = events.findIndex((e) => e.data.type === `${prefix}.completed` && e.data.image_index === i);
    assert.ok(completedAt > events.indexOf(mine[mine.length - 1]), `image ${i}: progress before completed`);
  }
  assert.equal(progress.length, images * total, "nothing else");
  assert.equal(events.filter((e) => e.data.type === `${prefix}.completed`).length, images);
  return total;
}

describe("stream_progress", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startImageServer("tiny");
  });

  const generate = (json: Record<string, unknown>) => srv.request("POST", "/v3/images/generations", { json: { model: "tiny", prompt: "a fox", size: "64x64", ...json } });

  test("generations: a progress event per step, then the completed event; partial images still come", async () => {
    const r = await generate({ stream: true, stream_progress: true, num_inference_steps: 5, partial_images: 2, rng_seed: 3 });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/event-stream/);
    const events = sseEvents(r.text);
    const total = assertProgress(events, "image_generation", 1);
    assert.ok(total >= 5, `the schedule runs at least the steps asked for (${total})`);
    assert.equal(events.filter((e) => e.data.type === "image_generation.partial_image").length, 2);
    assert.equal(events[events.length - 1].data.type, "image_generation.completed");
    // A partial image follows the progress event of its step.
    const firstPartial = events.findIndex((e) => e.data.type === "image_generation.partial_image");
    assert.equal(events[firstPartial - 1].data.type, "image_generation.progress");
  });

  test("n=2: each image gets its own progress, told apart by image_index", async () => {
    const r = await generate({ stream: true, stream_progress: true, num_inference_steps: 3, n: 2 });
    assert.equal(r.status, 200);
    assertProgress(sseEvents(r.text), "image_generation", 2);
  });

  test("edits: image_edit.progress over multipart (two images, n=2: image_index 0-3)", async () => {
    const form = new FormData();
    form.append("model", "tiny");
    form.append("prompt", "blue");
    form.append("stream", "true");
    form.append("stream_progress", "true");
    form.append("num_inference_steps", "4");
    form.append("n", "2");
    for (const colour of [{ r: 10, g: 200, b: 30 }, { r: 200, g: 10, b: 30 }]) {
      form.append("image[]", new Blob([new Uint8Array(await solidImage(64, 64, "png", colour))], { type: "image/png" }), "in.png");
    }
    const res = await fetch(`${srv.url}/v3/images/edits`, { method: "POST", body: form });
    assert.equal(res.status, 200);
    const events = sseEvents(await res.text());
    assertProgress(events, "image_edit", 4);
    assert.equal(progressOf(events, "image_generation.progress").length, 0);
  });

  test("refused with param stream_progress: without stream, or not a boolean (JSON and multipart)", async () => {
    for (const json of [{ stream_progress: true }, { stream: false, stream_progress: true }, { stream: true, stream_progress: "yes" }, { stream: true, stream_progress: 1 }]) {
      const r = await generate(json);
      assert.equal(r.status, 400, JSON.stringify(json));
      assert.equal(errorOf(r).param, "stream_progress");
      assert.equal(errorOf(r).type, "invalid_request_error");
    }
    assert.match(errorOf(await generate({ stream_progress: true })).message, /stream_progress needs stream: true/);
    const form = new FormData();
    form.append("model", "tiny");
    form.append("prompt", "x");
    form.append("stream", "true");
    form.append("stream_progress", "maybe");
    form.append("image", new Blob([new Uint8Array(await solidImage(64, 64))], { type: "image/png" }), "in.png");
    const r = await fetch(`${srv.url}/v3/images/edits`, { method: "POST", body: form });
    assert.equal(r.status, 400);
    assert.equal(((await r.json()) as { error: { param: string } }).error.param, "stream_progress");
  });

  test("stream_progress: false asks for nothing, with or without stream", async () => {
    const unary = await generate({ stream_progress: false, num_inference_steps: 1 });
    assert.equal(unary.status, 200);
    assert.equal((unary.body as { data: unknown[] }).data.length, 1);
    const streamed = await generate({ stream: true, stream_progress: false, num_inference_steps: 2 });
    assert.deepEqual(sseEvents(streamed.text).map((e) => e.data.type), ["image_generation.completed"]);
  });

  test("the openai SDK's stream (which never sends the field) is unchanged: partial images and completed only", async () => {
    const client = new OpenAI({ baseURL: `${srv.url}/v3`, apiKey: "unused", maxRetries: 0 });
    const body = { model: "tiny", prompt: "a fox", size: "64x64", stream: true, partial_images: 1, num_inference_steps: 3 };
    const stream = await client.images.generate(body as unknown as Parameters<OpenAI["images"]["generate"]>[0] & { stream: true });
    const types: string[] = [];
    for await (const e of stream) types.push(e.type);
    assert.deepEqual(types, ["image_generation.partial_image", "image_generation.completed"]);
  });

  test("a stream in flight is an active run; it is counted finished once its last event is sent", async () => {
    const statsOf = async (): Promise<GraphStats> => (await srv.request("GET", "/graphserve/v1/graphs/tiny/stats")).body as GraphStats;
    const before = await statsOf();
    assert.equal(before.runs.active, 0);
    const res = await fetch(`${srv.url}/v3/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", prompt: "slow", size: "512x512", stream: true, stream_progress: true, num_inference_steps: 400 }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("image_generation.progress")) {
      const { value, done } = await reader.read();
      assert.ok(!done, "a progress event before the end");
      text += decoder.decode(value, { stream: true });
    }
    const during = await statsOf();
    assert.equal(during.runs.active, 1, "the streaming request");
    // Its ImageGen call returned the stream; the generation goes on behind it and
    // (ctx.continueUntil) keeps the call active, not yet finished, until it is over.
    assert.deepEqual([during.nodes[0].processed, during.nodes[0].active], [before.nodes[0].processed, 1]);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    assert.match(text, /image_generation\.completed/);
    // The lease goes right after the last write; the client may see the end a moment before.
    await eventually(async () => (await statsOf()).runs.active === 0, "the run to finish");
    assert.deepEqual((await statsOf()).runs, { active: 0, finished: before.runs.finished + 1 });
  });
});
