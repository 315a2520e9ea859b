/**
 * The seed's own model family: OVMS's image-generation demo serves
 * black-forest-labs/FLUX.1-schnell. graphserve serves a real Optimum export of a
 * FLUX.1-schnell-shaped pipeline (tiny random weights, test/fixtures/conformance)
 * under that name and answers the demo's requests verbatim but for the host:
 * its model status check and its curl (2 steps, 512x512). The demo's Python
 * snippet runs in seed-client.test.ts.
 */
import { strict as assert } from "node:assert";
import { join } from "node:path";
import { describe, it } from "node:test";
import { decodeImage, encodeImage } from "../calculators/image-gen/codec.js";
import type { RgbImage } from "../src/backends/types.js";
import { ROOT, startConfiguredServer } from "./helpers/demo-server.js";
import { sseEvents } from "./image-server.js";

const MODEL = "black-forest-labs/FLUX.1-schnell";
const FLUX_SCHNELL = join(ROOT, "test/fixtures/conformance/flux-schnell/optimum-onnx-fp32");
const FLUX_DEV = join(ROOT, "test/fixtures/conformance/flux-dev/optimum-onnx-fp32");
const SD3 = join(ROOT, "test/fixtures/conformance/sd3/optimum-onnx-fp32");

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly png?: Buffer;
  readonly param?: string | null;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  const body = JSON.parse(text) as { data?: { b64_json: string }[]; error?: { param: string | null } };
  return { status: res.status, text, png: body.data ? Buffer.from(body.data[0].b64_json, "base64") : undefined, param: body.error?.param };
}

function generate(url: string, body: Record<string, unknown>): Promise<Answer> {
  return fetch(`${url}/v3/images/generations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(answer);
}

async function edit(url: string, fields: Record<string, string>, image: RgbImage, mask?: RgbImage): Promise<Answer> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.set(k, v);
  form.set("image", new Blob([await encodeImage(image, { format: "png" })], { type: "image/png" }), "image.png");
  if (mask) form.set("mask", new Blob([await encodeImage(mask, { format: "png" })], { type: "image/png" }), "mask.png");
  return answer(await fetch(`${url}/v3/images/edits`, { method: "POST", body: form }));
}

/** A 64×64 picture with a bright square, and a mask whose white half repaints. */
function picture(): { image: RgbImage; mask: RgbImage } {
  const image = new Uint8Array(64 * 64 * 3);
  const mask = new Uint8Array(64 * 64 * 3);
  for (let y = 0; y < 64; y++) {
    for (let x = 0; x < 64; x++) {
      const i = (y * 64 + x) * 3;
      const inside = x >= 16 && x < 48 && y >= 16 && y < 48;
      image.set(inside ? [230, 40, 40] : [20, 40, 200], i);
      mask.fill(x >= 32 ? 255 : 0, i, i + 3);
    }
  }
  return { image: { width: 64, height: 64, data: image }, mask: { width: 64, height: 64, data: mask } };
}

/** The largest per-value difference of two PNGs (same seed and size: any difference comes from the input that changed). */
async function changed(a: Buffer, b: Buffer): Promise<number> {
  const [x, y] = [await decodeImage(a, "a", { maxPixels: 1 << 24 }), await decodeImage(b, "b", { maxPixels: 1 << 24 })];
  let d = 0;
  for (let i = 0; i < x.data.length; i++) d = Math.max(d, Math.abs(x.data[i] - y.data[i]));
  return d;
}

describe("the OVMS demo's FLUX.1-schnell requests", () => {
  it("model status, then the curl: three cats, 2 steps, 512x512", { timeout: 120_000 }, async (t) => {
    const server = await startConfiguredServer(t, ["--model_name", MODEL, "--model_path", FLUX_SCHNELL]);
    const config = (await (await fetch(`${server.url}/v1/config`)).json()) as Record<string, { model_version_status: { state: string; status: { error_code: string } }[] }>;
    assert.equal(config[MODEL].model_version_status[0].state, "AVAILABLE");
    assert.equal(config[MODEL].model_version_status[0].status.error_code, "OK");

    const res = await fetch(`${server.url}/v3/images/generations`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: `{
    "model": "black-forest-labs/FLUX.1-schnell",
    "prompt": "three cats",
    "num_inference_steps": 2,
    "size": "512x512"
  }`,
    });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { data: { b64_json: string }[] };
    assert.equal(body.data.length, 1);
    const png = Buffer.from(body.data[0].b64_json, "base64");
    assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
    const image = await decodeImage(png, "b64_json", { maxPixels: 4096 * 4096 });
    assert.equal(`${image.width}x${image.height}`, "512x512");
    // The model list names it as the demo's clients expect.
    const models = (await (await fetch(`${server.url}/v3/models`)).json()) as { data: { id: string }[] };
    assert.ok(models.data.some((m) => m.id === MODEL));
  });

  it("FLUX.1 over HTTP: image-to-image and inpainting, true CFG with a negative prompt, and what FLUX refuses", { timeout: 120_000 }, async (t) => {
    const server = await startConfiguredServer(t, ["--model_name", "flux", "--model_path", FLUX_SCHNELL]);
    const { image, mask } = picture();
    const base = { model: "flux", prompt: "three cats", num_inference_steps: "4", rng_seed: "3" };
    const i2i = await edit(server.url, { ...base, strength: "0.5" }, image);
    assert.equal(i2i.status, 200, i2i.text);
    const inpaint = await edit(server.url, { ...base, strength: "0.9" }, image, mask);
    assert.equal(inpaint.status, 200, inpaint.text);
    // The mask reaches the pipeline (its correctness against diffusers is the conformance suite's).
    const otherMask = await edit(server.url, { ...base, strength: "0.9" }, image, { ...mask, data: mask.data.map((v) => 255 - v) });
    assert.equal(otherMask.status, 200, otherMask.text);
    assert.ok(!inpaint.png!.equals(otherMask.png!), "another mask, another picture");
    assert.ok(!inpaint.png!.equals(i2i.png!));

    const small = { model: "flux", prompt: "three cats", size: "64x64", num_inference_steps: 2, rng_seed: 5 };
    const plain = await generate(server.url, small);
    // Streaming: a progress event per step and partial images decoded from the packed latents, then the final image.
    const stream = await fetch(`${server.url}/v3/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...small, num_inference_steps: 3, stream: true, stream_progress: true, partial_images: 2 }),
    });
    const events = sseEvents(await stream.text());
    const types = events.map((e) => e.data.type);
    assert.equal(types.filter((x) => x === "image_generation.progress").length, 3);
    assert.equal(types.filter((x) => x === "image_generation.partial_image").length, 2);
    assert.equal(types.at(-1), "image_generation.completed");
    for (const e of events.filter((x) => x.data.type !== "image_generation.progress")) {
      const image = await decodeImage(Buffer.from(e.data.b64_json as string, "base64"), "b64_json", { maxPixels: 1 << 24 });
      assert.equal(`${image.width}x${image.height}`, "64x64");
    }
    const trueCfg = await generate(server.url, { ...small, negative_prompt: "blurry", true_cfg_scale: 3.0 });
    assert.equal(trueCfg.status, 200, trueCfg.text);
    assert.ok((await changed(plain.png!, trueCfg.png!)) > 0, "true CFG with a negative prompt changes the picture");
    const refusals: [Record<string, unknown>, string][] = [
      [{ negative_prompt: "blurry" }, "negative_prompt"],
      [{ negative_prompt_2: "blurry", true_cfg_scale: 2.0 }, "true_cfg_scale"],
      [{ prompt_3: "x" }, "prompt_3"],
      [{ max_sequence_length: 513 }, "max_sequence_length"],
      [{ size: "72x72" }, "size"],
    ];
    for (const [extra, param] of refusals) {
      const r = await generate(server.url, { ...small, ...extra });
      assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${r.text}`);
      assert.equal(r.param, param, `${JSON.stringify(extra)}: ${r.text}`);
    }
  });

  it("FLUX.1-dev's embedded guidance and SD3's classifier-free guidance reach their models", { timeout: 120_000 }, async (t) => {
    const dev = await startConfiguredServer(t, ["--model_name", "dev", "--model_path", FLUX_DEV]);
    const req = { model: "dev", prompt: "three cats", size: "64x64", num_inference_steps: 2, rng_seed: 9 };
    const [g35, g5] = [await generate(dev.url, { ...req, guidance_scale: 3.5 }), await generate(dev.url, { ...req, guidance_scale: 5.0 })];
    assert.equal(g35.status, 200, g35.text);
    assert.ok((await changed(g35.png!, g5.png!)) > 0, "guidance_scale reaches dev's guidance embedding");

    const sd3 = await startConfiguredServer(t, ["--model_name", "sd3", "--model_path", SD3]);
    const r = { model: "sd3", prompt: "three cats", size: "64x64", num_inference_steps: 2, rng_seed: 9 };
    const [a, b, c] = [await generate(sd3.url, r), await generate(sd3.url, { ...r, negative_prompt: "blurry" }), await generate(sd3.url, { ...r, prompt_3: "an oil painting" })];
    assert.equal(a.status, 200, a.text);
    assert.ok((await changed(a.png!, b.png!)) > 0, "the negative prompt reaches the unconditional half");
    assert.ok((await changed(a.png!, c.png!)) > 0, "prompt_3 reaches T5");
    const refused = await generate(sd3.url, { ...r, guidance_scale: 1.0, negative_prompt: "blurry" });
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.param, "negative_prompt");
  });
});

