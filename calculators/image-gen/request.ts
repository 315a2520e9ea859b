/**
 * Request validation for `/v3/images/generations` (JSON body) and
 * `/v3/images/edits` (the text fields of a multipart body).
 *
 * Pure: no I/O, no randomness. Shapes and types are checked by ajv schemas
 * compiled once at module load; the rules that depend on the servable's
 * settings (limits, static shapes, LoRA adapters) and on combinations of
 * fields are checked in code afterwards. Every failure is an
 * `HttpError(400, message, { param })`; messages reuse OVMS's texts wherever
 * OVMS has one, so substring checks written against OVMS keep matching.
 *
 * Differences from OVMS (deliberate):
 * - integer literals are accepted for float fields (`guidance_scale: 7`);
 * - `max_resolution` is enforced (OVMS only documents it);
 * - `width`/`height` must come together (OVMS only checks that on static pipelines);
 * - an edit without a size keeps the input image's size rather than `default_resolution`;
 * - OpenAI fields OVMS refuses are accepted: `quality`, `moderation`, `style`
 *   (generations) and `input_fidelity` (edits), each on the endpoint OpenAI
 *   takes it on (recorded, no effect on the model), `output_format`,
 *   `output_compression`, `background`, `user` (for logs), `stream`,
 *   `partial_images`;
 * - an empty JSON `prompt` is refused as OpenAI refuses it (OVMS accepts it and
 *   generates unconditioned), with OpenAI's text and code `empty_string`;
 * - every prompt field is limited to MAX_PROMPT_CHARS characters (OVMS has no
 *   limit; a 10 MB prompt held a generation slot for seconds while it was
 *   tokenised), with OpenAI's text and code `string_above_max_length`;
 * - graphserve's own `stream_progress` (boolean, only with `stream: true`;
 *   `true` without it is refused with param `stream_progress`): the stream
 *   also carries an `image_generation.progress` / `image_edit.progress`
 *   event after every denoising step of every image, with `step` (1-based),
 *   `num_inference_steps` (the steps that image's schedule runs: fewer than
 *   asked for an edit with `strength` < 1) and `image_index`. The OpenAI
 *   SDKs never send it, so their streams are unchanged;
 * - `response_format: "url"` is refused with OVMS's message plus the reason
 *   (graphserve does not host files);
 * - multipart: `lora_alphas` may come as `lora_alphas[<alias>]` parts (how the
 *   openai SDK encodes objects) or as one JSON-text part; `stream` is
 *   `"true"`/`"false"`; a field sent twice is refused; a text field named
 *   `image`/`mask` is refused as "must be sent as a file part".
 *
 * Kept as in OVMS: an empty multipart `prompt` counts as missing; `image` is
 * accepted and ignored on generations; `strength` is accepted on generations
 * (the backend decides).
 * Accepted but without effect here: `partial_images` without `stream`, and
 * `background: "transparent"` with png/webp (the pipelines produce RGB; the
 * encoder decides whether it can honour it).
 * Error precedence (ajv, first error): missing `prompt`, then unknown fields,
 * then each field in schema order, then the settings and cross-field rules.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { HttpError } from "../../src/index.js";
import type { ImageGenSettings, Resolution } from "./options.js";
import type { GenerationMode, GenerationRequest } from "../../src/backends/index.js";

export type ImageRequestKind = "generations" | "edits";
export type OutputFormat = "png" | "jpeg" | "webp";
export type Background = "auto" | "opaque" | "transparent";
export type Quality = "auto" | "low" | "medium" | "high" | "standard" | "hd";
export type Moderation = "auto" | "low";
export type Style = "vivid" | "natural";
export type InputFidelity = "high" | "low";

export interface ImageRequestInput {
  readonly kind: ImageRequestKind;
  /** generations: the parsed JSON body. */
  readonly json?: Record<string, unknown>;
  /** edits: the multipart text fields (a repeated field is an array). File parts are not passed here. */
  readonly fields?: Readonly<Record<string, string | readonly string[]>>;
}

/** The fields that pass to the backend unchanged (see GenerationRequest). */
type PassedThrough = "prompt" | "prompt2" | "prompt3" | "negativePrompt" | "negativePrompt2" | "negativePrompt3" | "width" | "height" | "strength" | "maxSequenceLength" | "trueCfgScale";

/**
 * A validated request: what the backend needs plus how to answer. `width`
 * and `height` are both set or both undefined (undefined: the model's native
 * size, or the input image's for edits).
 */
export interface ImageRequest extends Pick<GenerationRequest, PassedThrough> {
  readonly kind: ImageRequestKind;
  /** The `model` field as sent (routing happens before this module). */
  readonly model?: string;
  /** Images per prompt: the request's, else the static value, else 1. */
  readonly n: number;
  /** Denoising steps: the request's, else `settings.defaultSteps`. */
  readonly steps: number;
  /** Undefined: the backend's default (or the static value on a static pipeline). */
  readonly guidanceScale?: number;
  /** Undefined: the caller draws one. */
  readonly rngSeed?: number;
  readonly loraAlphas?: Readonly<Record<string, number>>;
  // Response options.
  readonly outputFormat: OutputFormat;
  /** 0–100; only set with jpeg/webp (undefined: the encoder's default, 100). */
  readonly outputCompression?: number;
  readonly background: Background;
  /** Recorded and echoed; does not change the model or the steps. */
  readonly quality: Quality;
  /** Recorded; graphserve does no moderation. */
  readonly moderation: Moderation;
  /** OpenAI's dall-e-3 `style` (generations): recorded, no effect on the model. */
  readonly style?: Style;
  /** OpenAI's `input_fidelity` (edits): recorded, no effect on the model. */
  readonly inputFidelity?: InputFidelity;
  readonly stream: boolean;
  /** 0–3; only acted on when `stream` is true. */
  readonly partialImages: number;
  /** graphserve's: a progress event per denoising step (only with `stream`). */
  readonly streamProgress: boolean;
  /** For logs only. */
  readonly user?: string;
}

/** Upper bound (exclusive) on `rng_seed`: the backends take integers in [0, 2^53). */
const SEED_LIMIT = 2 ** 53;
const INT32_MAX = 2 ** 31 - 1;
/**
 * Longest prompt accepted, in characters (code points), per prompt field:
 * OpenAI's limit for its GPT image models. Far more than any text encoder
 * reads (CLIP takes 77 tokens, T5 512), so a real prompt never meets it.
 */
export const MAX_PROMPT_CHARS = 32_000;
const PROMPT_FIELDS = ["prompt", "prompt_2", "prompt_3", "negative_prompt", "negative_prompt_2", "negative_prompt_3"] as const;

type FieldType = "string" | "int" | "int64" | "size_t" | "float" | "boolean" | "object" | "any";

/** Every accepted field, its OVMS-style type name (used in `<k> field is not a <type>`). */
const FIELD_TYPES: Readonly<Record<string, FieldType>> = {
  model: "string",
  prompt: "string",
  prompt_2: "string",
  prompt_3: "string",
  negative_prompt: "string",
  negative_prompt_2: "string",
  negative_prompt_3: "string",
  size: "string",
  width: "int64",
  height: "int64",
  n: "int",
  num_images_per_prompt: "int",
  response_format: "string",
  num_inference_steps: "size_t",
  rng_seed: "size_t",
  strength: "float",
  guidance_scale: "float",
  max_sequence_length: "int",
  lora_alphas: "object",
  // OpenAI fields OVMS does not take.
  quality: "string",
  output_format: "string",
  output_compression: "int",
  background: "string",
  moderation: "string",
  user: "string",
  stream: "boolean",
  partial_images: "int",
  style: "string",
  input_fidelity: "string",
  // graphserve's own.
  stream_progress: "boolean",
  /** diffusers' FLUX true classifier-free guidance (with a negative_prompt). */
  true_cfg_scale: "float",
};

const ENUMS: Readonly<Record<string, readonly string[]>> = {
  quality: ["auto", "low", "medium", "high", "standard", "hd"],
  output_format: ["png", "jpeg", "webp"],
  background: ["auto", "opaque", "transparent"],
  moderation: ["auto", "low"],
  style: ["vivid", "natural"],
  input_fidelity: ["high", "low"],
};

/** OpenAI fields that only one endpoint takes; the other refuses them as unhandled. */
const ONLY_ON: Readonly<Record<string, ImageRequestKind>> = { style: "generations", input_fidelity: "edits" };

function propertySchema(type: FieldType): Record<string, unknown> {
  switch (type) {
    case "string": return { type: "string" };
    case "int": return { type: "integer" };
    case "int64": return { type: "integer" };
    case "size_t": return { type: "integer" };
    case "float": return { type: "number" };
    case "boolean": return { type: "boolean" };
    case "object": return { type: "object", additionalProperties: { type: "number" } };
    case "any": return {};
  }
}

function buildSchema(kind: ImageRequestKind): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [name, type] of Object.entries(FIELD_TYPES)) properties[name] = propertySchema(type);
  for (const [name, values] of Object.entries(ENUMS)) properties[name] = { type: "string", enum: values };
  for (const name of PROMPT_FIELDS) properties[name] = { type: "string", maxLength: MAX_PROMPT_CHARS };
  // An empty multipart prompt never gets here (empty fields count as absent).
  properties.prompt = { type: "string", minLength: 1, maxLength: MAX_PROMPT_CHARS };
  for (const [name, only] of Object.entries(ONLY_ON)) if (only !== kind) delete properties[name];
  // Ranges with a fixed bound live in the schema; bounds from settings are checked in code.
  Object.assign(properties, {
    width: { type: "integer", minimum: 1 },
    height: { type: "integer", minimum: 1 },
    n: { type: "integer", minimum: 1, maximum: INT32_MAX },
    num_images_per_prompt: { type: "integer", minimum: 1, maximum: INT32_MAX },
    num_inference_steps: { type: "integer", minimum: 1 },
    rng_seed: { type: "integer", minimum: 0, exclusiveMaximum: SEED_LIMIT },
    strength: { type: "number", minimum: 0, maximum: 1 },
    max_sequence_length: { type: "integer", minimum: 1, maximum: INT32_MAX },
    output_compression: { type: "integer", minimum: 0, maximum: 100 },
    partial_images: { type: "integer", minimum: 0, maximum: 3 },
    response_format: { type: "string", const: "b64_json" },
    size: { type: "string", pattern: "^(auto|[0-9]+x[0-9]+)$" },
  });
  // OVMS lists `image` for generations and ignores it; for edits it is a file part.
  if (kind === "generations") properties.image = {};
  return { type: "object", properties, required: ["prompt"], additionalProperties: false };
}

const ajv = new Ajv({ allErrors: false, strict: true });
const VALIDATORS: Readonly<Record<ImageRequestKind, ValidateFunction>> = {
  generations: ajv.compile(buildSchema("generations")),
  edits: ajv.compile(buildSchema("edits")),
};

const bad = (message: string, param: string | null, code?: string): HttpError => new HttpError(400, message, { param, code });

/** Characters as OpenAI (and ajv's maxLength) count them: code points, not UTF-16 units. */
function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** Turns ajv's first error into OVMS's message for it. */
function errorFromAjv(e: ErrorObject, kind: ImageRequestKind, body: Record<string, unknown>): HttpError {
  const path = e.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  const field = path[0];
  if (field === undefined) {
    if (e.keyword === "additionalProperties") {
      const name = String((e.params as { additionalProperty: string }).additionalProperty);
      if (kind === "edits" && (name === "image" || name === "mask" || name.startsWith("image["))) {
        return bad(`${name} must be sent as a file part`, name);
      }
      return bad(`Unhandled parameter: ${name}`, name);
    }
    if (e.keyword === "required") {
      return bad(`prompt field is missing in ${kind === "edits" ? "multipart" : "JSON"} body`, "prompt");
    }
    return bad(`request body ${e.message ?? "is invalid"}`, null);
  }
  const value = body[field];
  if (field === "lora_alphas") {
    if (path.length === 1) return bad("lora_alphas must be an object", field);
    return bad(`lora_alphas value for '${path[1]}' must be a number`, field);
  }
  if (e.keyword === "type") return bad(`${field} field is not a ${Object.hasOwn(FIELD_TYPES, field) ? typeName(FIELD_TYPES[field], kind) : String(e.params.type)}`, field);
  // OpenAI's texts and codes for string lengths (only prompt fields have bounds).
  if (e.keyword === "minLength") {
    return bad(`Invalid '${field}': empty string. Expected a string with minimum length 1, but got an empty string instead.`, field, "empty_string");
  }
  if (e.keyword === "maxLength") {
    return bad(
      `Invalid '${field}': string too long. Expected a string with maximum length ${MAX_PROMPT_CHARS}, but got a string with length ${codePoints(String(value))} instead.`,
      field,
      "string_above_max_length",
    );
  }
  switch (field) {
    case "response_format":
      return bad(
        value === "url"
          ? "Unsupported response_format: url. Only b64_json is supported. graphserve does not host image files, so it cannot return URLs."
          : `Unsupported response_format: ${String(value)}. Only b64_json is supported.`,
        field,
      );
    case "size": return bad("size field is not in correct format - WxH", field);
    case "width":
    case "height": return bad(`${field} must be higher than 0`, field);
    case "n":
    case "num_images_per_prompt":
      return bad(e.keyword === "minimum" ? "num_images_per_prompt/n must be higher than 0" : `${field} field is not a ${typeName("int", kind)}`, field);
    case "num_inference_steps": return bad("num_inference_steps must be higher than 0", field);
    case "rng_seed": return bad(`rng_seed must be an integer in [0, 2^53), got ${String(value)}`, field);
    case "strength":
      return bad(e.keyword === "maximum" ? "strength is greater than maxStrength: 1" : "strength is less than minStrength: 0", field);
    case "max_sequence_length":
      return bad(e.keyword === "minimum" ? "max_sequence_length must be higher than 0" : `max_sequence_length field is not a ${typeName("int", kind)}`, field);
    case "output_compression": return bad(`output_compression must be between 0 and 100, got ${String(value)}`, field);
    case "partial_images": return bad(`partial_images must be between 0 and 3, got ${String(value)}`, field);
  }
  if (e.keyword === "enum") {
    return bad(`Unsupported ${field}: ${String(value)}. Supported values: ${(ENUMS[field] ?? []).join(", ")}.`, field);
  }
  return bad(`${field} ${e.message ?? "is invalid"}`, field);
}

// Strict text → value parsing for multipart fields (no surrounding spaces, one number only).
const INT_TEXT = /^[+-]?[0-9]+$/;
const FLOAT_TEXT = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const LORA_PART = /^lora_alphas\[([^\]]*)\]$/;

/**
 * The type name OVMS's message gives for `type` on `kind`: its multipart
 * reader parses `int` fields as 32-bit (`stoi32`) and says so ("int32"),
 * its JSON reader says "int".
 */
function typeName(type: FieldType, kind: ImageRequestKind): string {
  return type === "int" && kind === "edits" ? "int32" : type;
}

function typeError(field: string, type: FieldType): HttpError {
  if (field === "lora_alphas") return bad("lora_alphas must be an object", field);
  return bad(`${field} field is not a ${typeName(type, "edits")}`, field);
}

/** Multipart text fields → a JSON-like object the schema can check. Empty values count as absent. */
function fieldsToBody(fields: Readonly<Record<string, string | readonly string[]>>): Record<string, unknown> {
  const body: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const alphaParts: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let alphaPartsSeen = false;
  for (const [name, raw] of Object.entries(fields)) {
    if (typeof raw !== "string") {
      if (raw.length > 1) throw bad(`${name} field must be given only once`, name);
    }
    const text = typeof raw === "string" ? raw : (raw[0] ?? "");
    if (text === "") continue;
    const part = LORA_PART.exec(name);
    if (part) {
      alphaPartsSeen = true;
      const key = part[1];
      if (!FLOAT_TEXT.test(text)) throw bad(`lora_alphas value for '${key}' must be a number`, "lora_alphas");
      alphaParts[key] = Number(text);
      continue;
    }
    const type = Object.hasOwn(FIELD_TYPES, name) ? FIELD_TYPES[name] : undefined;
    switch (type) {
      case undefined:
      case "string":
        body[name] = text; // unknown names are left for the schema to refuse
        break;
      case "int":
      case "int64":
      case "size_t":
        if (!INT_TEXT.test(text)) throw typeError(name, type);
        body[name] = Number(text) + 0; // + 0: "-0" → 0
        break;
      case "float":
        if (!FLOAT_TEXT.test(text)) throw typeError(name, type);
        body[name] = Number(text) + 0; // + 0: "-0" → 0
        break;
      case "boolean":
        if (text !== "true" && text !== "false") throw typeError(name, type);
        body[name] = text === "true";
        break;
      case "object": {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          throw typeError(name, type);
        }
        body[name] = parsed;
        break;
      }
      case "any":
        body[name] = text;
        break;
    }
  }
  if (alphaPartsSeen) {
    if ("lora_alphas" in body) throw bad("Key: lora_alphas already exists in request options.", "lora_alphas");
    body.lora_alphas = { ...alphaParts };
  }
  return body;
}

const show = (r: Resolution) => `${r.width}x${r.height}`;

/**
 * Validates an images request against the schema and the servable's settings.
 * Throws `HttpError(400, message, { param })` on the first problem found.
 */
export function parseImageRequest(input: ImageRequestInput, settings: ImageGenSettings): ImageRequest {
  const { kind } = input;
  let body: Record<string, unknown>;
  if (kind === "edits") {
    body = fieldsToBody(input.fields ?? {});
  } else {
    const json = input.json;
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw bad("The file is not valid json - JSON body must be an object", null);
    }
    body = json;
  }

  const validate = VALIDATORS[kind];
  if (!validate(body)) throw errorFromAjv(validate.errors![0], kind, body);

  const str = (k: string) => body[k] as string | undefined;
  const num = (k: string) => body[k] as number | undefined;
  const has = (k: string) => Object.hasOwn(body, k) && body[k] !== undefined;

  // Size.
  let width: number | undefined;
  let height: number | undefined;
  const size = str("size");
  if (size !== undefined) {
    for (const k of ["width", "height"]) {
      if (has(k)) throw bad(`Key: ${k} already exists in request options.`, k);
    }
    if (size !== "auto") {
      const [w, h] = size.split("x").map(Number);
      if (!(w > 0 && h > 0)) throw bad("size field values must be greater than 0", "size");
      if (!Number.isSafeInteger(w) || !Number.isSafeInteger(h)) throw bad("size field is not in correct format - WxH", "size");
      width = w;
      height = h;
    }
  } else {
    width = num("width");
    height = num("height");
    if ((width === undefined) !== (height === undefined)) {
      const missing = width === undefined ? "width" : "height";
      const given = width === undefined ? "height" : "width";
      throw bad(`requested ${given} but ${missing} is missing`, missing);
    }
  }
  const sizeParam = size !== undefined ? "size" : "width";
  if (width !== undefined && height !== undefined) {
    const requested = { width, height };
    if (settings.staticResolutions.length > 0) {
      if (!settings.staticResolutions.some((r) => r.width === width && r.height === height)) {
        throw bad(`NPU Image Generation requested resolution ${show(requested)} is not supported by static reshape settings`, sizeParam);
      }
    } else if (width > settings.maxResolution.width || height > settings.maxResolution.height) {
      throw bad(`requested resolution ${show(requested)} exceeds maxResolution: ${show(settings.maxResolution)}`, sizeParam);
    }
  } else if (settings.defaultResolution && (kind === "generations" || settings.staticResolutions.length > 0)) {
    // An edit without a size keeps its input image's size (OpenAI's "auto"), unless the pipeline is static.
    width = settings.defaultResolution.width;
    height = settings.defaultResolution.height;
  }

  // Images per prompt.
  if (has("n") && has("num_images_per_prompt")) {
    throw bad("Key: num_images_per_prompt already exists in request options.", "num_images_per_prompt");
  }
  const nParam = has("n") ? "n" : "num_images_per_prompt";
  const requestedN = num("n") ?? num("num_images_per_prompt");
  if (requestedN !== undefined) {
    if (requestedN > settings.maxImagesPerPrompt) {
      throw bad(`num_images_per_prompt/n is greater than maxNumImagesPerPrompt: ${settings.maxImagesPerPrompt}`, nParam);
    }
    if (settings.staticImagesPerPrompt !== undefined && requestedN !== settings.staticImagesPerPrompt) {
      throw bad("NPU Image Generation requested num_images_per_prompt doesn't match underlying model shape", nParam);
    }
  }
  const n = requestedN ?? settings.staticImagesPerPrompt ?? 1;

  // Steps and guidance.
  const requestedSteps = num("num_inference_steps");
  if (requestedSteps !== undefined && requestedSteps > settings.maxSteps) {
    throw bad(`num_inference_steps is greater than maxNumInferenceSteps: ${settings.maxSteps}`, "num_inference_steps");
  }
  const steps = requestedSteps ?? settings.defaultSteps;
  const guidanceScale = num("guidance_scale");
  if (guidanceScale !== undefined && settings.staticGuidanceScale !== undefined && guidanceScale !== settings.staticGuidanceScale) {
    throw bad("NPU Image Generation requested guidance_scale doesn't match underlying model shape", "guidance_scale");
  }

  // LoRA.
  const loraAlphas = body.lora_alphas as Record<string, number> | undefined;
  if (loraAlphas !== undefined) {
    const known = new Set(settings.loraAdapters.map((a) => a.alias));
    if (known.size === 0) throw bad("lora_alphas is not supported: no LoRA adapters are configured", "lora_alphas");
    for (const key of Object.keys(loraAlphas)) {
      if (!known.has(key)) {
        throw bad(`lora_alphas key '${key}' is not a configured LoRA adapter (known: ${[...known].join(", ")})`, "lora_alphas");
      }
      if (!Number.isFinite(loraAlphas[key])) throw bad(`lora_alphas value for '${key}' must be a number`, "lora_alphas");
    }
  }

  // Output options.
  const outputFormat = (str("output_format") ?? "png") as OutputFormat;
  const outputCompression = num("output_compression");
  if (outputCompression !== undefined && outputFormat === "png") {
    throw bad("output_compression is only supported with output_format jpeg or webp", "output_compression");
  }
  const background = (str("background") ?? "auto") as Background;
  if (background === "transparent" && outputFormat === "jpeg") {
    throw bad("background transparent is not supported with output_format jpeg; use png or webp", "background");
  }

  const stream = (body.stream as boolean | undefined) ?? false;
  const streamProgress = (body.stream_progress as boolean | undefined) ?? false;
  if (streamProgress && !stream) throw bad("stream_progress needs stream: true (progress events are sent on the event stream)", "stream_progress");

  const out: { -readonly [K in keyof ImageRequest]: ImageRequest[K] } = {
    kind,
    prompt: str("prompt")!,
    n,
    steps,
    outputFormat,
    background,
    quality: (str("quality") ?? "auto") as Quality,
    moderation: (str("moderation") ?? "auto") as Moderation,
    stream,
    partialImages: num("partial_images") ?? 0,
    streamProgress,
  };
  const optional: [keyof ImageRequest, unknown][] = [
    ["model", body.model],
    ["prompt2", body.prompt_2],
    ["prompt3", body.prompt_3],
    ["negativePrompt", body.negative_prompt],
    ["negativePrompt2", body.negative_prompt_2],
    ["negativePrompt3", body.negative_prompt_3],
    ["width", width],
    ["height", height],
    ["guidanceScale", guidanceScale],
    ["rngSeed", body.rng_seed === undefined ? undefined : (body.rng_seed as number) + 0], // -0 → 0
    ["strength", body.strength],
    ["maxSequenceLength", body.max_sequence_length],
    ["trueCfgScale", num("true_cfg_scale")],
    ["loraAlphas", loraAlphas === undefined ? undefined : { ...loraAlphas }],
    ["outputCompression", outputCompression],
    ["user", body.user],
    ["style", body.style],
    ["inputFidelity", body.input_fidelity],
  ];
  for (const [key, value] of optional) {
    if (value !== undefined) (out as Record<string, unknown>)[key] = value;
  }
  return out;
}

/**
 * The backend-facing part of a validated request (`rngSeed` as given: the
 * caller fills it in first when undefined). Images are attached by the caller.
 */
export function toGenerationRequest(req: ImageRequest, mode: GenerationMode, rngSeed = req.rngSeed): GenerationRequest {
  return {
    mode,
    prompt: req.prompt,
    prompt2: req.prompt2,
    prompt3: req.prompt3,
    negativePrompt: req.negativePrompt,
    negativePrompt2: req.negativePrompt2,
    negativePrompt3: req.negativePrompt3,
    width: req.width,
    height: req.height,
    numImagesPerPrompt: req.n,
    numInferenceSteps: req.steps,
    guidanceScale: req.guidanceScale ?? undefined,
    rngSeed,
    strength: req.strength,
    maxSequenceLength: req.maxSequenceLength,
    trueCfgScale: req.trueCfgScale,
  };
}
