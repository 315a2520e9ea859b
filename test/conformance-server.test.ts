/**
 * Conformance through the server: each exporter folder of test/fixtures/conformance, served unchanged
 * with `--model_path` and its own graph.pbtxt, answers a golden's request with exactly the images the
 * pipeline makes for the same seed and generator (OVMS's mt19937, the graph's default); and, with the
 * graph's noise_generator set to torch-cpu (the generator diffusers' goldens used), with diffusers'
 * images within 2/255.
 */
import { strict as assert } from "node:assert";
import { cp, readFile, writeFile } from "node:fs/promises";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type TestContext, after, describe, it } from "node:test";
import { createNoiseGenerator } from "../src/backends/noise/index.js";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { decodeRgb } from "../src/tools/accuracy/run.js";
import { CONFORMANCE_ROOT as ROOT, GOLDENS, type GoldenCase, goldenImage, goldenNames, goldenRequest, readGolden } from "./helpers/conformance.js";
import { call, eventually, spawnCli, tempDir } from "./server-helpers.js";

/**
 * Every exported folder with a graph.pbtxt, each with the first golden of its pipeline that runs the
 * folder's own scheduler (text-to-image preferred; an edit when the pipeline has only edits).
 */
function goldensPerFolder(): GoldenCase[] {
  const first = new Map<string, GoldenCase>();
  for (const c of goldenNames().map(readGolden)) {
    if (c.request.scheduler !== null) continue;
    const had = first.get(c.pipeline);
    if (!had || (had.request.mode !== "text-to-image" && c.request.mode === "text-to-image")) first.set(c.pipeline, c);
  }
  const out: GoldenCase[] = [];
  for (const [pipeline, g] of first) {
    for (const kind of readdirSync(join(ROOT, pipeline)).sort()) {
      if (existsSync(join(ROOT, pipeline, kind, "graph.pbtxt"))) out.push({ ...g, export: `${pipeline}/${kind}` });
    }
  }
  return out;
}

async function serve(t: TestContext, folder: string): Promise<string> {
  const r = await spawnCli(t, ["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_name", "m", "--model_path", folder]);
  await eventually(async () => (await call(r.url, "GET", "/v2/health/ready")).status === 200, `${folder} to load`, 60_000);
  return r.url;
}

/** The golden's request through the OpenAI Images API: /images/generations, or a multipart /images/edits. */
async function generate(url: string, g: GoldenCase): Promise<Uint8Array[]> {
  const r = g.request;
  const fields: Record<string, string | number> = {
    model: "m",
    prompt: r.prompt,
    ...(r.negative_prompt !== null ? { negative_prompt: r.negative_prompt } : {}),
    size: `${r.width}x${r.height}`,
    n: r.n,
    num_inference_steps: r.steps,
    ...(r.guidance !== null ? { guidance_scale: r.guidance } : {}),
    ...(r.strength !== null && r.mode !== "text-to-image" ? { strength: r.strength } : {}),
    rng_seed: r.seed,
  };
  let reply;
  if (r.mode === "text-to-image") reply = await call(url, "POST", "/v3/images/generations", { json: fields });
  else {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
    for (const [field, file] of [["image", g.image], ["mask", g.mask]] as const) {
      if (file) form.append(field, new Blob([readFileSync(join(GOLDENS, g.name, file))], { type: "image/png" }), file);
    }
    reply = await call(url, "POST", "/v3/images/edits", { body: form });
  }
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  const data = (reply.body as { data: { b64_json: string }[] }).data;
  return Promise.all(data.map(async (d) => new Uint8Array((await decodeRgb(Buffer.from(d.b64_json, "base64"))).data)));
}

const pipelines: OnnxPipeline[] = [];
after(async () => {
  for (const p of pipelines) await p.dispose();
});

describe("conformance through the server (--model_path, the folder's graph.pbtxt)", () => {
  const goldens = goldensPerFolder();
  it("has a served case per exporter folder", () => assert.ok(goldens.length > 0));
  for (const g of goldens) {
    it(`${g.export} (${g.name}): the server's images are the pipeline's for the seed, bit for bit`, async (t) => {
      const folder = join(ROOT, g.export);
      const p = await OnnxPipeline.load(folder, { intraOpNumThreads: 1 });
      pipelines.push(p);
      if (g.request.mode !== "text-to-image" && p.sessions.vaeEncoderOutput === "latent_sample") {
        return t.skip("the export samples the VAE latent in its graph, unseeded: edits do not repeat");
      }
      const got = await generate(await serve(t, folder), g);
      const r = g.request;
      const req = await goldenRequest(g);
      const want = await p.generate(req, {}, createNoiseGenerator("mt19937", r.seed));
      const size = r.width * r.height * 3;
      got.forEach((img, k) => assert.deepEqual(img, want.data.subarray(k * size, (k + 1) * size), `image ${k}`));
    });
  }

  it("the README's recipe as written: an `optimum-cli export onnx` folder plus graphs/image-generation/graph.pbtxt serves", async (t) => {
    // The sd-turbo fixture is `optimum-cli export onnx --model pipelines/sd-turbo --task text-to-image` (tools/reference/export_onnx.py).
    const g = goldens.find((x) => x.export === "sd-turbo/optimum-onnx-fp32");
    if (!g) return t.skip("no sd-turbo export");
    const dir = join(tempDir(), "sd-turbo");
    await cp(join(ROOT, g.export), dir, { recursive: true, filter: (src) => !src.endsWith("graph.pbtxt") });
    await cp(join(import.meta.dirname, "..", "..", "graphs", "image-generation", "graph.pbtxt"), join(dir, "graph.pbtxt"));
    const got = await generate(await serve(t, dir), g);
    const p = await OnnxPipeline.load(dir, { intraOpNumThreads: 1 });
    pipelines.push(p);
    const r = g.request;
    const want = await p.generate(await goldenRequest(g), {}, createNoiseGenerator("mt19937", r.seed));
    assert.deepEqual(got[0], want.data.subarray(0, r.width * r.height * 3));
  });

  it("with noise_generator torch-cpu in the graph, the server gives diffusers' images (≤ 2/255)", async (t) => {
    const g = goldens.find((x) => x.export === "sd1/optimum-onnx-fp32") ?? goldens[0];
    const dir = join(tempDir(), "model");
    await cp(join(ROOT, g.export), dir, { recursive: true });
    const graph = await readFile(join(dir, "graph.pbtxt"), "utf8");
    await writeFile(join(dir, "graph.pbtxt"), graph.replace('models_path: "./"', 'models_path: "./"\n      noise_generator: "torch-cpu"'));
    const got = await generate(await serve(t, dir), g);
    let max = 0;
    for (let k = 0; k < g.outputs.length; k++) {
      const want = (await goldenImage(g, g.outputs[k])).data;
      for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(got[k][i] - want[i]));
    }
    t.diagnostic(`${g.name} through the server: max |Δpixel| ${max}`);
    assert.ok(max <= 2, `max pixel difference ${max}`);
  });
});
