/**
 * OpenVinoBackend against a fake openvino-genai-node (test/fixtures/
 * fake-openvino-genai) typed with the published 2026.4.0 signatures. The real
 * runtime is never loaded here.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile, lstat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BackendError, GenerationCancelledError, type GenerationRequest, type RgbImage } from "../src/backends/types.js";
import {
  OPENVINO_GENAI_PACKAGE,
  createOpenVinoLoader,
  loadOpenVino,
  missingPackageMessage,
} from "../src/backends/openvino/load-module.js";
import {
  OpenVinoBackend,
  parseOpenVinoDevice,
  tensorToNhwc,
  toImageGenerationConfig,
  type OpenVinoLoadOptions,
} from "../src/backends/openvino/openvino-backend.js";
import { FAKE_METRICS, FakeTensor, createFakeOpenVino, fakePixel, type FakeOpenVino, type FakeOptions } from "./fixtures/fake-openvino-genai/index.js";

let root: string;
let sdDir: string;
let fluxDir: string;

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value));
}

async function makeModel(dir: string, pipelineClass: string, schedulerClass: string, denoiser: "unet" | "transformer", sampleSize: number): Promise<void> {
  await mkdir(join(dir, "scheduler"), { recursive: true });
  await mkdir(join(dir, denoiser), { recursive: true });
  await mkdir(join(dir, "vae_decoder"), { recursive: true });
  await writeJson(join(dir, "model_index.json"), { _class_name: pipelineClass });
  await writeJson(join(dir, "scheduler", "scheduler_config.json"), { _class_name: schedulerClass, num_train_timesteps: 1000 });
  await writeFile(join(dir, "scheduler", "notes.txt"), "kept");
  await writeJson(join(dir, denoiser, "config.json"), { sample_size: sampleSize });
  await writeFile(join(dir, denoiser, "openvino_model.xml"), "<net/>");
  await writeJson(join(dir, "vae_decoder", "config.json"), { block_out_channels: [1, 2, 3, 4] });
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), "graphserve-ov-test-"));
  sdDir = join(root, "sd");
  fluxDir = join(root, "flux");
  await makeModel(sdDir, "StableDiffusionPipeline", "PNDMScheduler", "unet", 8);
  await makeModel(fluxDir, "FluxPipeline", "FlowMatchEulerDiscreteScheduler", "transformer", 128);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

function setup(fakeOptions: FakeOptions = {}, loadOptions: OpenVinoLoadOptions = {}, dir = sdDir): Promise<{ fake: FakeOpenVino; backend: OpenVinoBackend }> {
  const fake = createFakeOpenVino(fakeOptions);
  return OpenVinoBackend.load(dir, { loader: async () => fake.bindings, ...loadOptions }).then((backend) => ({ fake, backend }));
}

function rgb(width: number, height: number, fill: (i: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = fill(i);
  return { width, height, data };
}

async function rejectsWith(promise: Promise<unknown>, type: new (...args: never[]) => Error, pattern: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.match(err.message, pattern);
    return err;
  }
  assert.fail("expected a rejection");
}

describe("loading the binding", () => {
  test("the default loader reports the missing package plainly", async () => {
    const err = await rejectsWith(loadOpenVino(), BackendError, /openvino-genai-node/);
    for (const part of [/optional dependency/, /Node >= 21/, /npm install openvino-genai-node/, /storage\.openvinotoolkit\.org/, /ONNX models .* work without it/]) {
      assert.match(err.message, part);
    }
  });

  test("a missing native runtime (import throws) gives the same message with the cause", async () => {
    const loader = createOpenVinoLoader(async (specifier) => {
      if (specifier === OPENVINO_GENAI_PACKAGE) throw new Error("Cannot find module '../bin/genai_node_addon.node'\nRequire stack: …");
      return {};
    });
    const err = await rejectsWith(loadOpenVino(loader), BackendError, /genai_node_addon\.node/);
    assert.ok(err.message.startsWith(missingPackageMessage().split(" (import error")[0]!.slice(0, 40)));
    assert.ok(!err.message.includes("Require stack"));
    assert.ok(err.cause instanceof Error);
  });

  test("modules shaped like the real ones are accepted (CJS addon as named or default export)", async () => {
    const fake = createFakeOpenVino();
    for (const ov of [{ addon: { Tensor: FakeTensor } }, { default: { addon: { Tensor: FakeTensor } } }]) {
      const loader = createOpenVinoLoader(async (specifier) => (specifier === OPENVINO_GENAI_PACKAGE ? fake.bindings.genai : ov));
      const bindings = await loadOpenVino(loader);
      assert.equal(bindings.Tensor, FakeTensor);
      assert.equal(bindings.genai.Text2ImagePipeline, fake.bindings.genai.Text2ImagePipeline);
    }
  });

  test("a module without the image pipelines is refused with the expected version", async () => {
    const loader = createOpenVinoLoader(async (specifier) => (specifier === OPENVINO_GENAI_PACKAGE ? { LLMPipeline() {} } : { addon: { Tensor: FakeTensor } }));
    await rejectsWith(loadOpenVino(loader), BackendError, /no Text2ImagePipeline .*2026\.4\.0/);
  });

  test("OpenVinoBackend.load without the package fails with the missing-package error", async () => {
    await rejectsWith(OpenVinoBackend.load(sdDir), BackendError, /optional dependency/);
  });
});

describe("load", () => {
  test("builds inpainting, then image2image, then text2image with device and properties", async () => {
    const { fake, backend } = await setup({}, { device: "GPU", properties: { CACHE_DIR: "/cache", NUM_STREAMS: 2 } });
    assert.deepEqual(fake.factoryCalls.map((c) => c.mode), ["inpainting", "image2image", "text2image"]);
    for (const call of fake.factoryCalls) {
      assert.equal(call.modelPath, sdDir);
      assert.equal(call.device, "GPU");
      assert.deepEqual(call.properties, { CACHE_DIR: "/cache", NUM_STREAMS: 2 });
    }
    const caps = backend.capabilities();
    assert.equal(caps.backend, "openvino");
    assert.equal(caps.family, "sd");
    assert.deepEqual(caps.modes, ["text2image", "image2image", "inpainting"]);
    assert.equal(caps.lora, false);
    assert.deepEqual(caps.staticResolutions, []);
    assert.equal(caps.parallelism, 1);
    assert.equal(caps.sizeMultiple, 8);
    assert.equal(caps.defaultWidth, 64);
    assert.equal(caps.guidance, true);
    assert.deepEqual(caps.schedulers, ["PNDMScheduler"]);
    assert.deepEqual(backend.loadWarnings, []);
    await backend.dispose();
  });

  test("device defaults to CPU; parallelism builds that many instances per mode, still in OVMS order", async () => {
    const { fake, backend } = await setup({}, { parallelism: 2 });
    assert.deepEqual(fake.factoryCalls.map((c) => c.mode), ["inpainting", "inpainting", "image2image", "image2image", "text2image", "text2image"]);
    assert.ok(fake.factoryCalls.every((c) => c.device === "CPU"));
    assert.equal(backend.capabilities().parallelism, 2);
    await backend.dispose();
  });

  test("partial failures are warnings; the modes that loaded are reported", async () => {
    const warnings: string[] = [];
    const { backend } = await setup({ fail: { text2image: "no text-to-image for an inpainting model", image2image: "i2i broke" } }, { onWarning: (w) => warnings.push(w) });
    assert.deepEqual(backend.capabilities().modes, ["inpainting"]);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /image2image .*i2i broke/);
    assert.match(warnings[1]!, /text2image .*no text-to-image/);
    assert.deepEqual(backend.loadWarnings, warnings);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x" }), BackendError, /no text2image pipeline .*no text-to-image for an inpainting model/);
    await backend.dispose();
  });

  test("all three failing is fatal and lists the three reasons", async () => {
    const err = await rejectsWith(setup({ fail: { inpainting: "A", image2image: "B", text2image: "C" } }), BackendError, /no OpenVINO pipeline/);
    assert.match(err.message, /inpainting: A; image2image: B; text2image: C/);
  });

  test("refuses a device per stage, other device counts, and NPU", async () => {
    assert.equal(parseOpenVinoDevice(undefined), "CPU");
    assert.equal(parseOpenVinoDevice(" GPU.1 "), "GPU.1");
    await rejectsWith(setup({}, { device: "GPU CPU GPU" }), BackendError, /a different device per stage is not supported by the JS binding/);
    await rejectsWith(setup({}, { device: "GPU CPU" }), BackendError, /give one device/);
    await rejectsWith(setup({}, { device: "NPU" }), BackendError, /NPU .*static resolution/);
  });

  test("refuses LoRA adapters, a static shape, a noise generator other than GenAI's, DPM++ and schedulers that do not fit the model", async () => {
    await rejectsWith(setup({}, { loraAdapters: [{ alias: "a", path: "a.safetensors" }] }), BackendError, /LoRA adapters are not supported/);
    await rejectsWith(setup({}, { noise: "torch-cpu" }), BackendError, /noise generator "torch-cpu" is not available on the OpenVINO backend/);
    await rejectsWith(setup({}, { staticResolution: { width: 512, height: 512 } }), BackendError, /reshape\(\)/);
    await rejectsWith(setup({}, { scheduler: "DPMSolverMultistepScheduler" }), BackendError, /DPM\+\+ .*not in the OpenVINO GenAI scheduler set/);
    await rejectsWith(setup({}, { scheduler: "FlowMatchEulerDiscreteScheduler" }), BackendError, /does not fit this sd model/);
    await rejectsWith(setup({}, { parallelism: 0 }), BackendError, /parallelism/);
    await rejectsWith(setup({}, {}, join(root, "missing")), BackendError, /does not exist/);
  });

  test("a scheduler override loads from a temp model view with a rewritten _class_name, removed on dispose", async () => {
    const { fake, backend } = await setup({}, { scheduler: "EulerDiscreteScheduler", tempDir: root });
    const view = fake.factoryCalls[0]!.modelPath;
    assert.notEqual(view, sdDir);
    assert.ok(fake.factoryCalls.every((c) => c.modelPath === view));
    const config = JSON.parse(await readFile(join(view, "scheduler", "scheduler_config.json"), "utf8"));
    assert.deepEqual(config, { _class_name: "EulerDiscreteScheduler", num_train_timesteps: 1000 });
    assert.equal(await readFile(join(view, "scheduler", "notes.txt"), "utf8"), "kept");
    assert.ok((await lstat(join(view, "unet"))).isSymbolicLink());
    assert.deepEqual((await readdir(view)).sort(), ["model_index.json", "scheduler", "unet", "vae_decoder"]);
    // The original folder is untouched.
    assert.equal(JSON.parse(await readFile(join(sdDir, "scheduler", "scheduler_config.json"), "utf8"))._class_name, "PNDMScheduler");
    assert.deepEqual(backend.capabilities().schedulers, ["EulerDiscreteScheduler"]);
    await backend.dispose();
    await assert.rejects(lstat(view));
  });

  test("naming the folder's own scheduler needs no view; FLUX reports its family, size rules and scheduler", async () => {
    const { fake, backend } = await setup({}, { scheduler: "FlowMatchEulerDiscreteScheduler" }, fluxDir);
    assert.equal(fake.factoryCalls[0]!.modelPath, fluxDir);
    const caps = backend.capabilities();
    assert.equal(caps.family, "flux");
    assert.equal(caps.sizeMultiple, 16);
    assert.equal(caps.defaultWidth, 1024);
    assert.equal(caps.guidance, false);
    assert.deepEqual(caps.schedulers, ["FlowMatchEulerDiscreteScheduler"]);
    await backend.dispose();
  });

  test("FLUX.1-dev (guidance_embeds) has guidance; FLUX's size rule and native size ignore the config's patch_size 1 and sample_size", async () => {
    const dev = join(root, "flux-dev");
    await makeModel(dev, "FluxPipeline", "FlowMatchEulerDiscreteScheduler", "transformer", 64);
    await writeJson(join(dev, "transformer", "config.json"), { patch_size: 1, in_channels: 64, guidance_embeds: true, sample_size: 64 });
    const { backend } = await setup({}, {}, dev);
    const caps = backend.capabilities();
    assert.deepEqual([caps.guidance, caps.sizeMultiple, caps.defaultWidth, caps.defaultHeight], [true, 16, 1024, 1024]);
    await backend.dispose();
  });

  test("SD3 without text_encoder_3 runs no T5: max_sequence_length is passed through and never pinned", async () => {
    const sd3 = join(root, "sd3-no-t5");
    await makeModel(sd3, "StableDiffusion3Pipeline", "FlowMatchEulerDiscreteScheduler", "transformer", 8);
    await writeJson(join(sd3, "model_index.json"), { _class_name: "StableDiffusion3Pipeline", text_encoder_3: [null, null] });
    await writeJson(join(sd3, "transformer", "config.json"), { sample_size: 8, patch_size: 2 });
    const { fake, backend } = await setup({}, {}, sd3);
    assert.deepEqual([backend.capabilities().family, backend.capabilities().sizeMultiple, backend.capabilities().defaultWidth], ["sd3", 16, 64]);
    await backend.generate({ mode: "text2image", prompt: "a", maxSequenceLength: 32, numInferenceSteps: 1 });
    await backend.generate({ mode: "text2image", prompt: "b", numInferenceSteps: 1 });
    assert.deepEqual(fake.calls.map((c) => c.config.max_sequence_length), [32, undefined]);
    await backend.dispose();
  });
});

describe("generate", () => {
  test("maps every request field onto ImageGenerationConfig", async () => {
    const { fake, backend } = await setup();
    const request: GenerationRequest = {
      mode: "text2image",
      prompt: "a cat",
      prompt2: "p2",
      prompt3: "p3",
      negativePrompt: "n1",
      negativePrompt2: "n2",
      negativePrompt3: "n3",
      width: 32,
      height: 16,
      numImagesPerPrompt: 2,
      numInferenceSteps: 3,
      guidanceScale: 5.5,
      rngSeed: 42,
      strength: 0.5,
      maxSequenceLength: 256,
    };
    await backend.generate(request);
    const call = fake.calls[0]!;
    assert.equal(call.prompt, "a cat");
    assert.deepEqual(call.config, {
      prompt_2: "p2",
      prompt_3: "p3",
      negative_prompt: "n1",
      negative_prompt_2: "n2",
      negative_prompt_3: "n3",
      width: 32,
      height: 16,
      num_images_per_prompt: 2,
      num_inference_steps: 3,
      guidance_scale: 5.5,
      rng_seed: 42,
      max_sequence_length: 256,
    });
    assert.deepEqual(toImageGenerationConfig({ mode: "text2image", prompt: "x" }), {});
    assert.deepEqual(toImageGenerationConfig({ mode: "image2image", prompt: "x", strength: 0.3, image: rgb(16, 8, () => 0) }), { width: 16, height: 8, strength: 0.3 });
    await backend.dispose();
  });

  test("image2image and inpainting pass u8 NHWC [1,H,W,3] tensors of the input bytes", async () => {
    const { fake, backend } = await setup();
    const image = rgb(16, 8, (i) => i & 255);
    const mask = rgb(16, 8, (i) => (i % 2 ? 255 : 0));
    const i2i = await backend.generate({ mode: "image2image", prompt: "i", image, strength: 0.5, numInferenceSteps: 4 });
    await backend.generate({ mode: "inpainting", prompt: "m", image, mask });
    const [c1, c2] = fake.calls;
    assert.equal(c1!.mode, "image2image");
    assert.deepEqual(c1!.image!.shape, [1, 8, 16, 3]);
    assert.equal(c1!.image!.type, 0);
    assert.deepEqual(c1!.image!.data, image.data);
    assert.equal(c1!.config.strength, 0.5);
    assert.equal(c2!.mode, "inpainting");
    assert.deepEqual(c2!.mask!.shape, [1, 8, 16, 3]);
    assert.deepEqual(c2!.mask!.data, mask.data);
    assert.equal(i2i.width, 16);
    assert.equal(i2i.height, 8);
    assert.equal(i2i.timings.vaeEncodeMs, FAKE_METRICS.vaeEncode);
    await backend.dispose();
  });

  test("refuses bad requests before queueing", async () => {
    const { fake, backend } = await setup();
    await rejectsWith(backend.generate({ mode: "image2image", prompt: "x" }), BackendError, /needs an input image/);
    await rejectsWith(backend.generate({ mode: "inpainting", prompt: "x", image: rgb(8, 8, () => 0) }), BackendError, /needs an input mask/);
    await rejectsWith(backend.generate({ mode: "inpainting", prompt: "x", image: rgb(8, 8, () => 0), mask: rgb(16, 8, () => 0) }), BackendError, /mask is 16x8/);
    await rejectsWith(backend.generate({ mode: "image2image", prompt: "x", image: { width: 4, height: 4, data: new Uint8Array(3) } }), BackendError, /has 3 bytes/);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x", width: 30 }), BackendError, /multiple of 8/);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x", numImagesPerPrompt: 0 }), BackendError, /numImagesPerPrompt/);
    await rejectsWith(backend.generate({ mode: "image2image", prompt: "x", image: rgb(8, 8, () => 0), strength: 1.5 }), BackendError, /strength/);
    assert.equal(fake.calls.length, 0);
    await backend.dispose();
  });

  test("refuses sizes, batch counts and buffers over the limits before allocating", async () => {
    const { fake, backend } = await setup();
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x", width: 80_000_000, height: 8 }), BackendError, /maxPixels = 16777216/);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x", numImagesPerPrompt: 17 }), BackendError, /maxImagesPerPrompt = 16/);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x", width: 4096, height: 4096, numImagesPerPrompt: 16 }), BackendError, /2 GiB/);
    assert.equal(fake.calls.length, 0);
    await backend.dispose();
    const small = await setup({}, { maxPixels: 64 * 64, maxImagesPerPrompt: 2 });
    await rejectsWith(small.backend.generate({ mode: "text2image", prompt: "x", width: 72, height: 64 }), BackendError, /maxPixels = 4096/);
    await rejectsWith(small.backend.generate({ mode: "image2image", prompt: "x", image: rgb(72, 64, () => 0) }), BackendError, /maxPixels/);
    await rejectsWith(small.backend.generate({ mode: "text2image", prompt: "x", numImagesPerPrompt: 3 }), BackendError, /maxImagesPerPrompt = 2/);
    assert.equal(small.fake.calls.length, 0);
    await small.backend.dispose();
    await assert.rejects(setup({}, { maxPixels: 0 }), /maxPixels must be a positive integer/);
  });

  test("checks the effective size, strength 0 and the seed range like the ONNX backend", async () => {
    const { fake, backend } = await setup();
    // Size taken from the input image when width/height are omitted.
    await rejectsWith(backend.generate({ mode: "image2image", prompt: "x", image: rgb(30, 16, () => 0) }), BackendError, /width 30 \(taken from the input image\) must be a positive multiple of 8/);
    await rejectsWith(backend.generate({ mode: "inpainting", prompt: "x", image: rgb(16, 12, () => 0), mask: rgb(16, 12, () => 0) }), BackendError, /height 12/);
    await rejectsWith(backend.generate({ mode: "image2image", prompt: "x", image: rgb(8, 8, () => 0), strength: 0 }), BackendError, /strength must be in \(0, 1\]/);
    await rejectsWith(backend.generate({ mode: "inpainting", prompt: "x", image: rgb(8, 8, () => 0), mask: rgb(8, 8, () => 0), strength: 0 }), BackendError, /strength/);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x", rngSeed: 2 ** 53 }), BackendError, /rngSeed must be an integer in \[0, 2\^53\)/);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x", rngSeed: -1 }), BackendError, /rngSeed/);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "x", rngSeed: 1.5 }), BackendError, /rngSeed/);
    assert.equal(fake.calls.length, 0);
    // The largest seed is accepted and passed through.
    await backend.generate({ mode: "text2image", prompt: "x", rngSeed: 2 ** 53 - 1, numInferenceSteps: 1 });
    assert.equal(fake.calls.length, 1);
    await backend.dispose();
  });

  test("converts the output tensor to NHWC u8 images with timings from the perf metrics", async () => {
    const { backend } = await setup();
    const result = await backend.generate({ mode: "text2image", prompt: "x", width: 16, height: 8, numImagesPerPrompt: 2, numInferenceSteps: 3, rngSeed: 7 });
    assert.equal(result.count, 2);
    assert.equal(result.width, 16);
    assert.equal(result.height, 8);
    assert.equal(result.data.length, 2 * 8 * 16 * 3);
    let i = 0;
    let ok = true;
    for (let n = 0; n < 2; n++) for (let y = 0; y < 8; y++) for (let x = 0; x < 16; x++) for (let c = 0; c < 3; c++) ok &&= result.data[i++] === fakePixel(7, n, y, x, c);
    assert.ok(ok, "pixels are copied in NHWC order");
    assert.deepEqual(result.timings, {
      textEncodingMs: FAKE_METRICS.textEncoders.text_encoder + FAKE_METRICS.textEncoders.text_encoder_2,
      stepMs: [10, 11, 12],
      vaeDecodeMs: FAKE_METRICS.vaeDecode,
      totalMs: FAKE_METRICS.generate,
    });
    await backend.dispose();
  });

  test("tensorToNhwc accepts [H,W,3], refuses other shapes and non-u8", () => {
    const hwc = tensorToNhwc(new FakeTensor("u8", [2, 2, 3], new Uint8Array(12).fill(9)));
    assert.deepEqual([hwc.count, hwc.height, hwc.width], [1, 2, 2]);
    assert.throws(() => tensorToNhwc(new FakeTensor("u8", [1, 2, 2, 4])), /expected \[N, H, W, 3\]/);
    assert.throws(() => tensorToNhwc(new FakeTensor("f32", [1, 2, 2, 3])), /expected u8/);
  });

  test("the step callback always answers a boolean and drives onStep", async () => {
    const { fake, backend } = await setup();
    const seen: { step: number; totalSteps: number }[] = [];
    await backend.generate(
      { mode: "text2image", prompt: "x", numInferenceSteps: 3 },
      {
        onStep: (p) => {
          assert.ok(p.stepMs >= 0);
          seen.push({ step: p.step, totalSteps: p.totalSteps });
          // Returning nothing must not reach the binding as `undefined`.
        },
      },
    );
    assert.deepEqual(seen, [
      { step: 0, totalSteps: 3 },
      { step: 1, totalSteps: 3 },
      { step: 2, totalSteps: 3 },
    ]);
    // Without onStep the callback still answers.
    await backend.generate({ mode: "text2image", prompt: "y", numInferenceSteps: 2 });
    assert.deepEqual(fake.callbackAnswers, ["boolean", "boolean", "boolean", "boolean", "boolean"]);
    await backend.dispose();
  });

  test("stop from onStep rejects with GenerationCancelledError at that step, and the instance is free again", async () => {
    const { fake, backend } = await setup();
    const err = await rejectsWith(
      backend.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 5 }, { onStep: (p) => (p.step === 1 ? { stop: true } : undefined) }),
      GenerationCancelledError,
      /after step 1/,
    );
    assert.equal((err as GenerationCancelledError).step, 1);
    assert.equal(fake.callbackAnswers.length, 2);
    const ok = await backend.generate({ mode: "text2image", prompt: "again", numInferenceSteps: 1 });
    assert.equal(ok.count, 1);
    await backend.dispose();
  });

  test("previews decode the latent only when asked and pass RGB images to onPreview", async () => {
    const { fake, backend } = await setup();
    const previews: { step: number; count: number; width: number; first: number }[] = [];
    const result = await backend.generate(
      { mode: "text2image", prompt: "x", width: 16, height: 16, numImagesPerPrompt: 2, numInferenceSteps: 4 },
      {
        onStep: (p) => ({ preview: p.step % 2 === 1 }),
        onPreview: (step, images) => previews.push({ step, count: images.length, width: images[0]!.width, first: images[1]!.data[0]! }),
      },
    );
    assert.equal(result.count, 2);
    assert.deepEqual(fake.decodes, [2, 2]);
    assert.deepEqual(previews, [
      { step: 1, count: 2, width: 16, first: 101 },
      { step: 3, count: 2, width: 16, first: 103 },
    ]);
    assert.deepEqual(fake.callbackAnswers, ["boolean", "boolean", "boolean", "boolean"]);
    await backend.dispose();
  });

  test("preview and stop in the same step: decodes, then stops", async () => {
    const { fake, backend } = await setup();
    let previewed = 0;
    await rejectsWith(
      backend.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 4 }, { onStep: () => ({ preview: true, stop: true }), onPreview: () => previewed++ }),
      GenerationCancelledError,
      /after step 0/,
    );
    assert.equal(previewed, 1);
    assert.equal(fake.decodes.length, 1);
    await backend.dispose();
  });

  test("a throwing onStep stops the run and surfaces as a BackendError", async () => {
    const { fake, backend } = await setup();
    await rejectsWith(
      backend.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 4 }, { onStep: () => { throw new Error("boom"); } }),
      BackendError,
      /step callback failed: boom/,
    );
    assert.deepEqual(fake.callbackAnswers, ["boolean"]);
    await backend.dispose();
  });

  test("the abort signal is honoured between steps, before start, and while queued", async () => {
    const { fake, backend } = await setup({ stepDelayMs: 5 });
    const controller = new AbortController();
    const running = backend.generate(
      { mode: "text2image", prompt: "run", numInferenceSteps: 10 },
      { signal: controller.signal, onStep: (p) => { if (p.step === 2) controller.abort(); } },
    );
    await rejectsWith(running, GenerationCancelledError, /after step 2/);

    const pre = new AbortController();
    pre.abort();
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "never" }, { signal: pre.signal }), GenerationCancelledError, /cancelled/);

    const first = backend.generate({ mode: "text2image", prompt: "first", numInferenceSteps: 3 });
    const queuedAbort = new AbortController();
    const second = backend.generate({ mode: "text2image", prompt: "second", numInferenceSteps: 3 }, { signal: queuedAbort.signal });
    const third = backend.generate({ mode: "text2image", prompt: "third", numInferenceSteps: 1 });
    await new Promise((r) => setTimeout(r, 2));
    assert.equal(backend.queued("text2image"), 2);
    queuedAbort.abort();
    await rejectsWith(second, GenerationCancelledError, /cancelled/);
    assert.equal(backend.queued("text2image"), 1);
    await first;
    await third;
    assert.deepEqual(fake.calls.map((c) => c.prompt), ["run", "first", "third"]);
    await backend.dispose();
  });

  test("parallelism 1: requests run one at a time in FIFO order", async () => {
    const { fake, backend } = await setup({ stepDelayMs: 2 }, { parallelism: 1 });
    const prompts = ["a", "b", "c", "d"];
    const results = await Promise.all(prompts.map((p) => backend.generate({ mode: "text2image", prompt: p, numInferenceSteps: 2 })));
    assert.equal(results.length, 4);
    assert.equal(fake.maxConcurrent, 1);
    const t2i = fake.factoryCalls.filter((c) => c.mode === "text2image").length;
    assert.equal(t2i, 1);
    assert.deepEqual(
      fake.events,
      prompts.flatMap((p) => [`start:text2image#2:${p}`, `end:text2image#2:${p}`]),
    );
    await backend.dispose();
  });

  test("parallelism 2: two run at once per mode, starts stay in FIFO order, no instance runs two", async () => {
    const { fake, backend } = await setup({ stepDelayMs: 2 }, { parallelism: 2 });
    const prompts = ["a", "b", "c", "d", "e"];
    await Promise.all(prompts.map((p, i) => backend.generate({ mode: "text2image", prompt: p, numInferenceSteps: 1 + (i % 3) })));
    assert.equal(fake.maxConcurrent, 2);
    const starts = fake.events.filter((e) => e.startsWith("start:")).map((e) => e.split(":").pop());
    assert.deepEqual(starts, prompts);
    const instances = new Set(fake.calls.map((c) => c.instance));
    assert.equal(instances.size, 2);
    // Modes have separate pools: an inpainting request does not wait behind text2image.
    await backend.dispose();
  });

  test("modes have separate queues", async () => {
    const { fake, backend } = await setup({ stepDelayMs: 3 }, { parallelism: 1 });
    const image = rgb(8, 8, () => 1);
    await Promise.all([
      backend.generate({ mode: "text2image", prompt: "t", numInferenceSteps: 3 }),
      backend.generate({ mode: "image2image", prompt: "i", image, numInferenceSteps: 3, strength: 1 }),
    ]);
    assert.equal(fake.maxConcurrent, 2);
    await backend.dispose();
  });

  test("dispose cancels in-flight runs at the next step and rejects queued and later requests", async () => {
    const { backend } = await setup({ stepDelayMs: 3 });
    const inflight = backend.generate({ mode: "text2image", prompt: "a", numInferenceSteps: 50 });
    const queued = backend.generate({ mode: "text2image", prompt: "b" });
    await new Promise((r) => setTimeout(r, 10));
    await backend.dispose();
    await rejectsWith(inflight, GenerationCancelledError, /cancelled/);
    await rejectsWith(queued, BackendError, /disposed/);
    await rejectsWith(backend.generate({ mode: "text2image", prompt: "c" }), BackendError, /disposed/);
  });
});
