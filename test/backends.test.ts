import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BackendError, chooseBackend, loadBackend } from "../src/backends/index.js";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import type { OpenVinoBindings } from "../src/backends/openvino/load-module.js";

const dir = await mkdtemp(join(tmpdir(), "graphserve-backends-"));
test.after(() => rm(dir, { recursive: true, force: true }));

test("an ONNX export loads on ONNX Runtime and generates", async () => {
  const model = join(dir, "onnx");
  await makeTinyModel(model, { family: "sd", seed: 3 });
  assert.equal(await chooseBackend(model), "onnxruntime");
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
  assert.equal(await chooseBackend(model), "openvino");
  assert.equal(await chooseBackend(model, "onnxruntime"), "onnxruntime", "an explicit choice wins");
  await assert.rejects(loadBackend(model), (e: unknown) => e instanceof BackendError && /openvino-genai-node/.test(e.message));
});

test("a folder with both formats picks OpenVINO where it runs, its ONNX files where OpenVINO cannot", async () => {
  const model = join(dir, "both");
  await makeTinyModel(model, { family: "sd", seed: 3 });
  await writeFile(join(model, "unet/openvino_model.xml"), "<net/>");
  const runs = async () => ({}) as OpenVinoBindings;
  const missing = () => Promise.reject(new Error("Cannot find package 'openvino-genai-node'"));
  assert.equal(await chooseBackend(model, "auto", runs), "openvino");
  assert.equal(await chooseBackend(model, "auto", missing), "onnxruntime");
  const backend = await loadBackend(model, { loader: missing });
  try {
    assert.equal(backend.capabilities().backend, "onnxruntime");
  } finally {
    await backend.dispose();
  }
});

test("a folder with no model, or no folder, is a BackendError naming it", async () => {
  const empty = join(dir, "empty");
  await mkdir(empty);
  await assert.rejects(chooseBackend(empty), /empty holds no model the server can run/);
  await assert.rejects(chooseBackend(join(dir, "missing")), /missing cannot be read \(ENOENT\)/);
});
