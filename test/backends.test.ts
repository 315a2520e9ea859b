import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BackendError, chooseBackend, loadBackend } from "../src/backends/index.js";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";

const dir = await mkdtemp(join(tmpdir(), "graphserve-backends-"));
test.after(() => rm(dir, { recursive: true, force: true }));

test("an ONNX export loads on ONNX Runtime and generates", async () => {
  const model = join(dir, "onnx");
  await makeTinyModel(model, { family: "sd", seed: 3 });
  assert.equal(chooseBackend(model), "onnxruntime");
  const backend = await loadBackend(model);
  try {
    assert.equal(backend.capabilities().backend, "onnxruntime");
    const result = await backend.generate({ mode: "text2image", prompt: "a cat", numInferenceSteps: 2, rngSeed: 1 });
    assert.equal(result.data.length, result.count * result.width * result.height * 3);
  } finally {
    await backend.dispose();
  }
});

test("an OpenVINO IR export picks OpenVINO, and says plainly when its package is missing", async () => {
  const model = join(dir, "ov");
  await mkdir(join(model, "unet"), { recursive: true });
  await writeFile(join(model, "unet/openvino_model.xml"), "<net/>");
  await writeFile(join(model, "model_index.json"), "{}");
  assert.equal(chooseBackend(model), "openvino");
  assert.equal(chooseBackend(model, "onnxruntime"), "onnxruntime", "an explicit choice wins");
  await assert.rejects(loadBackend(model), (e: unknown) => e instanceof BackendError && /openvino-genai-node/.test(e.message));
});

test("a folder with no model, or no folder, is a BackendError naming it", async () => {
  const empty = join(dir, "empty");
  await mkdir(empty);
  assert.throws(() => chooseBackend(empty), /empty holds no model the server can run/);
  assert.throws(() => chooseBackend(join(dir, "missing")), /missing cannot be read \(ENOENT\)/);
});
