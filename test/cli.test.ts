import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = fileURLToPath(new URL("../../", import.meta.url));
const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

async function graphserve(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test("graph check describes every node of the example graphs", async () => {
  const r = await graphserve("graph", "check", "graphs/image-generation/graph.pbtxt", "graphs/flow-limited-echo/graph.pbtxt");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /graphs\/image-generation\/graph\.pbtxt: OK, 1 node/);
  assert.match(r.stdout, /graph queue: AUTO -> \d+ instance/);
  assert.match(r.stdout, /node 0 "ImageGenExecutor": ImageGenCalculator \[executor: main thread, handler: default\]/);
  assert.match(r.stdout, /input_stream HTTP_REQUEST_PAYLOAD:0:input/);
  assert.match(r.stdout, /input_side_packet IMAGE_GEN_NODE_RESOURCES:0:pipes/);
  assert.match(r.stdout, /options mediapipe\.ImageGenCalculatorOptions \{"models_path":".\/","device":"CPU","default_resolution":"512x512","max_num_inference_steps":50\}/);
  assert.match(r.stdout, /FlowLimiterCalculator \[executor: main thread, handler: immediate\]/);
  assert.match(r.stdout, /input_stream FINISHED:0:out \(back edge\)/);
  assert.match(r.stdout, /options mediapipe\.FlowLimiterCalculatorOptions \{"max_in_flight":1,"max_in_queue":0\}/);
});

test("graph check accepts OVMS exporter output and user calculators", async () => {
  const r = await graphserve("graph", "check", "--calculators_dir", "examples/calculators",
    "test/fixtures/graphs/ovms-cpp-export.pbtxt", "test/fixtures/graphs/ovms-v2025.2-export.pbtxt", "examples/graphs/prompt-style.pbtxt");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /PromptStyleCalculator/);
  assert.match(r.stdout, /example\.PromptStyleOptions \{"template":"\{prompt\}, watercolour, soft light","negative_prompt":"blurry"\}/);
});

test("graph check accepts the exporters' graphs that between them set every ImageGenCalculatorOptions field", async () => {
  const r = await graphserve("graph", "check", "test/fixtures/graphs/ovms-python-export-dynamic.pbtxt", "test/fixtures/graphs/ovms-python-export-static.pbtxt");
  assert.equal(r.code, 0, r.stderr);
  const decoded = [...r.stdout.matchAll(/options mediapipe\.ImageGenCalculatorOptions (.*)/g)].map((m) => JSON.parse(m[1]) as Record<string, unknown>);
  assert.deepEqual(decoded[0], {
    models_path: "./", device: "GPU", plugin_config: '{"NUM_STREAMS":"14","CACHE_DIR":"/cache"}',
    max_resolution: "3000x4000", default_resolution: "300x400", max_num_images_per_prompt: 7,
    default_num_inference_steps: 2, max_num_inference_steps: 3,
    lora_adapters: [
      { alias: "a", path: "loras/a.safetensors", alpha: 0.7, mode: "DYNAMIC" },
      { alias: "b", path: "loras/b.safetensors", mode: "DYNAMIC" },
    ],
    composite_lora_adapters: [{ alias: "ab", components: [{ adapter_alias: "a", alpha: 0.25 }, { adapter_alias: "b" }] }],
  });
  assert.deepEqual(decoded[1], {
    models_path: "./", device: "NPU NPU GPU", default_resolution: "512x512", resolution: "512x512",
    num_images_per_prompt: 4, guidance_scale: 7.5,
    lora_adapters: [{ alias: "a", path: "loras/a.safetensors", alpha: 0.7, mode: "STATIC" }],
    composite_lora_adapters: [{ alias: "all", components: [{ adapter_alias: "a" }] }],
  });
  const fields = new Set(decoded.flatMap((d) => Object.keys(d)));
  assert.equal(fields.size, 13, "every ImageGenCalculatorOptions field appears in one of the two");
});

test("graph check rejects option combinations OVMS refuses to load, at the options", async () => {
  const r = await graphserve("graph", "check", "test/fixtures/graphs/ovms-python-export.pbtxt");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ovms-python-export\.pbtxt:12:5: ImageGenCalculator: max_resolution cannot be set together with resolution/);
});

test("graph check reports located errors and exits 1", async () => {
  const r = await graphserve("graph", "check", "test/fixtures/invalid/missing-producer.pbtxt");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing-producer\.pbtxt:6:3: Input Stream "frames" for node with sorted index 0 name PassThroughCalculator does not have a corresponding output stream\./);
  const missing = await graphserve("graph", "check", "no/such/graph.pbtxt");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read graph file "no\/such\/graph\.pbtxt": no such file/);
});

test("graph dot prints the DAG with back edges dashed", async () => {
  const r = await graphserve("graph", "dot", "graphs/flow-limited-echo/graph.pbtxt");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^digraph "flow-limited-echo" \{/);
  assert.match(r.stdout, /n0 \[shape=box, style=rounded, label="FlowLimiterCalculator\\nFlowLimiterCalculator"\]/);
  assert.match(r.stdout, /n1 -> n0 \[label="out\\nFINISHED", style=dashed, constraint=false\]/);
  assert.match(r.stdout, /in0 -> n0 \[label="in\\n0"\]/);
  assert.match(r.stdout, /n1 -> out0/);
});

test("bad command lines exit 2 with a one-line reason", async () => {
  for (const args of [["graph"], ["serve", "--bogus"], ["graph", "dot", "a", "b"], []]) {
    const r = await graphserve(...args);
    assert.equal(r.code, 2, `graphserve ${args.join(" ")}`);
    assert.match(r.stderr, /^graphserve( graph)?: .+\n$/);
  }
  const help = await graphserve("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /graph check FILE/);
  assert.match((await graphserve("--version")).stdout, /^\d+\.\d+\.\d+\n$/);
});

test("make-tiny-model writes a seeded model folder whose graph.pbtxt passes graph check", async () => {
  const { mkdtemp, readdir, readFile, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(tmpdir(), "graphserve-tiny-"));
  try {
    const a = join(dir, "a");
    const b = join(dir, "b");
    assert.equal((await graphserve("make-tiny-model", "--out", a, "--inpainting", "--seed", "7")).code, 0);
    assert.equal((await graphserve("make-tiny-model", "--out", b, "--inpainting", "--seed", "7")).code, 0);
    assert.deepEqual((await readdir(a)).sort(), ["graph.pbtxt", "model_index.json", "scheduler", "text_encoder", "tokenizer", "unet", "vae_decoder", "vae_encoder"]);
    assert.match(await readFile(join(a, "model_index.json"), "utf8"), /StableDiffusionInpaintPipeline/);
    assert.deepEqual(await readFile(join(a, "unet/model.onnx")), await readFile(join(b, "unet/model.onnx")), "same seed, same bytes");
    const check = await graphserve("graph", "check", join(a, "graph.pbtxt"));
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /"default_resolution":"64x64"/);
    const again = await graphserve("make-tiny-model", "--out", a);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists and is not empty/);
    for (const args of [["--family", "sd3", "--out", join(dir, "c")], ["--seed", "-1", "--out", join(dir, "c")], [], ["--bogus"]]) {
      const r = await graphserve("make-tiny-model", ...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, /^graphserve make-tiny-model: .+\n$/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("make-tiny-model, like the main command, answers --help, -h, --version and -v", async () => {
  for (const cmd of [["make-tiny-model"], []]) {
    for (const flag of ["--help", "-h"]) {
      const r = await graphserve(...cmd, flag);
      assert.equal(r.code, 0, `${cmd.join(" ")} ${flag}: ${r.stderr}`);
      assert.match(r.stdout, /graphserve make-tiny-model --out DIR/);
    }
    for (const flag of ["--version", "-v"]) {
      const r = await graphserve(...cmd, flag);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    }
  }
});

test("graph check or dot without the right number of files is a usage error, not an unknown command", async () => {
  for (const [args, reason] of [
    [["graph", "check"], /check needs at least one graph file/],
    [["graph", "check", "--calculators_dir", "examples/calculators"], /check needs at least one graph file/],
    [["graph", "dot"], /dot takes exactly one graph file, not 0/],
    [["graph", "dot", "a.pbtxt", "b.pbtxt"], /dot takes exactly one graph file, not 2/],
    [["graph"], /missing subcommand/],
    [["graph", "draw", "a.pbtxt"], /unknown subcommand "draw"/],
  ] as const) {
    const r = await graphserve(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /^graphserve graph: .*usage: graphserve graph check \[--calculators_dir DIR\] FILE\.\.\. \| graphserve graph dot/);
    assert.match(r.stderr, reason);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
});

test("output piped into a reader that stops early (| head) ends quietly, without a stack trace", async () => {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [cli, "graph", "check", "graphs/echo/graph.pbtxt", "graphs/image-generation/graph.pbtxt", "graphs/image-generation-pipeline/graph.pbtxt"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  // Like `head -1`: read the first chunk, then close the pipe.
  child.stdout.once("data", () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  assert.equal(stderr, "");
  assert.equal(code, 0);
});
