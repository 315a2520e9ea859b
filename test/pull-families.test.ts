/**
 * Pull and configure modes on FLUX.1 and SD3 repositories, against the
 * loopback Hub stand-in: the committed exports (test/fixtures/conformance:
 * Optimum's ONNX layout, fp32 and fp16; test/fixtures/openvino: optimum-intel
 * IR) published under Hub ids, pulled with the real CLI.
 *
 * OVMS writes the same graph for every family: its export script and its
 * C++ exporter have no FLUX or SD3 option, `max_sequence_length` is a request
 * field only (GenAI's family default applies when it is absent: FLUX 512,
 * SD3 256), `guidance_scale` in the graph exists only for a static reshape,
 * and `default_num_inference_steps` stays 50 unless a flag says otherwise
 * (FLUX.1-schnell included). The pulled graph must be that graph.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { chooseBackend, detectModelFormats, loadBackend } from "../src/backends/index.js";
import { readModelIndex, type ModelFamily } from "../src/backends/model-index.js";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";
import { imageGenerationGraph, imageGraphSettingsFromFlags } from "../src/servables/pull/graph-export.js";
import { PullError, pullModel } from "../src/servables/pull/pull.js";
import { checkImageGenOptions, type ImageGenCalculatorOptions, type ImageGenSettings } from "../calculators/image-gen/options.js";
import { createFakeOpenVino } from "./fixtures/fake-openvino-genai/index.js";
import { startHubStandIn, type HubRequestRecord, type HubStandIn } from "./helpers/hub-stand-in.js";
import { runProcess, type ProcessResult } from "./helpers/run-process.js";
import { CLI, ROOT, call, spawnCli, tempDir } from "./server-helpers.js";

for (const k of ["HF_TOKEN", "HF_ENDPOINT", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "OVMS_MODEL_REPOSITORY_PATH"]) delete process.env[k];

const CONFORMANCE = join(ROOT, "test/fixtures/conformance");
const OPENVINO = join(ROOT, "test/fixtures/openvino");

interface OnnxRepo {
  /** The Hub id it is published under. */
  readonly id: string;
  /** Folder under test/fixtures/conformance. */
  readonly fixture: string;
  readonly family: ModelFamily;
  readonly pipelineClass: string;
  /** Published gated (FLUX.1-dev is): pulled with HF_TOKEN. */
  readonly token?: string;
}

const ONNX_REPOS: readonly OnnxRepo[] = [
  // The seed's own --source_model, here holding an ONNX export.
  { id: "black-forest-labs/FLUX.1-schnell", fixture: "flux-schnell/optimum-onnx-fp32", family: "flux", pipelineClass: "FluxPipeline" },
  { id: "someone/FLUX.1-schnell-onnx-fp16", fixture: "flux-schnell/optimum-onnx-fp16", family: "flux", pipelineClass: "FluxPipeline" },
  { id: "black-forest-labs/FLUX.1-dev", fixture: "flux-dev/optimum-onnx-fp32", family: "flux", pipelineClass: "FluxPipeline", token: "hf_dev_access" },
  { id: "stabilityai/stable-diffusion-3-medium-onnx", fixture: "sd3/optimum-onnx-fp32", family: "sd3", pipelineClass: "StableDiffusion3Pipeline" },
  { id: "someone/sd3-onnx-fp16", fixture: "sd3/optimum-onnx-fp16", family: "sd3", pipelineClass: "StableDiffusion3Pipeline" },
];

/** Relative paths of every regular file under `dir`. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** A copy of a fixture folder as the exporter left it: without the graph.pbtxt committed beside it. */
function exportOnly(fixtureDir: string): string {
  const dir = join(tempDir(), "export");
  cpSync(fixtureDir, dir, { recursive: true });
  rmSync(join(dir, "graph.pbtxt"), { force: true });
  return dir;
}

function assertSameFiles(dir: string, source: string, extra: string[]): void {
  const want = filesUnder(source);
  assert.deepEqual(filesUnder(dir).filter((f) => !extra.includes(f)), want);
  for (const f of want) assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(source, f))), `${f} is byte-identical`);
}

async function standIn(t: TestContext): Promise<HubStandIn> {
  const hub = await startHubStandIn();
  t.after(() => hub.close());
  return hub;
}

const contentRequests = (reqs: HubRequestRecord[]) => reqs.filter((r) => r.url.includes("/resolve/") || r.url.startsWith("/cdn/"));

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, API_KEY: "", ...env }, maxBuffer: 64 * 1024 * 1024 });
}

/** The `graphserve: …` lines of stderr: exactly one. */
function oneReason(r: ProcessResult): string {
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("graphserve: "));
  assert.equal(lines.length, 1, `one graphserve: line in ${JSON.stringify(r.stderr)}`);
  return lines[0];
}

let registry: CalculatorRegistry | undefined;

/** A graph.pbtxt read as a servable reads it: the ImageGenExecutor's options and the settings the calculator derives. */
async function graphSettings(text: string): Promise<{ options: ImageGenCalculatorOptions; settings: ImageGenSettings }> {
  registry ??= await CalculatorRegistry.withBuiltins();
  const doc = parseGraphText(text, "graph.pbtxt", registry.schema);
  assert.deepEqual(doc.warnings, [], "parses cleanly");
  const node = validateGraph(doc, registry).nodes.find((n) => n.name === "ImageGenExecutor");
  assert.ok(node, "an ImageGenExecutor node");
  const options = node.options as unknown as ImageGenCalculatorOptions;
  return { options, settings: checkImageGenOptions(options) };
}

/** The fields a graph sets explicitly (proto2 presence; a repeated field when it has entries), with their values. */
function setFields(options: ImageGenCalculatorOptions): Record<string, unknown> {
  const fields = options as unknown as Record<string, unknown>;
  return Object.fromEntries(Object.keys(fields).filter((k) => !(Array.isArray(fields[k]) && fields[k].length === 0)).map((k) => [k, fields[k]]));
}

test("ONNX FLUX.1 (schnell fp32/fp16, gated dev) and SD3 (fp32/fp16) repositories: --pull downloads them whole, writes OVMS's family-independent graph, picks ONNX Runtime", async (t) => {
  const hub = await standIn(t);
  const repo = tempDir();
  const defaultGraph = imageGenerationGraph(imageGraphSettingsFromFlags({}));
  for (const r of ONNX_REPOS) {
    await t.test(`${r.id} (${r.fixture})`, async () => {
      const source = exportOnly(join(CONFORMANCE, r.fixture));
      await hub.addRepoFromFolder(r.id, source, r.token !== undefined ? { gated: { token: r.token } } : {});
      const env = { HF_ENDPOINT: hub.url, ...(r.token !== undefined ? { HF_TOKEN: r.token } : {}) };
      const c = await cli(["--source_model", r.id, "--model_repository_path", repo, "--pull", "--task", "image_generation"], env);
      assert.equal(c.code, 0, c.stderr);
      const dir = join(repo, ...r.id.split("/"));
      assert.match(c.stderr, new RegExp(`wrote ${join(dir, "graph.pbtxt").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      assertSameFiles(dir, source, ["graph.pbtxt"]);

      // The graph OVMS's exporters write for any image-generation model: models_path only, OVMS's defaults apply.
      const graph = readFileSync(join(dir, "graph.pbtxt"), "utf8");
      assert.equal(graph, defaultGraph);
      // The same text the fixture's committed graph.pbtxt has (written by --configure when the fixture was made).
      assert.equal(graph, readFileSync(join(CONFORMANCE, r.fixture, "graph.pbtxt"), "utf8"));
      const { options, settings } = await graphSettings(graph);
      assert.deepEqual(setFields(options), { models_path: "./" });
      assert.equal(settings.defaultSteps, 50, "OVMS's default_num_inference_steps: also for FLUX.1-schnell");
      assert.equal(settings.maxSteps, 100);
      assert.equal(settings.staticGuidanceScale, undefined, "no graph guidance without a static resolution");
      assert.equal(settings.defaultResolution, undefined, "the model's native size");
      assert.deepEqual(settings.staticResolutions, []);

      // What loads it: the family from model_index.json, ONNX Runtime from the files.
      const index = await readModelIndex(dir);
      assert.equal(index.family, r.family);
      assert.equal(index.pipelineClass, r.pipelineClass);
      assert.deepEqual(detectModelFormats(dir), ["onnxruntime"]);
      assert.equal(await chooseBackend(dir), "onnxruntime");
    });
  }
  const config = JSON.parse(readFileSync(join(repo, "config.json"), "utf8")) as { model_config_list: { config: { name: string; base_path: string } }[] };
  assert.deepEqual(
    config.model_config_list.map((e) => e.config),
    ONNX_REPOS.map((r) => ({ name: r.id, base_path: r.id })),
  );
});

test("FLUX.1-dev without HF_TOKEN: refused as gated in one line, nothing downloaded", async (t) => {
  const hub = await standIn(t);
  const dev = ONNX_REPOS.find((r) => r.token !== undefined)!;
  await hub.addRepoFromFolder(dev.id, exportOnly(join(CONFORMANCE, dev.fixture)), { gated: { token: dev.token! } });
  const repo = tempDir();
  const c = await cli(["--source_model", dev.id, "--model_repository_path", repo, "--pull"], { HF_ENDPOINT: hub.url });
  assert.equal(c.code, 1, c.stderr);
  assert.match(oneReason(c), /black-forest-labs\/FLUX\.1-dev is gated.*HF_TOKEN/);
  assert.deepEqual(filesUnder(repo), []);
});

test("FLUX.1-schnell with the export flags a deployment gives: each lands in graph.pbtxt as OVMS writes it; flags the calculator refuses stop the pull before a byte", async (t) => {
  const hub = await standIn(t);
  const schnell = ONNX_REPOS[0];
  await hub.addRepoFromFolder(schnell.id, exportOnly(join(CONFORMANCE, schnell.fixture)));
  const env = { HF_ENDPOINT: hub.url };

  // schnell is distilled for 1–4 steps: only the flag changes OVMS's default of 50.
  const dynamic = tempDir();
  const c1 = await cli(["--source_model", schnell.id, "--model_repository_path", dynamic, "--pull", "--default_num_inference_steps", "4", "--max_num_inference_steps", "8", "--default_resolution", "512x512"], env);
  assert.equal(c1.code, 0, c1.stderr);
  const g1 = await graphSettings(readFileSync(join(dynamic, "black-forest-labs/FLUX.1-schnell/graph.pbtxt"), "utf8"));
  assert.deepEqual(setFields(g1.options), { models_path: "./", default_resolution: "512x512", default_num_inference_steps: 4, max_num_inference_steps: 8 });
  assert.equal(g1.settings.defaultSteps, 4);
  assert.deepEqual(g1.settings.defaultResolution, { width: 512, height: 512 });

  // A static shape: guidance_scale 0 (schnell's) is written, it is a value.
  const fixed = tempDir();
  const c2 = await cli(["--source_model", schnell.id, "--model_repository_path", fixed, "--pull", "--resolution", "512x512", "--guidance_scale", "0", "--num_images_per_prompt", "1"], env);
  assert.equal(c2.code, 0, c2.stderr);
  const g2 = await graphSettings(readFileSync(join(fixed, "black-forest-labs/FLUX.1-schnell/graph.pbtxt"), "utf8"));
  assert.deepEqual(setFields(g2.options), { models_path: "./", resolution: "512x512", num_images_per_prompt: 1, guidance_scale: 0 });
  assert.equal(g2.settings.staticGuidanceScale, 0);

  // OVMS refuses a graph guidance without exactly one static resolution when the graph loads; here before downloading.
  const before = contentRequests(hub.requests).length;
  const refused = tempDir();
  const c3 = await cli(["--source_model", schnell.id, "--model_repository_path", refused, "--pull", "--guidance_scale", "3.5"], env);
  assert.equal(c3.code, 2, c3.stderr);
  assert.match(oneReason(c3), /guidance_scale is only allowed with exactly one resolution/);
  const c4 = await cli(["--source_model", schnell.id, "--model_repository_path", refused, "--pull", "--resolution", "512x512 1024x1024", "--guidance_scale", "3.5"], env);
  assert.equal(c4.code, 2, c4.stderr);
  assert.match(oneReason(c4), /guidance_scale is only allowed with exactly one resolution/);
  assert.equal(contentRequests(hub.requests).length, before, "nothing was downloaded for the refused flags");
  assert.deepEqual(filesUnder(refused), []);
});

test("--configure on FLUX.1-dev and SD3 export folders: writes the fixture's graph.pbtxt, touches nothing else; the same flags give the same graph as for SD", async () => {
  // With flags: the family plays no part in the text (a FLUX or SD3 folder gets what an SD folder gets).
  const flags = ["--resolution", "512x512", "--guidance_scale", "3.5", "--target_device", "CPU"];
  const sdDir = exportOnly(join(CONFORMANCE, "sd1/optimum-onnx-fp32"));
  const sd = await cli(["--configure", "--model_path", sdDir, ...flags]);
  assert.equal(sd.code, 0, sd.stderr);
  const sdGraph = readFileSync(join(sdDir, "graph.pbtxt"), "utf8");
  for (const [i, fixture] of ["flux-dev/optimum-onnx-fp32", "sd3/optimum-onnx-fp32", "flux-schnell/optimum-onnx-fp16"].entries()) {
    const dir = exportOnly(join(CONFORMANCE, fixture));
    const files = filesUnder(dir);
    const mtimes = files.map((f) => statSync(join(dir, f)).mtimeMs);
    const c = await cli(["--configure", "--model_path", dir]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout.trim(), `wrote ${join(dir, "graph.pbtxt")}`);
    assert.equal(readFileSync(join(dir, "graph.pbtxt"), "utf8"), readFileSync(join(CONFORMANCE, fixture, "graph.pbtxt"), "utf8"), fixture);
    assert.deepEqual(files.map((f) => statSync(join(dir, f)).mtimeMs), mtimes, `${fixture}: nothing else touched`);
    assert.deepEqual(filesUnder(dir), [...files, "graph.pbtxt"].sort());
    if (i === 0) {
      const again = await cli(["--configure", "--model_path", dir]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout.trim(), `unchanged: ${join(dir, "graph.pbtxt")}`);
    }
    const c2 = await cli(["--configure", "--model_path", dir, ...flags]);
    assert.equal(c2.code, 0, c2.stderr);
    assert.equal(readFileSync(join(dir, "graph.pbtxt"), "utf8"), sdGraph, fixture);
  }
});

test("OpenVINO IR FLUX.1-schnell and SD3 (the seed's OpenVINO/FLUX.1-schnell-int8-ov form): refused before download where OpenVINO cannot run, pulled and given to OpenVINO where it can; the graph's options are those OVMS's export script wrote", async (t) => {
  const hub = await standIn(t);
  const fake = createFakeOpenVino();
  const canRun = async () => undefined;
  const cannotRun = async () => "The OpenVINO backend needs the npm package \"openvino-genai-node\", which could not be loaded.";
  for (const [id, fixture, family] of [["OpenVINO/FLUX.1-schnell-int8-ov", "flux-schnell", "flux"], ["OpenVINO/stable-diffusion-3-medium-int8-ov", "sd3", "sd3"]] as const) {
    await t.test(id, async () => {
      const source = exportOnly(join(OPENVINO, fixture));
      await hub.addRepoFromFolder(id, source);
      const before = contentRequests(hub.requests).length;
      const repo = tempDir();
      await assert.rejects(pullModel({ sourceModel: id, repositoryPath: repo, endpoint: hub.url, backendUnavailable: cannotRun }), (e: unknown) => {
        assert.ok(e instanceof PullError, String(e));
        assert.ok(e.message.startsWith(`${id} holds OpenVINO IR (openvino_model.xml), which this machine cannot run, so nothing was downloaded.`), e.message);
        return true;
      });
      assert.equal(contentRequests(hub.requests).length, before, "nothing downloaded");
      assert.deepEqual(filesUnder(repo), []);

      // --target_device CPU: what OVMS's script writes by default (its C++ exporter leaves device out without the flag).
      const graph = imageGenerationGraph(imageGraphSettingsFromFlags({ target_device: "CPU" }));
      const r = await pullModel({ sourceModel: id, repositoryPath: repo, endpoint: hub.url, backendUnavailable: canRun, beforeReveal: (staging) => writeFile(join(staging, "graph.pbtxt"), graph) });
      assert.equal(r.downloaded, true);
      assertSameFiles(r.dir, source, ["graph.pbtxt"]);
      assert.equal((await readModelIndex(r.dir)).family, family);
      assert.deepEqual(detectModelFormats(r.dir), ["openvino"]);
      assert.equal(await chooseBackend(r.dir, "auto", async () => fake.bindings), "openvino");
      const ours = await graphSettings(graph);
      const ovms = await graphSettings(readFileSync(join(OPENVINO, fixture, "graph.pbtxt"), "utf8"));
      assert.deepEqual(setFields(ours.options), setFields(ovms.options));
      assert.deepEqual(ours.settings, ovms.settings);
    });
  }
});

test("a PyTorch-only FLUX repository (black-forest-labs/FLUX.1-schnell as the Hub has it) is refused before download, naming the ONNX export to run", async (t) => {
  const hub = await standIn(t);
  const index = JSON.parse(readFileSync(join(CONFORMANCE, "flux-schnell/optimum-onnx-fp32/model_index.json"), "utf8")) as Record<string, unknown>;
  hub.addRepo("black-forest-labs/FLUX.1-schnell", {
    files: {
      "model_index.json": JSON.stringify(index),
      "flux1-schnell.safetensors": new Uint8Array(4000),
      "transformer/config.json": "{}",
      "transformer/diffusion_pytorch_model-00001-of-00003.safetensors": new Uint8Array(3000),
      "text_encoder_2/model-00001-of-00002.safetensors": new Uint8Array(3000),
      "vae/diffusion_pytorch_model.safetensors": new Uint8Array(2000),
      "ae.safetensors": new Uint8Array(2000),
    },
  });
  const repo = tempDir();
  const c = await cli(["--source_model", "black-forest-labs/FLUX.1-schnell", "--model_repository_path", repo, "--pull"], { HF_ENDPOINT: hub.url });
  assert.equal(c.code, 1, c.stderr);
  assert.match(oneReason(c), /black-forest-labs\/FLUX\.1-schnell holds a diffusers pipeline without OpenVINO IR .* or ONNX .* `optimum-cli export onnx --model black-forest-labs\/FLUX\.1-schnell DIR`/);
  assert.deepEqual(contentRequests(hub.requests), []);
  assert.deepEqual(filesUnder(repo), []);
});

/**
 * The seed's deployment end to end on ONNX Runtime: `--source_model
 * black-forest-labs/FLUX.1-schnell` pulls, serves, and answers the demo's
 * curl and its Python client's request; FLUX-specific fields reach the
 * family and its rules refuse what GenAI refuses. Waits for the ONNX FLUX
 * family (issue 16): until then model-folder.ts refuses the folder at load.
 */
test(
  "one command serves the pulled FLUX.1-schnell ONNX repository and answers the seed's requests",
  { timeout: 180_000 },
  async (t) => {
    const hub = await standIn(t);
    const schnell = ONNX_REPOS[0];
    await hub.addRepoFromFolder(schnell.id, exportOnly(join(CONFORMANCE, schnell.fixture)));
    const repo = tempDir();
    // Fails fast (and says why) while the family is missing, instead of waiting for a servable that never loads.
    await pullModel({ sourceModel: schnell.id, repositoryPath: repo, endpoint: hub.url });
    const probe = await loadBackend(join(repo, "black-forest-labs/FLUX.1-schnell"));
    await probe.dispose();

    const served = tempDir();
    const { proc, url, exit, stderr } = await spawnCli(
      t,
      ["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_repository_path", served, "--task", "image_generation", "--source_model", schnell.id],
      { HF_ENDPOINT: hub.url },
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = (await call(url, "GET", "/v1/config")).body as Record<string, { model_version_status: { state: string; status: { error_code: string; error_message: string } }[] }>;
      const s = status[schnell.id]?.model_version_status[0];
      if (s?.state === "AVAILABLE") break;
      assert.ok(s === undefined || s.status.error_code === "OK", `the servable failed to load: ${s?.status.error_message}\n${stderr()}`);
      assert.ok(Date.now() < deadline, `not ready after 60 s:\n${stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const png = (r: Awaited<ReturnType<typeof call>>) => Buffer.from((r.body as { data: { b64_json: string }[] }).data[0].b64_json, "base64");
    // The demo's curl, verbatim but for the host.
    const curl = await call(url, "POST", "/v3/images/generations", { json: { model: schnell.id, prompt: "three cats", num_inference_steps: 2, size: "512x512" } });
    assert.equal(curl.status, 200, curl.text);
    assert.deepEqual([png(curl).readUInt32BE(16), png(curl).readUInt32BE(20)], [512, 512]);
    // The Python snippet's request (no size: the model's native 1024²), twice: rng_seed 42 repeats.
    const python = { model: schnell.id, prompt: "three cats", n: 1, rng_seed: 42, num_inference_steps: 3 };
    const [a, b] = [await call(url, "POST", "/v3/images/generations", { json: python }), await call(url, "POST", "/v3/images/generations", { json: python })];
    assert.equal(a.status, 200, a.text);
    assert.deepEqual([png(a).readUInt32BE(16), png(a).readUInt32BE(20)], [1024, 1024]);
    assert.ok(png(a).equals(png(b)), "same seed, same image");
    // FLUX's own fields: prompt_2 (T5) and a shorter T5 sequence change the picture; guidance 0 is accepted.
    const small = { model: schnell.id, prompt: "three cats", size: "256x256", num_inference_steps: 2, rng_seed: 7 };
    const base = await call(url, "POST", "/v3/images/generations", { json: small });
    const withPrompt2 = await call(url, "POST", "/v3/images/generations", { json: { ...small, prompt_2: "a watercolour of three cats", max_sequence_length: 256, guidance_scale: 0.0 } });
    assert.equal(base.status, 200, base.text);
    assert.equal(withPrompt2.status, 200, withPrompt2.text);
    assert.ok(!png(base).equals(png(withPrompt2)), "prompt_2 reached the T5 encoder");
    // GenAI's rules for FLUX (see the report of issue 16's request work): refused up front as 400s naming the field.
    const refusals: [Record<string, unknown>, string][] = [
      [{ negative_prompt: "blurry" }, "negative_prompt"],
      [{ prompt_3: "x" }, "prompt_3"],
      [{ max_sequence_length: 513 }, "max_sequence_length"],
    ];
    for (const [extra, param] of refusals) {
      const r = await call(url, "POST", "/v3/images/generations", { json: { ...small, ...extra } });
      assert.equal(r.status, 400, r.text);
      assert.equal((r.body as { error: { param: string | null } }).error.param, param, r.text);
    }
    proc.kill("SIGTERM");
    assert.equal(await exit, 0, stderr());
  },
);
