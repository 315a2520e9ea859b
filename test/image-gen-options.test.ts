import { test } from "node:test";
import assert from "node:assert/strict";
import { Schema } from "../src/graph/schema.js";
import { checkImageGenOptions, type ImageGenCalculatorOptions } from "../calculators/image-gen/options.js";

const schema = new Schema();
const type = schema.findType("mediapipe.ImageGenCalculatorOptions")!;
/** A message as the engine hands it over: set fields own, defaults on the prototype. */
const options = (fields: Record<string, unknown>) =>
  type.fromObject({ models_path: "./", ...fields }) as unknown as ImageGenCalculatorOptions;

test("defaults are OVMS's", () => {
  const s = checkImageGenOptions(options({}));
  assert.deepEqual(s.maxResolution, { width: 4096, height: 4096 });
  assert.equal(s.maxImagesPerPrompt, 10);
  assert.equal(s.defaultSteps, 50);
  assert.equal(s.maxSteps, 100);
  assert.equal(s.defaultResolution, undefined);
  assert.deepEqual(s.devices, []);
  assert.deepEqual(s.pluginConfig, {});
  assert.equal(s.noiseGenerator, "mt19937", "OVMS's generator");
});

test("noise_generator: torch-cpu is offered", () => {
  assert.equal(checkImageGenOptions(options({ noise_generator: "torch-cpu" })).noiseGenerator, "torch-cpu");
});

test("every field parsed", () => {
  const s = checkImageGenOptions(options({
    device: "NPU NPU GPU", plugin_config: '{"NUM_STREAMS":"14","CACHE_DIR":"/cache"}', resolution: "512x512",
    num_images_per_prompt: 2, guidance_scale: 7.5, default_num_inference_steps: 2, max_num_inference_steps: 3,
    lora_adapters: [{ alias: "a", path: "a.safetensors", alpha: 0.5, mode: "STATIC" }, { alias: "b", path: "b.safetensors" }],
    composite_lora_adapters: [{ alias: "ab", components: [{ adapter_alias: "a" }, { adapter_alias: "b", alpha: 0.3 }] }],
  }));
  assert.deepEqual(s.devices, ["NPU", "NPU", "GPU"]);
  assert.deepEqual(s.pluginConfig, { NUM_STREAMS: "14", CACHE_DIR: "/cache" });
  assert.deepEqual(s.staticResolutions, [{ width: 512, height: 512 }]);
  assert.deepEqual(s.defaultResolution, { width: 512, height: 512 }, "the single resolution becomes the default");
  assert.equal(s.staticImagesPerPrompt, 2);
  assert.equal(s.maxImagesPerPrompt, 2);
  assert.ok(Math.abs(s.staticGuidanceScale! - 7.5) < 1e-6);
  assert.equal(s.compositeLoraAdapters[0].components[1].alpha.toFixed(2), "0.30");
});

test("the built-in default step count is lowered under a smaller maximum", () => {
  assert.equal(checkImageGenOptions(options({ max_num_inference_steps: 40 })).defaultSteps, 40);
});

const rejects: [string, Record<string, unknown>, RegExp][] = [
  ["an unknown noise generator", { noise_generator: "philox" }, /noise_generator: "philox" is not one of mt19937, torch-cpu/],
  ["two devices", { device: "CPU GPU" }, /must name one device or three/],
  ["bad plugin_config", { plugin_config: "{nope" }, /plugin_config is not valid JSON/],
  ["array plugin_config", { plugin_config: "[1]" }, /must be a JSON object/],
  ["bad max_resolution", { max_resolution: "big" }, /max_resolution: "big" is not a resolution/],
  ["zero-sized", { default_resolution: "0x512" }, /default_resolution: "0x512"/],
  ["default over max", { max_resolution: "512x512", default_resolution: "1024x512" }, /default_resolution 1024x512 exceeds max_resolution 512x512/],
  ["duplicate resolution", { resolution: "512x512 256x256 512x512" }, /512x512 is listed twice/],
  ["max with static", { resolution: "512x512", max_resolution: "1024x1024" }, /max_resolution cannot be set together with resolution/],
  ["default not listed", { resolution: "512x512 256x256", default_resolution: "128x128" }, /not one of the resolutions/],
  ["max images with static", { resolution: "512x512", max_num_images_per_prompt: 4 }, /single static resolution/],
  ["static n without static", { num_images_per_prompt: 2 }, /only allowed with exactly one resolution/],
  ["static guidance without static", { guidance_scale: 3 }, /guidance_scale is only allowed/],
  ["zero max steps", { max_num_inference_steps: 0 }, /max_num_inference_steps must be greater than 0/],
  ["default steps over max", { default_num_inference_steps: 60, max_num_inference_steps: 50 }, /exceeds max_num_inference_steps/],
  ["npu without static", { device: "NPU" }, /NPU device needs exactly one static resolution/],
  ["bad alias", { lora_adapters: [{ alias: "a b", path: "x" }] }, /may only contain/],
  ["duplicate alias", { lora_adapters: [{ alias: "a", path: "x" }, { alias: "a", path: "y" }] }, /"a" is used twice/],
  ["composite of unknown", { lora_adapters: [{ alias: "a", path: "x" }], composite_lora_adapters: [{ alias: "c", components: [{ adapter_alias: "z" }] }] }, /names adapter "z"/],
  ["npu loose adapters", { device: "NPU", resolution: "512x512", lora_adapters: [{ alias: "a", path: "x" }, { alias: "b", path: "y" }] }, /must be combined/],
];
for (const [name, fields, message] of rejects) {
  test(`rejects ${name}`, () => assert.throws(() => checkImageGenOptions(options(fields)), message));
}
