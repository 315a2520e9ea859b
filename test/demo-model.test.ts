/**
 * The built-in demo model (models/demo, served by `graphserve demo` through the
 * same ONNX pipeline as any user's model) draws what it is asked, as the
 * demo-shapes checker reads it: fixed prompts at the default steps, the OVMS
 * demo's curl (a 512×512 PNG), image-to-image keeping the layout while changing
 * the colour, and inpainting repainting only the masked object.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import sharp from "sharp";
import { checkShapes, readShapes, type ShapeReading } from "../src/tools/accuracy/demo-shapes.js";
import { decodeRgb, runAccuracy } from "../src/tools/accuracy/run.js";
import { startDemoServer, type GraphserveProcess } from "./helpers/demo-server.js";

let server: GraphserveProcess;

async function png(res: Response): Promise<Buffer> {
  const text = await res.text();
  assert.equal(res.status, 200, text.slice(0, 300));
  return Buffer.from((JSON.parse(text) as { data: { b64_json: string }[] }).data[0].b64_json, "base64");
}

async function generate(body: Record<string, unknown>): Promise<Buffer> {
  return png(await fetch(`${server.url}/v3/images/generations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "demo", ...body }) }));
}

async function edit(fields: Record<string, string>, image: Buffer, mask?: Buffer): Promise<Buffer> {
  const form = new FormData();
  form.set("model", "demo");
  for (const [k, v] of Object.entries(fields)) form.set(k, v);
  form.set("image", new Blob([image], { type: "image/png" }), "image.png");
  if (mask) form.set("mask", new Blob([mask], { type: "image/png" }), "mask.png");
  return png(await fetch(`${server.url}/v3/images/edits`, { method: "POST", body: form }));
}

function described(r: ShapeReading): string {
  return `${r.colour ?? "nothing"} ${r.shape ?? ""} on ${r.background} (fill ${r.fill?.toFixed(2)}, box ${JSON.stringify(r.box)})`;
}

async function expectDrawn(prompt: string, bytes: Buffer): Promise<ShapeReading> {
  const check = checkShapes(prompt, await decodeRgb(bytes))!;
  assert.ok(check.ok, `"${prompt}": the picture shows a ${described(check.seen)}`);
  return check.seen;
}

/** Intersection over union of two boxes. */
function iou(a: NonNullable<ShapeReading["box"]>, b: NonNullable<ShapeReading["box"]>): number {
  const w = Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) + 1);
  const h = Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) + 1);
  const area = (r: typeof a) => (r.x1 - r.x0 + 1) * (r.y1 - r.y0 + 1);
  return (w * h) / (area(a) + area(b) - w * h);
}

// Combinations training saw (the held-out ones are graphserve accuracy's job: see models/demo/held-out-prompts.txt).
// Circles and triangles: the model's squares come out with pinched sides that read as circles (the
// adherence figure in the README counts them as failures), so no square is claimed here.
const FIXED = [
  { prompt: "a red circle on a blue background", rng_seed: 1 },
  { prompt: "a blue circle on a white background", rng_seed: 2 },
  { prompt: "a white triangle on a green background", rng_seed: 3 },
];

const cases: [string, (t: TestContext) => Promise<void>][] = [];
cases.push(["fixed prompts at the demo's default steps draw what they ask", async () => {
  for (const p of FIXED) await expectDrawn(p.prompt, await generate(p));
}]);

cases.push(["the OVMS demo's curl, verbatim but for the model name, gets a 512×512 PNG", async () => {
  const bytes = await generate({ prompt: "three cats", num_inference_steps: 2, size: "512x512" });
  const meta = await sharp(bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ["png", 512, 512]);
}]);

cases.push(["image-to-image keeps the layout and changes the colour the prompt changes", async () => {
  const source = await generate({ prompt: "a red circle on a white background", rng_seed: 11 });
  const before = await expectDrawn("a red circle on a white background", source);
  const edited = await edit({ prompt: "a blue circle on a white background", strength: "0.7", rng_seed: "5" }, source);
  const afterEdit = await expectDrawn("a blue circle on a white background", edited);
  assert.ok(iou(before.box!, afterEdit.box!) > 0.6, `layout kept: ${JSON.stringify(before.box)} → ${JSON.stringify(afterEdit.box)}`);
}]);

cases.push(["inpainting repaints only the masked object", async () => {
  const source = await generate({ prompt: "a red circle on a yellow background", rng_seed: 21 });
  const img = await decodeRgb(source);
  const before = await expectDrawn("a red circle on a yellow background", source);
  // The mask: the object's box grown by 1/32 of the side, white (repaint) on black (keep).
  const grow = img.width / 32;
  const box = { x0: before.box!.x0 - grow, y0: before.box!.y0 - grow, x1: before.box!.x1 + grow, y1: before.box!.y1 + grow };
  const inMask = (x: number, y: number) => x >= box.x0 && x <= box.x1 && y >= box.y0 && y <= box.y1;
  const mask = new Uint8Array(img.width * img.height * 3);
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) if (inMask(x, y)) mask.fill(255, (y * img.width + x) * 3, (y * img.width + x) * 3 + 3);
  const maskPng = await sharp(mask, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
  const edited = await edit({ prompt: "a blue circle on a yellow background", rng_seed: "7" }, source, maskPng);
  const afterEdit = await expectDrawn("a blue circle on a yellow background", edited);
  assert.ok(iou(before.box!, afterEdit.box!) > 0.5, `in place: ${JSON.stringify(before.box)} → ${JSON.stringify(afterEdit.box)}`);
  // Away from the mask the picture is the original. The pipeline masks latents, and one latent of this
  // model covers 64×64 pixels (1/8 of the side), so pixels within one latent of the mask may change.
  const out = await decodeRgb(edited);
  const cell = img.width / 8;
  const nearMask = (x: number, y: number) => x >= box.x0 - cell && x <= box.x1 + cell && y >= box.y0 - cell && y <= box.y1 + cell;
  let changed = 0;
  let outside = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (nearMask(x, y)) continue;
      outside++;
      const i = (y * img.width + x) * 3;
      if (Math.abs(out.data[i] - img.data[i]) + Math.abs(out.data[i + 1] - img.data[i + 1]) + Math.abs(out.data[i + 2] - img.data[i + 2]) > 48) changed++;
    }
  }
  assert.ok(outside > 0 && changed / outside < 0.01, `${changed} of ${outside} pixels away from the mask changed visibly`);
}]);

cases.push(["a size its UNet cannot take (a multiple of 64, not of 128) is a 400 naming the multiple, before any step", async () => {
  const res = await fetch(`${server.url}/v3/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "demo", prompt: "a red circle on a blue background", size: "320x320" }),
  });
  const text = await res.text();
  assert.equal(res.status, 400, text);
  const message = (JSON.parse(text) as { error: { message: string } }).error.message;
  assert.match(message.split("\n")[0], /size 320x320 is not supported by this model: width and height must be multiples of 128/);
  assert.doesNotMatch(message, /Concat/, "refused before ONNX Runtime runs");
}]);

cases.push(["graphserve accuracy --check demo-shapes reads every image it asked for, deterministically", async () => {
  const prompts = ["a black circle on a blue background", "a green triangle on a black background"];
  const report = await runAccuracy({ url: server.url, model: "demo", prompts, check: "demo-shapes" });
  assert.equal(report.summary.passed, true, "seed S twice gives the same bytes, S+1 others");
  assert.equal(report.summary.checked, 2);
  assert.deepEqual(report.results.map((r) => r.shapes?.expected), [
    { shape: "circle", colour: "black", background: "blue" },
    { shape: "triangle", colour: "green", background: "black" },
  ]);
  assert.equal(report.summary.drawnRight, report.results.filter((r) => r.shapes?.ok).length);
}]);

test("the demo model draws what it is asked", { timeout: 600_000 }, async (t) => {
  server = await startDemoServer(t);
  for (const [name, fn] of cases) await t.test(name, fn);
});
