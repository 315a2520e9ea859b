/**
 * The Images API end to end: the real server serving the tiny seeded SD
 * model, driven by the official `openai` SDK (v6) and by raw HTTP, through
 * the one-node graph and the HttpInput → ImageGen → Base64Encoder pipeline.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import OpenAI, { toFile } from "openai";
import sharp from "sharp";
import { decodeImage } from "../calculators/image-gen/codec.js";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import type { GenerationRequest } from "../src/backends/types.js";
import { DEFAULT_OPTIONS, imageInfo, solidImage, sseEvents, startImageServer, tinyModel } from "./image-server.js";
import { errorOf, eventually, type TestServer } from "./server-helpers.js";

/** The response fields graphserve adds to OpenAI's (and the SDK's type does not list). */
interface Answer {
  created: number;
  data: { b64_json: string }[];
  output_format: string;
  size: string;
  quality: string;
  background: string;
  rng_seed: number;
}

type GenerateBody = Parameters<OpenAI["images"]["generate"]>[0];
type EditBody = Parameters<OpenAI["images"]["edit"]>[0];

/** An SDK client whose requests name `model` (the servable) unless the body says otherwise. */
interface Api {
  readonly client: OpenAI;
  readonly model: string;
}
const sdk = (srv: TestServer, model: string, prefix = "/v3"): Api => ({ client: new OpenAI({ baseURL: `${srv.url}${prefix}`, apiKey: "unused", maxRetries: 0 }), model });

/** A non-streamed generation with OVMS extras (sent unchanged in the JSON body). */
async function generate(api: Api, body: Record<string, unknown>): Promise<Answer> {
  const r = await api.client.images.generate({ model: api.model, prompt: "a red fox", num_inference_steps: 1, ...body } as unknown as GenerateBody);
  return r as unknown as Answer;
}

/** A non-streamed edit (2 steps: the default strength 0.8 needs at least 2 to denoise at all). */
async function edit(api: Api, body: Record<string, unknown>): Promise<Answer> {
  const r = await api.client.images.edit({ model: api.model, prompt: "make it blue", num_inference_steps: 2, ...body } as unknown as EditBody);
  return r as unknown as Answer;
}

const png = async (w: number, h: number, colour?: { r: number; g: number; b: number }) =>
  toFile(await solidImage(w, h, "png", colour), "in.png", { type: "image/png" });

/** An RGBA PNG, opaque except for a transparent square in the middle (OpenAI's mask convention). */
async function rgbaMask(w: number, h: number): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 4, 255);
  for (let y = h / 4; y < (3 * h) / 4; y++) for (let x = w / 4; x < (3 * w) / 4; x++) px[(y * w + x) * 4 + 3] = 0;
  return sharp(px, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer();
}

/** A PNG of one colour whose middle square is fully transparent (the colour kept under it). */
async function rgbaHole(w: number, h: number, colour = { r: 200, g: 30, b: 30 }, holeAlpha = 0): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) px.set([colour.r, colour.g, colour.b, 255], i * 4);
  for (let y = h / 4; y < (3 * h) / 4; y++) for (let x = w / 4; x < (3 * w) / 4; x++) px[(y * w + x) * 4 + 3] = holeAlpha;
  return sharp(px, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer();
}

/** A black RGB PNG with a white square in the middle (OVMS's mask convention: white is repainted). */
async function bwMask(w: number, h: number): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3, 0);
  for (let y = h / 4; y < (3 * h) / 4; y++) for (let x = w / 4; x < (3 * w) / 4; x++) px.fill(255, (y * w + x) * 3, (y * w + x) * 3 + 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

async function assertImages(a: Answer, count: number, width: number, height: number, format = "png"): Promise<void> {
  assert.equal(a.data.length, count);
  for (const d of a.data) assert.deepEqual(await imageInfo(d.b64_json), { width, height, format });
  assert.equal(a.size, `${width}x${height}`);
  assert.equal(a.output_format, format);
}


describe("one-node graph through the openai SDK", () => {
  let srv: TestServer;
  let client: Api;
  before(async () => {
    srv = await startImageServer("tiny");
    client = sdk(srv, "tiny");
  });

  test("generate: n=1 and n=3 at a non-square size, with the response's fields", async () => {
    const before = Math.floor(Date.now() / 1000);
    const one = await generate(client, { size: "96x64", n: 1 });
    await assertImages(one, 1, 96, 64);
    assert.ok(one.created >= before - 1 && one.created <= Math.floor(Date.now() / 1000) + 1, `created ${one.created}`);
    assert.ok(Number.isSafeInteger(one.rng_seed) && one.rng_seed >= 0);
    assert.equal(one.background, "opaque");
    assert.equal(one.quality, "auto");

    const three = await generate(client, { size: "64x96", n: 3, rng_seed: 11 });
    await assertImages(three, 3, 64, 96);
    assert.equal(three.rng_seed, 11);
  });

  test("generate: default size is the servable's default_resolution", async () => {
    const a = await generate(client, {});
    await assertImages(a, 1, 64, 64);
  });

  test("generate: output_format jpeg and webp; output_compression lowers jpeg size", async () => {
    const jpeg = await generate(client, { size: "64x64", output_format: "jpeg", rng_seed: 3 });
    await assertImages(jpeg, 1, 64, 64, "jpeg");
    const webp = await generate(client, { size: "64x64", output_format: "webp", rng_seed: 3 });
    await assertImages(webp, 1, 64, 64, "webp");
    const low = await generate(client, { size: "64x64", output_format: "jpeg", output_compression: 10, rng_seed: 3 });
    await assertImages(low, 1, 64, 64, "jpeg");
    const high = await generate(client, { size: "64x64", output_format: "jpeg", output_compression: 100, rng_seed: 3 });
    const bytes = (a: Answer) => Buffer.from(a.data[0].b64_json, "base64").length;
    assert.ok(bytes(low) < bytes(high), `compression 10: ${bytes(low)} B, 100: ${bytes(high)} B`);
    assert.ok(bytes(low) < bytes(jpeg), `compression 10: ${bytes(low)} B, default: ${bytes(jpeg)} B`);
  });

  test("seeds: same seed twice is byte-identical, different seeds differ, an omitted seed is returned and replays", async () => {
    const body = { size: "64x64", num_inference_steps: 2 };
    const a = await generate(client, { ...body, rng_seed: 42 });
    const b = await generate(client, { ...body, rng_seed: 42 });
    assert.equal(a.data[0].b64_json, b.data[0].b64_json);
    assert.equal(a.rng_seed, 42);
    const c = await generate(client, { ...body, rng_seed: 43 });
    assert.notEqual(a.data[0].b64_json, c.data[0].b64_json);

    // OVMS keeps rng_seed mod 2^32 (std::mt19937::seed): 2^32 + 42 draws 42's noise; the answer names the seed as sent.
    const wide = await generate(client, { ...body, rng_seed: 2 ** 32 + 42 });
    assert.equal(wide.rng_seed, 2 ** 32 + 42);
    assert.equal(wide.data[0].b64_json, a.data[0].b64_json);

    const free = await generate(client, body);
    assert.ok(Number.isSafeInteger(free.rng_seed) && free.rng_seed < 2 ** 32, `a drawn seed names distinct noise: ${free.rng_seed}`);
    const replay = await generate(client, { ...body, rng_seed: free.rng_seed });
    assert.equal(replay.rng_seed, free.rng_seed);
    assert.equal(replay.data[0].b64_json, free.data[0].b64_json);
  });

  test("generate: the n images of one request differ; quality is echoed; response_format b64_json is fine, url is refused", async () => {
    const a = await generate(client, { size: "64x64", n: 3, rng_seed: 1, quality: "high", response_format: "b64_json" });
    assert.equal(new Set(a.data.map((d) => d.b64_json)).size, 3);
    assert.equal(a.quality, "high");
    await assert.rejects(generate(client, { response_format: "url" }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "response_format" && /b64_json/.test(e.message));
  });

  test("generate: background transparent is answered as opaque with png, refused with jpeg", async () => {
    const a = await generate(client, { size: "64x64", background: "transparent" });
    assert.equal(a.background, "opaque");
    await assertImages(a, 1, 64, 64);
    await assert.rejects(generate(client, { background: "transparent", output_format: "jpeg" }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "background");
  });

  test("generate: output_compression lowers webp size too", async () => {
    const low = await generate(client, { size: "64x64", output_format: "webp", output_compression: 5, rng_seed: 3 });
    const high = await generate(client, { size: "64x64", output_format: "webp", output_compression: 100, rng_seed: 3 });
    const bytes = (a: Answer) => Buffer.from(a.data[0].b64_json, "base64").length;
    assert.ok(bytes(low) < bytes(high), `webp compression 5: ${bytes(low)} B, 100: ${bytes(high)} B`);
  });

  test("edit: no size → the input's size rounded down to a multiple of 8", async () => {
    const a = await edit(client, { image: await png(100, 72) });
    await assertImages(a, 1, 96, 72);
  });

  test("edit: an explicit size", async () => {
    const a = await edit(client, { image: await png(100, 72), size: "64x64" });
    await assertImages(a, 1, 64, 64);
  });

  test("edit: a file labelled application/octet-stream is sniffed", async () => {
    const image = await toFile(await solidImage(64, 48), "upload.bin", { type: "application/octet-stream" });
    const a = await edit(client, { image });
    await assertImages(a, 1, 64, 48);
  });

  test("edit: a JPEG input", async () => {
    const image = await toFile(await solidImage(80, 64, "jpeg"), "in.jpg", { type: "image/jpeg" });
    const a = await edit(client, { image, output_format: "jpeg" });
    await assertImages(a, 1, 80, 64, "jpeg");
  });

  test("edit: several images (image[] parts) → n images per input image", async () => {
    const image = [await png(64, 64), await png(64, 64, { r: 10, g: 200, b: 10 })];
    const a = await edit(client, { image, n: 2, size: "64x64", rng_seed: 5 });
    await assertImages(a, 4, 64, 64);
    const one = await edit(client, { image, size: "64x64" });
    await assertImages(one, 2, 64, 64);
  });

  test("edit: the images of a multi-image edit follow their inputs; a one-element array works", async () => {
    const red = await solidImage(64, 64);
    const green = await solidImage(64, 64, "png", { r: 10, g: 200, b: 10 });
    const pair = await edit(client, { image: [await toFile(red, "a.png", { type: "image/png" }), await toFile(green, "b.png", { type: "image/png" })], rng_seed: 5 });
    assert.equal(pair.data.length, 2);
    assert.notEqual(pair.data[0].b64_json, pair.data[1].b64_json);
    const single = await edit(client, { image: [await toFile(red, "a.png", { type: "image/png" })], rng_seed: 5 });
    await assertImages(single, 1, 64, 64);
    const plain = await edit(client, { image: await toFile(red, "a.png", { type: "image/png" }), rng_seed: 5 });
    assert.equal(single.data[0].b64_json, plain.data[0].b64_json, "image[] with one part = image");
  });

  test("edit: OVMS numbers as multipart text (guidance_scale 7 and 7.5, strength) and SDK-encoded lora_alphas[x]", async () => {
    const image = await png(64, 64);
    const seven = await edit(client, { image, guidance_scale: 7, strength: 0.9, rng_seed: 2 });
    const sevenHalf = await edit(client, { image: await png(64, 64), guidance_scale: 7.5, strength: 0.9, rng_seed: 2 });
    await assertImages(seven, 1, 64, 64);
    assert.notEqual(seven.data[0].b64_json, sevenHalf.data[0].b64_json);
    // rng_seed as multipart text past 2^32 (OVMS reads it with stou64; the generator keeps it mod 2^32).
    const wide = await edit(client, { image: await png(64, 64), guidance_scale: 7, strength: 0.9, rng_seed: 2 ** 32 + 2 });
    assert.equal(wide.rng_seed, 2 ** 32 + 2);
    assert.equal(wide.data[0].b64_json, seven.data[0].b64_json);
    // lora_alphas: {a: 0.5} travels as a lora_alphas[a] part; this servable has no adapters.
    await assert.rejects(edit(client, { image: await png(64, 64), lora_alphas: { a: 0.5 } }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "lora_alphas");
  });

  test("edit: size auto keeps the input's (rounded) size; a tiny input is brought up to 8x8", async () => {
    await assertImages(await edit(client, { image: await png(100, 72), size: "auto" }), 1, 96, 72);
    await assertImages(await edit(client, { image: await png(5, 5) }), 1, 8, 8);
  });

  test("edit: bad uploads are 400s naming the part (mask of another size; bytes that are no image)", async () => {
    const mask = await toFile(await bwMask(32, 32), "mask.png", { type: "image/png" });
    await assert.rejects(edit(client, { image: await png(64, 64), mask }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "mask");
    const notImage = await toFile(Buffer.from("hello, not an image"), "in.png", { type: "image/png" });
    await assert.rejects(edit(client, { image: notImage }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "image");
  });

  test("edit: masks in both conventions (RGBA with a transparent hole; black/white RGB)", async () => {
    const image = await png(64, 64);
    const openaiMask = await toFile(await rgbaMask(64, 64), "mask.png", { type: "image/png" });
    const a = await edit(client, { image, mask: openaiMask, rng_seed: 9 });
    await assertImages(a, 1, 64, 64);
    const ovmsMask = await toFile(await bwMask(64, 64), "mask.png", { type: "image/png" });
    const b = await edit(client, { image: await png(64, 64), mask: ovmsMask, rng_seed: 9 });
    await assertImages(b, 1, 64, 64);
    // The same hole either way: the two conventions repaint the same pixels.
    assert.equal(a.data[0].b64_json, b.data[0].b64_json);
    // And the mask matters: inpainting is not the unmasked image-to-image edit.
    const unmasked = await edit(client, { image: await png(64, 64), rng_seed: 9 });
    assert.notEqual(unmasked.data[0].b64_json, a.data[0].b64_json);
  });

  test("edit: no mask, a transparent image: its transparency is the mask (OpenAI's rule); an opaque alpha channel edits all of it", async () => {
    const masked = await edit(client, { image: await png(64, 64), mask: await toFile(await rgbaMask(64, 64), "mask.png", { type: "image/png" }), rng_seed: 9 });
    const own = await edit(client, { image: await toFile(await rgbaHole(64, 64), "in.png", { type: "image/png" }), rng_seed: 9 });
    await assertImages(own, 1, 64, 64);
    assert.equal(own.data[0].b64_json, masked.data[0].b64_json, "the image's own alpha inpaints as that alpha sent as the mask");
    const unmasked = await edit(client, { image: await png(64, 64), rng_seed: 9 });
    const opaque = await edit(client, { image: await toFile(await rgbaHole(64, 64, undefined, 255), "in.png", { type: "image/png" }), rng_seed: 9 });
    assert.equal(opaque.data[0].b64_json, unmasked.data[0].b64_json, "an alpha channel with every pixel opaque is image-to-image");
    // Alpha that fades no pixel below 128 repaints nothing: image-to-image too, not an inpainting that keeps all.
    const faded = await edit(client, { image: await toFile(await rgbaHole(64, 64, undefined, 200), "in.png", { type: "image/png" }), rng_seed: 9 });
    assert.equal(faded.data[0].b64_json, unmasked.data[0].b64_json, "alpha 200 in the middle is image-to-image");
    // With several images, only the first one's transparency counts (the mask applies to the first image).
    const second = await edit(client, { image: [await png(64, 64), await toFile(await rgbaHole(64, 64), "b.png", { type: "image/png" })], rng_seed: 9 });
    assert.equal(second.data[0].b64_json, unmasked.data[0].b64_json);
  });

  test("edit: uploads of more than 16× the largest answer's pixels are refused from their header, whichever image it is", async () => {
    // max_resolution 512x512: at most 16 × 512² = 4,194,304 pixels (2048²) per upload.
    const fits = await toFile(await solidImage(2048, 2048), "fits.png", { type: "image/png" });
    await assertImages(await edit(client, { image: fits, size: "64x64" }), 1, 64, 64);
    const big = await toFile(await solidImage(2049, 2048), "big.png", { type: "image/png" });
    await assert.rejects(edit(client, { image: [await png(64, 64), big], size: "64x64" }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.param, "image[1]");
      assert.match(e.message, /^400 Image parsing failed: image\[1\]: image is 2049x2048 \(4196352 pixels\), more than the limit of 4194304 pixels\n/);
      return true;
    });
  });

  test("OpenAI's style (generations) and input_fidelity (edits) are accepted; an empty prompt is refused with OpenAI's text, the reason first", async () => {
    await assertImages(await generate(client, { size: "64x64", style: "vivid" }), 1, 64, 64);
    await assertImages(await edit(client, { image: await png(64, 64), input_fidelity: "high" }), 1, 64, 64);
    await assert.rejects(generate(client, { prompt: "" }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.code, "empty_string");
      assert.equal(e.param, "prompt");
      assert.equal(
        e.message.split("\n")[0],
        "400 Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead.",
      );
      assert.match(e.message, /\nMediapipe execution failed\. MP status - INVALID_ARGUMENT: CalculatorGraph::Run\(\) failed: \nCalculator::Process\(\) for node "ImageGenExecutor" failed: Invalid 'prompt': empty string/);
      return true;
    });
  });

  test("stream: partial images 0,1 then one completed event", async () => {
    const stream = await client.client.images.generate({ model: "tiny", prompt: "a fox", size: "64x64", stream: true, partial_images: 2, num_inference_steps: 3, rng_seed: 21 } as unknown as GenerateBody & { stream: true });
    const events: Record<string, unknown>[] = [];
    for await (const e of stream) events.push(e as unknown as Record<string, unknown>);
    const partials = events.filter((e) => e.type === "image_generation.partial_image");
    const completed = events.filter((e) => e.type === "image_generation.completed");
    assert.ok(partials.length >= 1 && partials.length <= 2, `${partials.length} partial events`);
    assert.deepEqual(partials.map((p) => p.partial_image_index), partials.map((_, i) => i));
    assert.equal(completed.length, 1);
    assert.equal(events.at(-1), completed[0], "completed comes last");
    assert.deepEqual(await imageInfo(completed[0].b64_json as string), { width: 64, height: 64, format: "png" });
    assert.equal(completed[0].size, "64x64");
    for (const p of partials) assert.deepEqual(await imageInfo(p.b64_json as string), { width: 64, height: 64, format: "png" });
    // The final streamed image is the unary image for the same seed.
    const unary = await generate(client, { prompt: "a fox", size: "64x64", num_inference_steps: 3, rng_seed: 21 });
    assert.equal(completed[0].b64_json, unary.data[0].b64_json);
  });

  test("stream: partial_images 0 gives only the completed event", async () => {
    const stream = await client.client.images.generate({ model: "tiny", prompt: "a fox", size: "64x64", stream: true, partial_images: 0, num_inference_steps: 3 } as unknown as GenerateBody & { stream: true });
    const types: string[] = [];
    for await (const e of stream) types.push(e.type);
    assert.deepEqual(types, ["image_generation.completed"]);
  });

  test("stream: edits give image_edit.* events", async () => {
    const stream = await client.client.images.edit({ model: "tiny", prompt: "blue", image: await png(64, 64), stream: true, partial_images: 1, num_inference_steps: 3 } as unknown as EditBody & { stream: true });
    const events: Record<string, unknown>[] = [];
    for await (const e of stream) events.push(e as unknown as Record<string, unknown>);
    const types = events.map((e) => e.type as string);
    assert.ok(types.every((t) => t.startsWith("image_edit.")), types.join());
    assert.equal(types.at(-1), "image_edit.completed");
    assert.equal(types.filter((t) => t === "image_edit.completed").length, 1);
    assert.ok(types.includes("image_edit.partial_image"), types.join());
    assert.deepEqual(await imageInfo(events.at(-1)!.b64_json as string), { width: 64, height: 64, format: "png" });
  });

  test("stream: n=2 gives two completed events", async () => {
    const stream = await client.client.images.generate({ model: "tiny", prompt: "a fox", size: "64x64", n: 2, stream: true, num_inference_steps: 1, rng_seed: 6 } as unknown as GenerateBody & { stream: true });
    const done: string[] = [];
    for await (const e of stream) if (e.type === "image_generation.completed") done.push(e.b64_json);
    const unary = await generate(client, { prompt: "a fox", size: "64x64", n: 2, num_inference_steps: 1, rng_seed: 6 });
    assert.deepEqual(done, unary.data.map((d) => d.b64_json));
  });

  test("stream over raw HTTP: a multipart edit streams image_edit events with x-rng-seed", async () => {
    const form = new FormData();
    form.append("model", "tiny");
    form.append("prompt", "blue");
    form.append("stream", "true");
    form.append("rng_seed", "99");
    form.append("num_inference_steps", "2");
    form.append("image", new Blob([await solidImage(64, 64)], { type: "image/png" }), "in.png");
    const res = await fetch(`${srv.url}/v3/images/edits`, { method: "POST", body: form });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(res.headers.get("x-rng-seed"), "99");
    const events = sseEvents(await res.text());
    assert.deepEqual(events.map((e) => e.data.type), ["image_edit.completed"]);
    assert.equal(events[0].event, "image_edit.completed");
    const unary = await edit(client, { image: await png(64, 64), rng_seed: 99, prompt: "blue" });
    assert.equal(events[0].data.b64_json, unary.data[0].b64_json);
  });

  test("SDK withResponse: JSON and event-stream content types, request ids, x-rng-seed on the SDK's stream", async () => {
    const unary = await client.client.images.generate({ model: "tiny", prompt: "x", size: "64x64", num_inference_steps: 1 } as unknown as GenerateBody).withResponse();
    assert.match(unary.response.headers.get("content-type") ?? "", /^application\/json/);
    assert.ok(unary.request_id, "x-request-id exposed as request_id");
    const streamed = await client.client.images.generate({ model: "tiny", prompt: "x", size: "64x64", num_inference_steps: 1, rng_seed: 31, stream: true } as unknown as GenerateBody & { stream: true }).withResponse();
    assert.match(streamed.response.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(streamed.response.headers.get("x-rng-seed"), "31");
    const types: string[] = [];
    for await (const e of streamed.data) types.push(e.type);
    assert.deepEqual(types, ["image_generation.completed"]);
  });

  test("stream over raw HTTP: text/event-stream, x-rng-seed, event names match types", async () => {
    const r = await srv.request("POST", "/v3/images/generations", {
      json: { model: "tiny", prompt: "a fox", size: "64x64", stream: true, partial_images: 1, num_inference_steps: 3, rng_seed: 77 },
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(r.headers.get("x-rng-seed"), "77");
    const events = sseEvents(r.text);
    assert.ok(events.length >= 2, r.text.slice(0, 200));
    for (const e of events) assert.equal(e.event, e.data.type);
    assert.equal(events.at(-1)!.data.type, "image_generation.completed");
    assert.equal(events.at(-1)!.data.rng_seed, 77);
    assert.equal(events[0].data.partial_image_index, 0);
  });

  test("stream without a seed: x-rng-seed names the seed used, and it replays", async () => {
    const r = await srv.request("POST", "/v3/images/generations", { json: { model: "tiny", prompt: "a fox", size: "64x64", stream: true, num_inference_steps: 1 } });
    assert.equal(r.status, 200);
    const seed = Number(r.headers.get("x-rng-seed"));
    assert.ok(Number.isSafeInteger(seed), `x-rng-seed ${r.headers.get("x-rng-seed")}`);
    const done = sseEvents(r.text).at(-1)!.data;
    assert.equal(done.rng_seed, seed);
    const replay = await generate(client, { prompt: "a fox", size: "64x64", num_inference_steps: 1, rng_seed: seed });
    assert.equal(replay.data[0].b64_json, done.b64_json);
  });
});

describe("raw HTTP with OVMS fields", () => {
  let srv: TestServer;
  const ok = async (path: string, json: Record<string, unknown>): Promise<Answer> => {
    const r = await srv.request("POST", path, { json });
    assert.equal(r.status, 200, r.text);
    return r.body as Answer;
  };
  before(async () => {
    srv = await startImageServer("tiny-ovms");
  });

  test("prompt_2, negative_prompt, guidance_scale as integer and float, width/height, num_images_per_prompt, strength", async () => {
    const base = { model: "tiny-ovms", prompt: "a fox", prompt_2: "in the snow", negative_prompt: "blurry", width: 96, height: 64, num_images_per_prompt: 2, strength: 0.5, num_inference_steps: 1, rng_seed: 4 };
    const int = await ok("/v3/images/generations", { ...base, guidance_scale: 7 });
    await assertImages(int, 2, 96, 64);
    const float = await ok("/v3/images/generations", { ...base, guidance_scale: 7.5 });
    await assertImages(float, 2, 96, 64);
    assert.notEqual(int.data[0].b64_json, float.data[0].b64_json, "guidance_scale changes the image");
    // The negative prompt reaches the model.
    const noNegative = await ok("/v3/images/generations", { ...base, guidance_scale: 7.5, negative_prompt: undefined });
    assert.notEqual(noNegative.data[0].b64_json, float.data[0].b64_json);
  });

  test("/v1/images/generations answers like /v3", async () => {
    const body = { model: "tiny-ovms", prompt: "a fox", size: "64x64", num_inference_steps: 1, rng_seed: 8 };
    const v1 = await ok("/v1/images/generations", body);
    const v3 = await ok("/v3/images/generations", body);
    await assertImages(v1, 1, 64, 64);
    assert.equal(v1.data[0].b64_json, v3.data[0].b64_json);
    // And through the SDK with a /v1 base URL.
    const viaSdk = await generate(sdk(srv, "tiny-ovms", "/v1"), { size: "64x64", rng_seed: 8, prompt: "a fox" });
    assert.equal(viaSdk.data[0].b64_json, v3.data[0].b64_json);
  });

  test("an unknown model is a 404 with param model", async () => {
    const r = await srv.request("POST", "/v3/images/generations", { json: { model: "nope", prompt: "x" } });
    assert.equal(r.status, 404);
    assert.equal(errorOf(r).param, "model");
  });

  test("a validation failure is a 400 in OpenAI's error shape", async () => {
    const r = await srv.request("POST", "/v3/images/generations", { json: { model: "tiny-ovms", prompt: "x", size: "64x64", output_format: "gif" } });
    assert.equal(r.status, 400);
    const e = errorOf(r);
    assert.equal(e.param, "output_format");
    assert.equal(e.type, "invalid_request_error");
    await assert.rejects(generate(sdk(srv, "tiny-ovms"), { size: "60x64" }), (err: unknown) => err instanceof OpenAI.BadRequestError && (err as InstanceType<typeof OpenAI.BadRequestError>).param === "size");
  });
});

describe("URI routing: model \"\" → servable images/generations", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startImageServer("images/generations");
  });

  test("an empty model routes by URI, on /v3 and /v1, and through the SDK", async () => {
    for (const prefix of ["/v3", "/v1"]) {
      const r = await srv.request("POST", `${prefix}/images/generations`, { json: { model: "", prompt: "a fox", size: "64x64", num_inference_steps: 1 } });
      assert.equal(r.status, 200, r.text);
      await assertImages(r.body as Answer, 1, 64, 64);
    }
    const a = await generate(sdk(srv, ""), { size: "64x64" });
    await assertImages(a, 1, 64, 64);
  });
});

describe("pipeline graph (HttpInput → ImageGen → Base64Encoder)", () => {
  let one: TestServer;
  let pipe: TestServer;
  before(async () => {
    [one, pipe] = await Promise.all([startImageServer("tiny-one"), startImageServer("tiny-pipe", { shape: "pipeline" })]);
  });

  test("generate: same bytes as the one-node graph", async () => {
    const body = { size: "96x64", n: 2, num_inference_steps: 2, rng_seed: 123, output_format: "webp" };
    const a = await generate(sdk(one, "tiny-one"), body);
    const b = await generate(sdk(pipe, "tiny-pipe"), body);
    await assertImages(b, 2, 96, 64, "webp");
    assert.deepEqual(b.data.map((d) => d.b64_json), a.data.map((d) => d.b64_json));
    assert.equal(b.rng_seed, 123);
    assert.equal(b.size, a.size);
  });

  test("edit: same bytes as the one-node graph", async () => {
    const body = { num_inference_steps: 2, rng_seed: 321 };
    const a = await edit(sdk(one, "tiny-one"), { ...body, image: await png(72, 64) });
    const b = await edit(sdk(pipe, "tiny-pipe"), { ...body, image: await png(72, 64) });
    await assertImages(b, 1, 72, 64);
    assert.equal(b.data[0].b64_json, a.data[0].b64_json);
  });

  test("stream: true is a 400 with param stream", async () => {
    const r = await pipe.request("POST", "/v3/images/generations", { json: { model: "tiny-pipe", prompt: "x", size: "64x64", stream: true } });
    assert.equal(r.status, 400, r.text);
    assert.equal(errorOf(r).param, "stream");
    await assert.rejects(
      (async () => {
        const s = await sdk(pipe, "tiny-pipe").client.images.generate({ model: "tiny-pipe", prompt: "x", size: "64x64", stream: true } as unknown as GenerateBody & { stream: true });
        for await (const _ of s) void _;
      })(),
      (err: unknown) => err instanceof OpenAI.BadRequestError,
    );
  });
});

describe("graph option noise_generator", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startImageServer("tiny-torch-noise", { options: `${DEFAULT_OPTIONS}\n      noise_generator: "torch-cpu"` });
  });

  test("torch-cpu reaches the model workers: the served image is the pipeline's with torch's generator", async () => {
    const served = await generate(sdk(srv, "tiny-torch-noise"), { size: "64x64", num_inference_steps: 2, rng_seed: 42 });
    const request: GenerationRequest = { mode: "text2image", prompt: "a red fox", width: 64, height: 64, numInferenceSteps: 2, rngSeed: 42 };
    const decoded = await decodeImage(Buffer.from(served.data[0].b64_json, "base64"), "b64_json", { maxPixels: 64 * 64 });
    for (const noise of ["torch-cpu", "mt19937"] as const) {
      const pipeline = await OnnxPipeline.load(await tinyModel(), { noise, intraOpNumThreads: 1 });
      try {
        const expected = await pipeline.generate(request);
        assert.equal(Buffer.compare(decoded.data, expected.data) === 0, noise === "torch-cpu", `the served image ${noise === "torch-cpu" ? "is" : "is not"} the ${noise} pipeline's`);
      } finally {
        await pipeline.dispose();
      }
    }
  });
});

describe("metrics", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startImageServer("tiny-metrics", { metrics: true });
  });

  test("queue wait, queue depth and images generated for this servable", async () => {
    const client = sdk(srv, "tiny-metrics");
    await generate(client, { size: "64x64", n: 2 });
    await generate(client, { size: "64x64", n: 1 });
    await edit(client, { image: [await png(64, 64), await png(64, 64)], n: 1 });
    const r = await srv.request("GET", "/metrics");
    assert.equal(r.status, 200);
    const line = (name: string) => r.text.split("\n").find((l) => l.startsWith(name) && l.includes('servable="tiny-metrics"'));
    const value = (l: string | undefined) => Number(l?.trim().split(/\s+/).at(-1));
    const waits = line("graphserve_image_queue_wait_seconds_count{");
    assert.ok(waits, r.text);
    assert.equal(value(waits), 3);
    const depth = line("graphserve_image_queue_depth{");
    assert.ok(depth, "queue depth gauge for the servable");
    assert.equal(value(depth), 0);
    assert.equal(value(line("graphserve_images_generated_total{")), 5);
  });

  const metric = async (name: string): Promise<number | undefined> => {
    const r = await srv.request("GET", "/metrics");
    const l = r.text.split("\n").find((x) => x.startsWith(`${name}{`) && x.includes('servable="tiny-metrics"'));
    return l === undefined ? undefined : Number(l.trim().split(/\s+/).at(-1));
  };

  test("queue depth counts a request waiting for the generation slot, then drops back to 0", async () => {
    const slow = { model: "tiny-metrics", prompt: "x", size: "128x128", num_inference_steps: 300 };
    const both = Promise.all([srv.request("POST", "/v3/images/generations", { json: slow }), srv.request("POST", "/v3/images/generations", { json: slow })]);
    await eventually(async () => (await metric("graphserve_image_queue_depth")) === 1, "one request queued behind the other");
    const replies = await both;
    assert.deepEqual(replies.map((r) => r.status), [200, 200]);
    assert.equal(await metric("graphserve_image_queue_depth"), 0);
    assert.equal(await metric("graphserve_images_generated_total"), 7);
    assert.equal(await metric("graphserve_image_queue_wait_seconds_count"), 5);
  });

  test("a client leaving a stream cancels its generation: the slot is freed and nothing is counted", async () => {
    const ac = new AbortController();
    const res = await fetch(`${srv.url}/v3/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-metrics", prompt: "x", size: "512x512", stream: true, num_inference_steps: 999 }),
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    ac.abort();
    const t = Date.now();
    const next = await srv.request("POST", "/v3/images/generations", { json: { model: "tiny-metrics", prompt: "x", size: "64x64", num_inference_steps: 1 } });
    assert.equal(next.status, 200);
    // 999 steps at 512x512 take ~2.5 s on this model; the follow-up (capacity 1) did not wait for them.
    assert.ok(Date.now() - t < 1500, `follow-up took ${Date.now() - t} ms`);
    assert.equal(await metric("graphserve_images_generated_total"), 8, "the cancelled stream generated nothing");
    assert.equal(await metric("graphserve_image_queue_depth"), 0);
  });
});
