/**
 * The one reader of model_index.json: family detection (diffusers', Optimum's
 * ORT* and the legacy Onnx* class names; older SDXL exports known by their second
 * text encoder) and component formats from a file listing, as both backends and
 * --pull use them.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { componentFormats, detectFamily, readModelIndex } from "../src/backends/model-index.js";
import { BackendError } from "../src/backends/types.js";

describe("detectFamily", () => {
  test("pipeline class names of every exporter", () => {
    const cases: [string, string | undefined][] = [
      ["StableDiffusionPipeline", "sd"],
      ["StableDiffusionInpaintPipeline", "sd"],
      ["OnnxStableDiffusionPipeline", "sd"],
      ["ORTStableDiffusionPipeline", "sd"],
      ["StableDiffusionXLPipeline", "sdxl"],
      ["StableDiffusionXLImg2ImgPipeline", "sdxl"],
      ["LatentConsistencyModelPipeline", "lcm"],
      ["StableDiffusion3Pipeline", "sd3"],
      ["ORTStableDiffusion3Pipeline", "sd3"],
      ["FluxPipeline", "flux"],
      ["FluxImg2ImgPipeline", "flux"],
      ["KandinskyPipeline", undefined],
      ["", undefined],
    ];
    for (const [cls, family] of cases) assert.equal(detectFamily(cls, false), family, cls);
  });

  test("a second text encoder makes an unnamed or SD-named folder SDXL, but not SD3 or FLUX", () => {
    assert.equal(detectFamily("", true), "sdxl");
    assert.equal(detectFamily("StableDiffusionPipeline", true), "sdxl");
    assert.equal(detectFamily("StableDiffusion3Pipeline", true), "sd3");
    assert.equal(detectFamily("FluxPipeline", true), "flux");
  });
});

describe("componentFormats", () => {
  test("model files one level down count; the root and deeper levels do not", () => {
    assert.deepEqual(componentFormats(["unet/model.onnx", "model_index.json"]), ["onnxruntime"]);
    assert.deepEqual(componentFormats(["unet/openvino_model.xml"]), ["openvino"]);
    assert.deepEqual(componentFormats(["unet/openvino_model.xml", "text_encoder/model.onnx"]).sort(), ["onnxruntime", "openvino"]);
    assert.deepEqual(componentFormats(["model.onnx", "onnx/unet/model.onnx", "unet/model.onnx_data"]), []);
  });
});

describe("readModelIndex", () => {
  const root = mkdtemp(join(tmpdir(), "model-index-"));
  after(async () => rm(await root, { recursive: true, force: true }));

  test("reads the class, the listed components and the family; a text_encoder_2 folder counts", async () => {
    const dir = join(await root, "xl");
    await mkdir(join(dir, "text_encoder_2"), { recursive: true });
    await writeFile(join(dir, "model_index.json"), JSON.stringify({ _class_name: "", unet: ["diffusers", "UNet2DConditionModel"], vae: [null, null] }));
    let index = await readModelIndex(dir);
    assert.equal(index.family, undefined);
    assert.equal(index.has("unet"), true);
    assert.equal(index.has("vae"), false);
    assert.equal(index.has("transformer"), false);
    await writeFile(join(dir, "text_encoder_2", "model.onnx"), "");
    index = await readModelIndex(dir);
    assert.equal(index.family, "sdxl");
  });

  test("a missing or malformed model_index.json is a BackendError naming the file", async () => {
    const dir = join(await root, "bad");
    await mkdir(dir, { recursive: true });
    await assert.rejects(readModelIndex(dir), (e: unknown) => e instanceof BackendError && /model_index\.json: missing/.test(e.message));
    await writeFile(join(dir, "model_index.json"), "[1, 2]");
    await assert.rejects(readModelIndex(dir), (e: unknown) => e instanceof BackendError && /model_index\.json: expected a JSON object/.test(e.message));
  });
});
