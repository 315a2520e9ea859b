/**
 * The seed's client, verbatim: the Python snippet of OVMS's image-generation
 * demo (openai package, `extra_body={"rng_seed": 42, "num_inference_steps": 3}`,
 * Pillow saving out.png) against a running graphserve, with only the host and
 * port changed. The image it saves must be the one graphserve gives for the
 * same request, so the seed and the step count went through.
 *
 * Needs a python with openai and pillow: `.ci/venv` (made by .ci/run) or
 * GRAPHSERVE_CLIENT_PYTHON. Skipped without one locally; under CI=true a
 * missing one fails.
 */
import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { decodeImage } from "../calculators/image-gen/codec.js";
import { ROOT, startConfiguredServer } from "./helpers/demo-server.js";
import { runProcess } from "./helpers/run-process.js";

const IN_CI = process.env.CI === "true";
const PYTHON = process.env.GRAPHSERVE_CLIENT_PYTHON ?? join(ROOT, ".ci/venv/bin/python");
/** The model name the snippet asks for: graphserve serves a real FLUX.1-schnell export (tiny random weights) under it. */
const MODEL = "black-forest-labs/FLUX.1-schnell";
const FLUX_SCHNELL = join(ROOT, "test/fixtures/conformance/flux-schnell/optimum-onnx-fp32");
const SNIPPET = readFileSync(join(ROOT, "test/fixtures/seed-client/ovms_demo_client.py"), "utf8");
const OVMS_URL = "http://localhost:8000/v3";

const skip = existsSync(PYTHON) || IN_CI ? false : `${PYTHON} is missing: run .ci/run, or make a venv there with "pip install openai pillow", or set GRAPHSERVE_CLIENT_PYTHON`;

test("the OVMS demo's Python client (openai + Pillow, rng_seed 42, 3 steps) gets graphserve's seeded image", { skip, timeout: 180_000 }, async (t) => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing in CI: .ci/run must create .ci/venv with openai and pillow`);
  const probe = await runProcess(PYTHON, ["-c", "import openai, PIL; print(openai.__version__, PIL.__version__)"]);
  if (probe.code !== 0) {
    const reason = `${PYTHON} cannot import openai and PIL: ${probe.stderr.trim().split("\n").at(-1)}`;
    if (IN_CI) assert.fail(reason);
    t.skip(reason);
    return;
  }
  t.diagnostic(`openai, pillow: ${probe.stdout.trim()}`);

  const server = await startConfiguredServer(t, ["--model_name", MODEL, "--model_path", FLUX_SCHNELL]);
  const dir = mkdtempSync(join(tmpdir(), "graphserve-seed-client-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(SNIPPET.split(OVMS_URL).length, 2, "the snippet names localhost:8000 once");
  writeFileSync(join(dir, "client.py"), SNIPPET.replace(OVMS_URL, `${server.url}/v3`));
  const run = await runProcess(PYTHON, ["client.py"], { cwd: dir, timeout: 120_000 });
  assert.equal(run.code, 0, `the client failed:\n${run.stdout}${run.stderr}`);

  // The same request without the client: the same seed and steps must give the same pixels.
  const res = await fetch(`${server.url}/v3/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt: "three cats", n: 1, rng_seed: 42, num_inference_steps: 3 }),
  });
  const body = (await res.json()) as { data: { b64_json: string }[]; rng_seed: number };
  assert.equal(res.status, 200);
  assert.equal(body.rng_seed, 42);
  const limits = { maxPixels: 4096 * 4096 };
  const saved = await decodeImage(readFileSync(join(dir, "out.png")), "out.png", limits);
  const expected = await decodeImage(Buffer.from(body.data[0].b64_json, "base64"), "b64_json", limits);
  assert.equal(`${saved.width}x${saved.height}`, "1024x1024", "FLUX.1's default size");
  assert.deepEqual(saved, expected);
});
