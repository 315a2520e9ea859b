/**
 * Load-time rules for `mediapipe.ImageGenCalculatorOptions`, as OVMS applies
 * them when a graph loads, plus the ones OVMS documents but never enforces.
 * Kept apart from the calculator so `graph check` can report them.
 */

import { NOISE_KINDS, type NoiseKind, isNoiseKind } from "../../src/backends/noise/index.js";

export type LoraLoadMode = "DYNAMIC" | "STATIC" | "FUSE";

export interface LoraAdapterEntry {
  alias: string;
  path: string;
  alpha: number;
  mode: LoraLoadMode | number;
}

export interface CompositeLoraAdapterEntry {
  alias: string;
  components: { adapter_alias: string; alpha: number }[];
}

/** The options message as the engine hands it over (defaults filled in). */
export interface ImageGenCalculatorOptions {
  models_path: string;
  device: string;
  plugin_config: string;
  max_resolution: string;
  default_resolution: string;
  max_num_images_per_prompt: number;
  default_num_inference_steps: number;
  max_num_inference_steps: number;
  resolution: string;
  num_images_per_prompt: number;
  guidance_scale: number;
  lora_adapters: LoraAdapterEntry[];
  composite_lora_adapters: CompositeLoraAdapterEntry[];
  /** graphserve's: requests that may wait for a slot beyond those running. */
  max_queue_size: number;
  /** graphserve's: how rng_seed becomes noise (a NoiseKind). */
  noise_generator: string;
}

export interface Resolution {
  width: number;
  height: number;
}

/** The options once checked: parsed resolutions, devices and plugin config. */
export interface ImageGenSettings {
  modelsPath: string;
  /** One device, or three: text encoders, denoiser, VAE. Empty means "let the backend choose". */
  devices: string[];
  pluginConfig: Record<string, unknown>;
  maxResolution: Resolution;
  defaultResolution: Resolution | undefined;
  /** Allowed request sizes; one entry means a static (reshaped) pipeline. */
  staticResolutions: Resolution[];
  maxImagesPerPrompt: number;
  defaultSteps: number;
  maxSteps: number;
  staticImagesPerPrompt: number | undefined;
  staticGuidanceScale: number | undefined;
  loraAdapters: LoraAdapterEntry[];
  compositeLoraAdapters: CompositeLoraAdapterEntry[];
  maxQueueSize: number;
  noiseGenerator: NoiseKind;
}

const RESOLUTION = /^(\d+)x(\d+)$/;
const LORA_ALIAS = /^[A-Za-z0-9._-]+$/;

export function parseResolution(text: string, field: string): Resolution {
  const m = RESOLUTION.exec(text.trim());
  const width = m ? Number(m[1]) : 0;
  const height = m ? Number(m[2]) : 0;
  if (!m || width === 0 || height === 0) {
    throw new Error(`${field}: "${text}" is not a resolution of the form WxH (for example 512x512)`);
  }
  return { width, height };
}

const fits = (r: Resolution, max: Resolution) => r.width <= max.width && r.height <= max.height;
const same = (a: Resolution, b: Resolution) => a.width === b.width && a.height === b.height;
const show = (r: Resolution) => `${r.width}x${r.height}`;

/** Applies the rules; throws an Error whose message says which option is wrong and why. */
export function checkImageGenOptions(o: ImageGenCalculatorOptions): ImageGenSettings {
  const has = (field: keyof ImageGenCalculatorOptions) => Object.hasOwn(o, field);

  if (!o.models_path) throw new Error("models_path is required");

  const devices = o.device.trim() === "" ? [] : o.device.trim().split(/\s+/);
  if (devices.length !== 0 && devices.length !== 1 && devices.length !== 3) {
    throw new Error(`device: "${o.device}" must name one device or three (text encoders, denoiser, VAE)`);
  }

  let pluginConfig: unknown;
  try {
    pluginConfig = JSON.parse(o.plugin_config || "{}");
  } catch (e) {
    throw new Error(`plugin_config is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof pluginConfig !== "object" || pluginConfig === null || Array.isArray(pluginConfig)) {
    throw new Error("plugin_config must be a JSON object");
  }

  const staticResolutions = o.resolution.trim() === ""
    ? []
    : o.resolution.trim().split(/\s+/).map((r) => parseResolution(r, "resolution"));
  for (let i = 0; i < staticResolutions.length; i++) {
    if (staticResolutions.findIndex((r) => same(r, staticResolutions[i])) !== i) {
      throw new Error(`resolution: ${show(staticResolutions[i])} is listed twice`);
    }
  }
  const isStatic = staticResolutions.length === 1;

  if (has("max_resolution") && staticResolutions.length > 0) {
    throw new Error("max_resolution cannot be set together with resolution: the listed resolutions are the limit");
  }
  const maxResolution = parseResolution(o.max_resolution, "max_resolution");

  let defaultResolution = has("default_resolution") && o.default_resolution !== ""
    ? parseResolution(o.default_resolution, "default_resolution")
    : undefined;
  if (defaultResolution && !fits(defaultResolution, maxResolution)) {
    throw new Error(`default_resolution ${show(defaultResolution)} exceeds max_resolution ${show(maxResolution)}`);
  }
  if (defaultResolution && staticResolutions.length > 0 && !staticResolutions.some((r) => same(r, defaultResolution!))) {
    throw new Error(`default_resolution ${show(defaultResolution)} is not one of the resolutions listed in resolution`);
  }
  defaultResolution ??= staticResolutions[0];

  if (has("max_num_images_per_prompt") && isStatic) {
    throw new Error("max_num_images_per_prompt cannot be set with a single static resolution; use num_images_per_prompt");
  }
  if (has("num_images_per_prompt") && !isStatic) {
    throw new Error("num_images_per_prompt is only allowed with exactly one resolution (a static pipeline)");
  }
  if (has("guidance_scale") && !isStatic) {
    throw new Error("guidance_scale is only allowed with exactly one resolution (a static pipeline)");
  }
  for (const field of ["max_num_images_per_prompt", "default_num_inference_steps", "max_num_inference_steps"] as const) {
    if (!(o[field] > 0)) throw new Error(`${field} must be greater than 0`);
  }
  // An explicit default above the maximum is a mistake; the built-in default
  // (50) under a lower explicit maximum is not, so it is lowered to fit.
  if (has("default_num_inference_steps") && o.default_num_inference_steps > o.max_num_inference_steps) {
    throw new Error(`default_num_inference_steps ${o.default_num_inference_steps} exceeds max_num_inference_steps ${o.max_num_inference_steps}`);
  }
  if (has("num_images_per_prompt") && !(o.num_images_per_prompt > 0)) {
    throw new Error("num_images_per_prompt must be greater than 0");
  }

  const npu = devices.some((d) => d.toUpperCase().startsWith("NPU"));
  if (npu && staticResolutions.length !== 1) {
    throw new Error("an NPU device needs exactly one static resolution (set resolution to a single WxH)");
  }

  checkLora(o, npu);
  if (!isNoiseKind(o.noise_generator)) throw new Error(`noise_generator: "${o.noise_generator}" is not one of ${NOISE_KINDS.join(", ")}`);

  return {
    modelsPath: o.models_path,
    devices,
    pluginConfig: pluginConfig as Record<string, unknown>,
    maxResolution,
    defaultResolution,
    staticResolutions,
    maxImagesPerPrompt: isStatic && has("num_images_per_prompt") ? o.num_images_per_prompt : o.max_num_images_per_prompt,
    defaultSteps: Math.min(o.default_num_inference_steps, o.max_num_inference_steps),
    maxSteps: o.max_num_inference_steps,
    staticImagesPerPrompt: has("num_images_per_prompt") ? o.num_images_per_prompt : undefined,
    staticGuidanceScale: has("guidance_scale") ? o.guidance_scale : undefined,
    loraAdapters: o.lora_adapters,
    compositeLoraAdapters: o.composite_lora_adapters,
    maxQueueSize: o.max_queue_size,
    noiseGenerator: o.noise_generator,
  };
}

function checkLora(o: ImageGenCalculatorOptions, npu: boolean): void {
  const aliases = new Set<string>();
  const claim = (alias: string, what: string) => {
    if (!LORA_ALIAS.test(alias)) throw new Error(`${what} alias "${alias}" may only contain letters, digits, ".", "_" and "-"`);
    if (aliases.has(alias)) throw new Error(`${what} alias "${alias}" is used twice`);
    aliases.add(alias);
  };
  for (const a of o.lora_adapters) {
    claim(a.alias, "lora_adapters");
    if (!a.path) throw new Error(`lora_adapters "${a.alias}" has no path`);
  }
  const adapters = new Set(o.lora_adapters.map((a) => a.alias));
  for (const c of o.composite_lora_adapters) {
    claim(c.alias, "composite_lora_adapters");
    if (c.components.length === 0) throw new Error(`composite_lora_adapters "${c.alias}" has no components`);
    for (const part of c.components) {
      if (!adapters.has(part.adapter_alias)) {
        throw new Error(`composite_lora_adapters "${c.alias}" names adapter "${part.adapter_alias}", which lora_adapters does not define`);
      }
    }
  }
  if (npu && o.lora_adapters.length > 0) {
    if (o.composite_lora_adapters.length > 1) throw new Error("with an NPU device only one composite_lora_adapters entry is allowed");
    if (o.lora_adapters.length > 1 && o.composite_lora_adapters.length === 0) {
      throw new Error("with an NPU device more than one LoRA adapter must be combined in a composite_lora_adapters entry");
    }
    const used = new Set(o.composite_lora_adapters.flatMap((c) => c.components.map((p) => p.adapter_alias)));
    const loose = o.lora_adapters.find((a) => o.composite_lora_adapters.length > 0 && !used.has(a.alias));
    if (loose) throw new Error(`with an NPU device every LoRA adapter must belong to the composite; "${loose.alias}" does not`);
  }
}
