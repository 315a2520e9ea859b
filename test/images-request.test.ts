import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_PROMPT_CHARS, parseImageRequest, toGenerationRequest, type ImageRequestInput } from "../calculators/image-gen/request.js";
import { HttpError } from "../src/server/errors.js";
import type { ImageGenSettings } from "../calculators/image-gen/options.js";

const settings: ImageGenSettings = {
  modelsPath: "/models/sd",
  devices: [],
  pluginConfig: {},
  maxResolution: { width: 1024, height: 1024 },
  defaultResolution: { width: 512, height: 512 },
  staticResolutions: [],
  maxImagesPerPrompt: 10,
  defaultSteps: 50,
  maxSteps: 100,
  staticImagesPerPrompt: undefined,
  staticGuidanceScale: undefined,
  loraAdapters: [{ alias: "pixel", path: "/lora/pixel.safetensors", alpha: 1, mode: "DYNAMIC" }],
  compositeLoraAdapters: [],
  maxQueueSize: 16,
  noiseGenerator: "mt19937",
};

const staticSettings: ImageGenSettings = {
  ...settings,
  defaultResolution: { width: 512, height: 512 },
  staticResolutions: [{ width: 512, height: 512 }],
  maxImagesPerPrompt: 2,
  staticImagesPerPrompt: 2,
  staticGuidanceScale: 7.5,
  loraAdapters: [],
};

const gen = (json: Record<string, unknown>): ImageRequestInput => ({ kind: "generations", json });
const edit = (fields: Record<string, string | readonly string[]>): ImageRequestInput => ({ kind: "edits", fields });

interface Good {
  name: string;
  input: ImageRequestInput;
  settings?: ImageGenSettings;
  expect: Record<string, unknown>;
}

const good: Good[] = [
  {
    name: "minimal generation takes defaults from settings",
    input: gen({ model: "sd", prompt: "a cat" }),
    expect: {
      kind: "generations", model: "sd", prompt: "a cat", width: 512, height: 512, n: 1, steps: 50,
      outputFormat: "png", background: "auto", quality: "auto", moderation: "auto", stream: false, partialImages: 0,
      rngSeed: undefined, guidanceScale: undefined,
    },
  },
  {
    name: "every OVMS field",
    input: gen({
      model: "sd", prompt: "a", prompt_2: "b", prompt_3: "c", negative_prompt: "d", negative_prompt_2: "e", negative_prompt_3: "f",
      size: "768x640", n: 3, response_format: "b64_json", num_inference_steps: 20, rng_seed: 0, strength: 0.5,
      guidance_scale: 7, max_sequence_length: 256, lora_alphas: { pixel: 0.25 }, image: "ignored",
    }),
    expect: {
      prompt2: "b", prompt3: "c", negativePrompt: "d", negativePrompt2: "e", negativePrompt3: "f", width: 768, height: 640,
      n: 3, steps: 20, rngSeed: 0, strength: 0.5, guidanceScale: 7, maxSequenceLength: 256, loraAlphas: { pixel: 0.25 },
    },
  },
  { name: "width/height instead of size", input: gen({ prompt: "a", width: 1024, height: 256 }), expect: { width: 1024, height: 256 } },
  { name: "size auto keeps the default", input: gen({ prompt: "a", size: "auto" }), expect: { width: 512, height: 512 } },
  { name: "num_images_per_prompt alias", input: gen({ prompt: "a", num_images_per_prompt: 10 }), expect: { n: 10 } },
  { name: "strength bounds inclusive", input: gen({ prompt: "a", strength: 1 }), expect: { strength: 1 } },
  {
    name: "OpenAI response options",
    input: gen({
      prompt: "a", quality: "hd", output_format: "webp", output_compression: 0, background: "transparent",
      moderation: "low", user: "u-1", stream: true, partial_images: 3,
    }),
    expect: { quality: "hd", outputFormat: "webp", outputCompression: 0, background: "transparent", moderation: "low", user: "u-1", stream: true, partialImages: 3 },
  },
  { name: "jpeg with opaque background", input: gen({ prompt: "a", output_format: "jpeg", output_compression: 100, background: "opaque" }), expect: { outputFormat: "jpeg", outputCompression: 100 } },
  {
    name: "static pipeline: defaults to the static values",
    input: gen({ prompt: "a" }),
    settings: staticSettings,
    expect: { width: 512, height: 512, n: 2, guidanceScale: undefined },
  },
  {
    name: "static pipeline: matching values pass",
    input: gen({ prompt: "a", size: "512x512", n: 2, guidance_scale: 7.5 }),
    settings: staticSettings,
    expect: { n: 2, guidanceScale: 7.5 },
  },
  {
    name: "no default resolution leaves the size to the backend",
    input: gen({ prompt: "a" }),
    settings: { ...settings, defaultResolution: undefined },
    expect: { width: undefined, height: undefined },
  },
  {
    name: "edits: strings parsed into numbers and booleans",
    input: edit({
      model: "sd", prompt: "a dog", size: "256x256", n: "2", num_inference_steps: "10", rng_seed: "42", strength: "0.75",
      guidance_scale: "7", max_sequence_length: "77", stream: "false", partial_images: "1", output_format: "jpeg", output_compression: "80",
    }),
    expect: {
      kind: "edits", prompt: "a dog", width: 256, height: 256, n: 2, steps: 10, rngSeed: 42, strength: 0.75, guidanceScale: 7,
      maxSequenceLength: 77, stream: false, partialImages: 1, outputFormat: "jpeg", outputCompression: 80,
    },
  },
  { name: "edits: empty fields are absent", input: edit({ prompt: "a", n: "", strength: "", size: "" }), expect: { n: 1, strength: undefined, width: undefined } },
  { name: "edits: lora_alphas[k] parts (openai SDK encoding)", input: edit({ prompt: "a", "lora_alphas[pixel]": "0.5" }), expect: { loraAlphas: { pixel: 0.5 } } },
  { name: "edits: lora_alphas as JSON text", input: edit({ prompt: "a", lora_alphas: '{"pixel":1}' }), expect: { loraAlphas: { pixel: 1 } } },
  { name: "edits: stream true, float forms", input: edit({ prompt: "a", stream: "true", strength: ".5", guidance_scale: "1e1" }), expect: { stream: true, strength: 0.5, guidanceScale: 10 } },
  { name: "style on generations (recorded)", input: gen({ prompt: "a", style: "vivid" }), expect: { style: "vivid", inputFidelity: undefined } },
  { name: "edits: input_fidelity (recorded)", input: edit({ prompt: "a", input_fidelity: "high" }), expect: { inputFidelity: "high", style: undefined } },
  {
    name: "prompts of exactly the limit, counted in characters not UTF-16 units",
    input: gen({ prompt: "a".repeat(MAX_PROMPT_CHARS), negative_prompt: "🐈".repeat(MAX_PROMPT_CHARS) }),
    expect: { negativePrompt: "🐈".repeat(MAX_PROMPT_CHARS) },
  },
  { name: "a prompt of spaces is not empty", input: gen({ prompt: " " }), expect: { prompt: " " } },
  { name: "edits: a one-element array is one value", input: edit({ prompt: ["a"], n: ["3"] }), expect: { prompt: "a", n: 3 } },
];

for (const c of good) {
  test(`accepts: ${c.name}`, () => {
    const req = parseImageRequest(c.input, c.settings ?? settings);
    for (const [key, value] of Object.entries(c.expect)) {
      assert.deepEqual((req as unknown as Record<string, unknown>)[key], value, key);
    }
  });
}

interface Bad {
  input: ImageRequestInput;
  settings?: ImageGenSettings;
  message: string;
  param: string | null;
  /** Checked when given. */
  code?: string;
  /** The test's name, instead of the input (which may be long). */
  label?: string;
}

const bad: Bad[] = [
  // Missing / unknown.
  { input: gen({ model: "sd" }), message: "prompt field is missing in JSON body", param: "prompt" },
  { input: edit({ model: "sd" }), message: "prompt field is missing in multipart body", param: "prompt" },
  { input: edit({ prompt: "" }), message: "prompt field is missing in multipart body", param: "prompt" },
  // OpenAI's fields on the endpoint OpenAI takes them on only.
  { input: edit({ prompt: "a", style: "vivid" }), message: "Unhandled parameter: style", param: "style" },
  { input: gen({ prompt: "a", input_fidelity: "high" }), message: "Unhandled parameter: input_fidelity", param: "input_fidelity" },
  { input: gen({ prompt: "a", style: "natural " }), message: "Unsupported style: natural . Supported values: vivid, natural.", param: "style" },
  { input: edit({ prompt: "a", input_fidelity: "max" }), message: "Unsupported input_fidelity: max. Supported values: high, low.", param: "input_fidelity" },
  // Prompt text: empty (OpenAI refuses it; OVMS's JSON path did not) and too long (OpenAI's limit and texts).
  {
    input: gen({ prompt: "" }),
    message: "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead.",
    param: "prompt",
    code: "empty_string",
  },
  {
    label: "a prompt one character over the limit",
    input: gen({ prompt: "a".repeat(MAX_PROMPT_CHARS + 1) }),
    message: `Invalid 'prompt': string too long. Expected a string with maximum length ${MAX_PROMPT_CHARS}, but got a string with length ${MAX_PROMPT_CHARS + 1} instead.`,
    param: "prompt",
    code: "string_above_max_length",
  },
  {
    label: "a multipart negative_prompt_2 of astral characters two over the limit",
    input: edit({ prompt: "a", negative_prompt_2: "🐈".repeat(MAX_PROMPT_CHARS + 2) }),
    message: `Invalid 'negative_prompt_2': string too long. Expected a string with maximum length ${MAX_PROMPT_CHARS}, but got a string with length ${MAX_PROMPT_CHARS + 2} instead.`,
    param: "negative_prompt_2",
    code: "string_above_max_length",
  },
  { input: gen({ prompt: "a", mask: "x" }), message: "Unhandled parameter: mask", param: "mask" },
  { input: edit({ prompt: "a", seed: "1" }), message: "Unhandled parameter: seed", param: "seed" },
  { input: edit({ prompt: "a", constructor: "1" }), message: "Unhandled parameter: constructor", param: "constructor" },
  { input: edit({ prompt: "a", toString: "x" }), message: "Unhandled parameter: toString", param: "toString" },
  { input: gen(JSON.parse('{"prompt":"a","__proto__":{"n":2}}') as Record<string, unknown>), message: "Unhandled parameter: __proto__", param: "__proto__" },
  { input: edit({ prompt: "a", image: "not-a-file" }), message: "image must be sent as a file part", param: "image" },
  // Wrong types (JSON).
  { input: gen({ prompt: 1 }), message: "prompt field is not a string", param: "prompt" },
  { input: gen({ prompt: "a", negative_prompt_2: null }), message: "negative_prompt_2 field is not a string", param: "negative_prompt_2" },
  { input: gen({ prompt: "a", size: 512 }), message: "size field is not a string", param: "size" },
  { input: gen({ prompt: "a", width: "512", height: 512 }), message: "width field is not a int64", param: "width" },
  { input: gen({ prompt: "a", n: 1.5 }), message: "n field is not a int", param: "n" },
  { input: gen({ prompt: "a", num_inference_steps: "10" }), message: "num_inference_steps field is not a size_t", param: "num_inference_steps" },
  { input: gen({ prompt: "a", rng_seed: 1.5 }), message: "rng_seed field is not a size_t", param: "rng_seed" },
  { input: gen({ prompt: "a", guidance_scale: "7.5" }), message: "guidance_scale field is not a float", param: "guidance_scale" },
  { input: gen({ prompt: "a", strength: true }), message: "strength field is not a float", param: "strength" },
  { input: gen({ prompt: "a", max_sequence_length: 1.5 }), message: "max_sequence_length field is not a int", param: "max_sequence_length" },
  { input: gen({ prompt: "a", response_format: 1 }), message: "response_format field is not a string", param: "response_format" },
  { input: gen({ prompt: "a", lora_alphas: [1] }), message: "lora_alphas must be an object", param: "lora_alphas" },
  { input: gen({ prompt: "a", lora_alphas: { pixel: "1" } }), message: "lora_alphas value for 'pixel' must be a number", param: "lora_alphas" },
  { input: gen({ prompt: "a", stream: "true" }), message: "stream field is not a boolean", param: "stream" },
  { input: gen({ prompt: "a", user: 5 }), message: "user field is not a string", param: "user" },
  { input: gen({ prompt: "a", output_compression: 50.5, output_format: "jpeg" }), message: "output_compression field is not a int", param: "output_compression" },
  // Wrong types (multipart text).
  { input: edit({ prompt: "a", strength: "  123.45 " }), message: "strength field is not a float", param: "strength" },
  { input: edit({ prompt: "a", strength: "1.2.3" }), message: "strength field is not a float", param: "strength" },
  // OVMS's multipart reader parses int fields with stoi32 and names that type.
  { input: edit({ prompt: "a", n: "2.0" }), message: "n field is not a int32", param: "n" },
  { input: edit({ prompt: "a", num_images_per_prompt: "two" }), message: "num_images_per_prompt field is not a int32", param: "num_images_per_prompt" },
  { input: edit({ prompt: "a", max_sequence_length: "256.0" }), message: "max_sequence_length field is not a int32", param: "max_sequence_length" },
  { input: edit({ prompt: "a", max_sequence_length: " 256" }), message: "max_sequence_length field is not a int32", param: "max_sequence_length" },
  { input: edit({ prompt: "a", max_sequence_length: "2147483648" }), message: "max_sequence_length field is not a int32", param: "max_sequence_length" },
  { input: edit({ prompt: "a", n: "2147483648" }), message: "n field is not a int32", param: "n" },
  { input: edit({ prompt: "a", width: "64.5", height: "64" }), message: "width field is not a int64", param: "width" },
  { input: edit({ prompt: "a", num_inference_steps: "ten" }), message: "num_inference_steps field is not a size_t", param: "num_inference_steps" },
  { input: edit({ prompt: "a", stream: "yes" }), message: "stream field is not a boolean", param: "stream" },
  { input: edit({ prompt: "a", lora_alphas: "{bad" }), message: "lora_alphas must be an object", param: "lora_alphas" },
  { input: edit({ prompt: "a", "lora_alphas[pixel]": "x" }), message: "lora_alphas value for 'pixel' must be a number", param: "lora_alphas" },
  { input: edit({ prompt: "a", n: ["1", "2"] }), message: "n field must be given only once", param: "n" },
  // Out of range / format.
  { input: gen({ prompt: "a", size: "512X512" }), message: "size field is not in correct format - WxH", param: "size" },
  { input: gen({ prompt: "a", size: "512x" }), message: "size field is not in correct format - WxH", param: "size" },
  { input: gen({ prompt: "a", size: "0x512" }), message: "size field values must be greater than 0", param: "size" },
  { input: gen({ prompt: "a", size: "2048x512" }), message: "requested resolution 2048x512 exceeds maxResolution: 1024x1024", param: "size" },
  { input: gen({ prompt: "a", width: 512, height: 1025 }), message: "requested resolution 512x1025 exceeds maxResolution: 1024x1024", param: "width" },
  { input: gen({ prompt: "a", width: 0, height: 512 }), message: "width must be higher than 0", param: "width" },
  { input: gen({ prompt: "a", width: 512, height: -1 }), message: "height must be higher than 0", param: "height" },
  { input: gen({ prompt: "a", width: 512 }), message: "requested width but height is missing", param: "height" },
  { input: gen({ prompt: "a", n: 11 }), message: "num_images_per_prompt/n is greater than maxNumImagesPerPrompt: 10", param: "n" },
  { input: gen({ prompt: "a", num_images_per_prompt: 0 }), message: "num_images_per_prompt/n must be higher than 0", param: "num_images_per_prompt" },
  { input: gen({ prompt: "a", num_inference_steps: 101 }), message: "num_inference_steps is greater than maxNumInferenceSteps: 100", param: "num_inference_steps" },
  { input: gen({ prompt: "a", num_inference_steps: 0 }), message: "num_inference_steps must be higher than 0", param: "num_inference_steps" },
  { input: gen({ prompt: "a", rng_seed: -1 }), message: "rng_seed must be an integer in [0, 2^53), got -1", param: "rng_seed" },
  { input: gen({ prompt: "a", rng_seed: 2 ** 53 }), message: `rng_seed must be an integer in [0, 2^53), got ${2 ** 53}`, param: "rng_seed" },
  { input: gen({ prompt: "a", strength: 1.5 }), message: "strength is greater than maxStrength: 1", param: "strength" },
  { input: edit({ prompt: "a", strength: "-0.1" }), message: "strength is less than minStrength: 0", param: "strength" },
  { input: gen({ prompt: "a", max_sequence_length: 0 }), message: "max_sequence_length must be higher than 0", param: "max_sequence_length" },
  { input: gen({ prompt: "a", max_sequence_length: -1 }), message: "max_sequence_length must be higher than 0", param: "max_sequence_length" },
  { input: edit({ prompt: "a", max_sequence_length: "-5" }), message: "max_sequence_length must be higher than 0", param: "max_sequence_length" },
  { input: gen({ prompt: "a", max_sequence_length: 2 ** 31 }), message: "max_sequence_length field is not a int", param: "max_sequence_length" },
  { input: gen({ prompt: "a", max_sequence_length: "512" }), message: "max_sequence_length field is not a int", param: "max_sequence_length" },
  { input: gen({ prompt: "a", max_sequence_length: null }), message: "max_sequence_length field is not a int", param: "max_sequence_length" },
  { input: gen({ prompt: "a", prompt_3: 3 }), message: "prompt_3 field is not a string", param: "prompt_3" },
  { input: gen({ prompt: "a", negative_prompt_3: ["x"] }), message: "negative_prompt_3 field is not a string", param: "negative_prompt_3" },
  { input: gen({ prompt: "a", prompt_2: { text: "x" } }), message: "prompt_2 field is not a string", param: "prompt_2" },
  { input: gen({ prompt: "a", guidance_scale: null }), message: "guidance_scale field is not a float", param: "guidance_scale" },
  { input: edit({ prompt: "a", guidance_scale: "3.5f" }), message: "guidance_scale field is not a float", param: "guidance_scale" },
  { input: edit({ prompt: "a", prompt_3: ["x", "y"] }), message: "prompt_3 field must be given only once", param: "prompt_3" },
  { input: gen({ prompt: "a", output_format: "jpeg", output_compression: 101 }), message: "output_compression must be between 0 and 100, got 101", param: "output_compression" },
  { input: gen({ prompt: "a", partial_images: 4 }), message: "partial_images must be between 0 and 3, got 4", param: "partial_images" },
  { input: gen({ prompt: "a", response_format: "b64" }), message: "Unsupported response_format: b64. Only b64_json is supported.", param: "response_format" },
  {
    input: gen({ prompt: "a", response_format: "url" }),
    message: "Unsupported response_format: url. Only b64_json is supported. graphserve does not host image files, so it cannot return URLs.",
    param: "response_format",
  },
  { input: gen({ prompt: "a", quality: "ultra" }), message: "Unsupported quality: ultra. Supported values: auto, low, medium, high, standard, hd.", param: "quality" },
  { input: gen({ prompt: "a", output_format: "gif" }), message: "Unsupported output_format: gif. Supported values: png, jpeg, webp.", param: "output_format" },
  { input: gen({ prompt: "a", background: "white" }), message: "Unsupported background: white. Supported values: auto, opaque, transparent.", param: "background" },
  { input: gen({ prompt: "a", moderation: "high" }), message: "Unsupported moderation: high. Supported values: auto, low.", param: "moderation" },
  // Conflicts.
  { input: gen({ prompt: "a", size: "512x512", width: 512 }), message: "Key: width already exists in request options.", param: "width" },
  { input: gen({ prompt: "a", size: "auto", height: 512 }), message: "Key: height already exists in request options.", param: "height" },
  { input: gen({ prompt: "a", n: 1, num_images_per_prompt: 1 }), message: "Key: num_images_per_prompt already exists in request options.", param: "num_images_per_prompt" },
  { input: edit({ prompt: "a", lora_alphas: '{"pixel":1}', "lora_alphas[pixel]": "1" }), message: "Key: lora_alphas already exists in request options.", param: "lora_alphas" },
  { input: gen({ prompt: "a", output_compression: 50 }), message: "output_compression is only supported with output_format jpeg or webp", param: "output_compression" },
  { input: gen({ prompt: "a", output_format: "jpeg", background: "transparent" }), message: "background transparent is not supported with output_format jpeg; use png or webp", param: "background" },
  // Settings-dependent.
  { input: gen({ prompt: "a", lora_alphas: { other: 1 } }), message: "lora_alphas key 'other' is not a configured LoRA adapter (known: pixel)", param: "lora_alphas" },
  { input: gen({ prompt: "a", lora_alphas: {} }), settings: staticSettings, message: "lora_alphas is not supported: no LoRA adapters are configured", param: "lora_alphas" },
  {
    input: gen({ prompt: "a", size: "768x768" }),
    settings: staticSettings,
    message: "NPU Image Generation requested resolution 768x768 is not supported by static reshape settings",
    param: "size",
  },
  { input: gen({ prompt: "a", n: 1 }), settings: staticSettings, message: "NPU Image Generation requested num_images_per_prompt doesn't match underlying model shape", param: "n" },
  { input: gen({ prompt: "a", n: 3 }), settings: staticSettings, message: "num_images_per_prompt/n is greater than maxNumImagesPerPrompt: 2", param: "n" },
  { input: gen({ prompt: "a", guidance_scale: 7 }), settings: staticSettings, message: "NPU Image Generation requested guidance_scale doesn't match underlying model shape", param: "guidance_scale" },
];

for (const c of bad) {
  const label = c.label ?? (c.input.kind === "edits" ? JSON.stringify(c.input.fields) : JSON.stringify(c.input.json));
  test(`refuses ${c.input.kind} ${label}`, () => {
    assert.throws(
      () => parseImageRequest(c.input, c.settings ?? settings),
      (e: unknown) => {
        assert.ok(e instanceof HttpError, String(e));
        assert.equal(e.status, 400);
        assert.equal(e.message, c.message);
        assert.equal(e.param, c.param);
        assert.equal(e.type, "invalid_request_error");
        if (c.code !== undefined) assert.equal(e.code, c.code);
        return true;
      },
    );
  });
}

test("a non-object JSON body is refused", () => {
  assert.throws(() => parseImageRequest({ kind: "generations", json: [] as unknown as Record<string, unknown> }, settings), /JSON body must be an object/);
});

test("the input object is not modified and the result carries no undefined keys", () => {
  const json = { prompt: "a", lora_alphas: { pixel: 0.5 } };
  const req = parseImageRequest(gen(json), settings);
  assert.deepEqual(json, { prompt: "a", lora_alphas: { pixel: 0.5 } });
  assert.notEqual(req.loraAlphas, json.lora_alphas);
  assert.ok(Object.values(req).every((v) => v !== undefined));
});

test("toGenerationRequest maps to the backend request", () => {
  const req = parseImageRequest(gen({ prompt: "a", negative_prompt: "b", size: "256x512", n: 2, num_inference_steps: 4, guidance_scale: 3.5 }), settings);
  const g = toGenerationRequest(req, "text2image", 7);
  assert.equal(g.mode, "text2image");
  assert.equal(g.prompt, "a");
  assert.equal(g.negativePrompt, "b");
  assert.equal(g.width, 256);
  assert.equal(g.height, 512);
  assert.equal(g.numImagesPerPrompt, 2);
  assert.equal(g.numInferenceSteps, 4);
  assert.equal(g.guidanceScale, 3.5);
  assert.equal(g.rngSeed, 7);
});

/** What FLUX and SD3 requests carry besides SD's fields, as OVMS's accept-list names them. */
const FAMILY_FIELDS = {
  prompt: "  a cat, 猫 🐈  ",
  prompt_2: "T5 text for FLUX, CLIP-G text for SD3\nsecond line",
  prompt_3: "T5 text for SD3",
  negative_prompt: "blurry",
  negative_prompt_2: "",
  negative_prompt_3: "low quality",
  max_sequence_length: 512,
  guidance_scale: 0,
};

test("FLUX/SD3 fields reach GenerationRequest unchanged (JSON): texts byte for byte, max_sequence_length and guidance as sent", () => {
  for (const mode of ["text2image", "image2image", "inpainting"] as const) {
    const g = toGenerationRequest(parseImageRequest(gen(FAMILY_FIELDS), settings), mode, 1);
    assert.deepEqual(
      { prompt: g.prompt, prompt2: g.prompt2, prompt3: g.prompt3, negativePrompt: g.negativePrompt, negativePrompt2: g.negativePrompt2, negativePrompt3: g.negativePrompt3 },
      { prompt: FAMILY_FIELDS.prompt, prompt2: FAMILY_FIELDS.prompt_2, prompt3: FAMILY_FIELDS.prompt_3, negativePrompt: "blurry", negativePrompt2: "", negativePrompt3: "low quality" },
    );
    assert.equal(g.maxSequenceLength, 512);
    // 0 (FLUX.1-schnell's recommended value) is a value, not an absent field.
    assert.equal(g.guidanceScale, 0);
    assert.equal(g.mode, mode);
  }
  // Family limits (FLUX/SD3: at most 512 T5 tokens) are the backend's to apply: the request layer passes 513 on.
  assert.equal(toGenerationRequest(parseImageRequest(gen({ prompt: "a", max_sequence_length: 513 }), settings), "text2image", 1).maxSequenceLength, 513);
  // Absent fields stay absent, so the backend's family defaults apply (FLUX 512, SD3 256 T5 tokens; each pipeline's guidance).
  const bare = toGenerationRequest(parseImageRequest(gen({ prompt: "a" }), settings), "text2image", 1);
  for (const key of ["prompt2", "prompt3", "negativePrompt", "negativePrompt2", "negativePrompt3", "maxSequenceLength", "guidanceScale"] as const) {
    assert.equal(bare[key], undefined, key);
  }
});

test("FLUX/SD3 fields reach GenerationRequest unchanged (multipart text fields); an empty part counts as absent, as in OVMS", () => {
  const fields = {
    prompt: FAMILY_FIELDS.prompt,
    prompt_2: FAMILY_FIELDS.prompt_2,
    prompt_3: FAMILY_FIELDS.prompt_3,
    negative_prompt: "blurry",
    negative_prompt_2: "",
    negative_prompt_3: "low quality",
    max_sequence_length: "256",
    guidance_scale: "3.5",
  };
  const g = toGenerationRequest(parseImageRequest(edit(fields), settings), "image2image", 1);
  assert.equal(g.prompt, FAMILY_FIELDS.prompt);
  assert.equal(g.prompt2, FAMILY_FIELDS.prompt_2);
  assert.equal(g.prompt3, FAMILY_FIELDS.prompt_3);
  assert.equal(g.negativePrompt, "blurry");
  assert.equal(g.negativePrompt2, undefined);
  assert.equal(g.negativePrompt3, "low quality");
  assert.equal(g.maxSequenceLength, 256);
  assert.equal(g.guidanceScale, 3.5);
});
