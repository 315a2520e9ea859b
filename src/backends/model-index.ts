/**
 * The one reader of a diffusers pipeline folder's description: model_index.json,
 * the scheduler config and each component's config.json, and the one place that
 * decides the model family and which runtime formats the components hold. Both
 * backends (onnx/model-folder.ts, openvino/openvino-backend.ts) and `--pull`
 * (through formats.ts) use it, so a family is recognised the same way everywhere.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseConfigJson } from "./onnx/config-json.js";
import { backendDescriptors, type BackendKind } from "./catalog.js";
import { BackendError } from "./types.js";

export type Json = Record<string, unknown>;

/** The diffusion model families graphserve tells apart (diffusers' pipeline families). */
export type ModelFamily = "sd" | "sdxl" | "lcm" | "sd3" | "flux";

/** A component folder's format: the kind of backend that loads it. */
export type ComponentFormat = BackendKind;

/** The model file each format keeps in a component folder (the registered backends'). */
function formatFiles(): [ComponentFormat, string][] {
  return backendDescriptors().map((d) => [d.kind, d.modelFile]);
}

/**
 * The formats of a folder's components, from its file paths (relative to the folder,
 * e.g. a Hub listing or a directory scan): a model file one level down.
 */
export function componentFormats(paths: Iterable<string>): ComponentFormat[] {
  const kinds = new Set<ComponentFormat>();
  for (const path of paths) {
    for (const [kind, file] of formatFiles()) {
      const slash = path.indexOf("/");
      if (slash > 0 && path.indexOf("/", slash + 1) < 0 && path.slice(slash + 1) === file) kinds.add(kind);
    }
  }
  return [...kinds];
}

/**
 * The family a pipeline class names (model_index.json `_class_name`: diffusers',
 * Optimum's ORT* or the legacy Onnx* classes). A class that names none is SDXL when
 * the folder has a second text encoder (older exports), otherwise undefined.
 */
export function detectFamily(pipelineClass: string, hasTextEncoder2: boolean): ModelFamily | undefined {
  if (/Flux/i.test(pipelineClass)) return "flux";
  if (/StableDiffusion3/i.test(pipelineClass)) return "sd3";
  if (/XL/.test(pipelineClass) || hasTextEncoder2) return "sdxl";
  if (/^LatentConsistencyModel/.test(pipelineClass)) return "lcm";
  if (/StableDiffusion/.test(pipelineClass)) return "sd";
  return undefined;
}

export async function readJsonFile(path: string, optional: true): Promise<Json | undefined>;
export async function readJsonFile(path: string, optional?: false): Promise<Json>;
/** A JSON object file as diffusers writes it (NaN/Infinity allowed); a BackendError names the file and the problem. */
export async function readJsonFile(path: string, optional = false): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (optional && code === "ENOENT") return undefined;
    throw new BackendError(`${path}: ${code === "ENOENT" ? "missing" : `cannot read (${code ?? (e as Error).message})`}`);
  }
  let value: unknown;
  try {
    value = parseConfigJson(text);
  } catch (e) {
    throw new BackendError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new BackendError(`${path}: expected a JSON object`);
  return value as Json;
}

/** A finite number field of a config, `fallback` when absent; otherwise a BackendError naming the file. */
export function numberField(cfg: Json, key: string, path: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new BackendError(`${path}: missing "${key}"`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new BackendError(`${path}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** model_index.json, read once, with the family decided. */
export interface ModelIndex {
  readonly dir: string;
  /** Path of model_index.json (for messages). */
  readonly path: string;
  readonly json: Json;
  /** `_class_name`, "" when absent. */
  readonly pipelineClass: string;
  readonly family: ModelFamily | undefined;
  /** model_index.json lists this component with a class (not `[null, null]`). */
  has(component: string): boolean;
}

/** Whether `dir`/`component` holds a model file of either format. */
export function hasComponentModel(dir: string, component: string): boolean {
  return formatFiles().some(([, file]) => existsSync(join(dir, component, file)));
}

/** Reads `dir`/model_index.json and decides the family (older exports list no text_encoder_2 yet ship one: the folder counts too). */
export async function readModelIndex(dir: string): Promise<ModelIndex> {
  const path = join(dir, "model_index.json");
  const json = await readJsonFile(path);
  const pipelineClass = typeof json._class_name === "string" ? json._class_name : "";
  const has = (component: string): boolean => {
    const entry = json[component];
    return Array.isArray(entry) && entry[0] !== null;
  };
  const family = detectFamily(pipelineClass, has("text_encoder_2") || hasComponentModel(dir, "text_encoder_2"));
  return { dir, path, json, pipelineClass, family, has };
}

/** scheduler/scheduler_config.json (required) and its path. */
export async function readSchedulerConfig(dir: string): Promise<{ path: string; config: Json }> {
  const path = join(dir, "scheduler", "scheduler_config.json");
  return { path, config: await readJsonFile(path) };
}

/** `<component>/config.json`, or undefined when absent. */
export async function readComponentConfig(dir: string, component: string): Promise<{ path: string; config: Json | undefined }> {
  const path = join(dir, component, "config.json");
  return { path, config: await readJsonFile(path, true) };
}

/**
 * The VAE's config: vae_decoder/config.json (Optimum's layouts), else vae/config.json;
 * `path` names the Optimum location when neither exists.
 */
export async function readVaeConfig(dir: string): Promise<{ path: string; config: Json | undefined }> {
  const decoder = await readComponentConfig(dir, "vae_decoder");
  if (decoder.config) return decoder;
  const vae = await readComponentConfig(dir, "vae");
  return vae.config ? vae : decoder;
}

/** The VAE's downscale factor: 2^(number of blocks − 1), 8 for the usual 4 blocks. */
export function vaeScaleFactorOf(vaeConfig: Json | undefined): number {
  const blocks = Array.isArray(vaeConfig?.block_out_channels) ? vaeConfig.block_out_channels.length : 4;
  return 2 ** Math.max(0, blocks - 1);
}
