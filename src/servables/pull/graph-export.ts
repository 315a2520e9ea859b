/**
 * Writing the graph.pbtxt of an image-generation servable from pull-mode
 * flags, as `ovms --pull --task image_generation` does: the same flags, the
 * same checks on each value, and a graph for the same calculator and
 * options. The text itself is graphserve's own.
 *
 * Unlike OVMS, which writes whatever the flags say and lets the graph fail
 * when it loads, the text is read back through graphserve's own parser and
 * validation (which run ImageGenCalculator's load-time rules) before it is
 * written: flag combinations the calculator would refuse (`--resolution`
 * with `--max_resolution`, a static batch without one static resolution,
 * NPU without one, …) are refused up front with the calculator's words.
 */

import { CalculatorRegistry } from "../../engine/registry.js";
import { parseGraphText } from "../../graph/load.js";
import { validateGraph } from "../../graph/validate.js";

/** Where a LoRA adapter comes from. */
export type LoraSource =
  | { kind: "hf"; repo: string; file?: string }
  | { kind: "url"; url: string }
  | { kind: "local"; path: string };

/** `--source_loras`, parsed. */
export interface SourceLoras {
  adapters: { alias: string; source: LoraSource; alpha?: number }[];
  composites: { alias: string; components: { adapter: string; alpha: number }[] }[];
}

/** The image-generation options a pulled graph is written with; unset fields are left out of the graph. */
export interface ImageGraphSettings {
  targetDevice?: string;
  /** One `WxH`, or several separated by spaces. */
  resolution?: string;
  maxResolution?: string;
  defaultResolution?: string;
  numImagesPerPrompt?: number;
  guidanceScale?: number;
  maxNumImagesPerPrompt?: number;
  defaultNumInferenceSteps?: number;
  maxNumInferenceSteps?: number;
  numStreams?: number;
  cacheDir?: string;
  loras?: SourceLoras;
}

/** A bad flag value (naming the flag) or a combination the calculator refuses; one line. */
export class GraphExportError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GraphExportError";
  }
}

export interface ImageGraphFlags {
  target_device?: string;
  resolution?: string;
  max_resolution?: string;
  default_resolution?: string;
  num_images_per_prompt?: string;
  guidance_scale?: string;
  max_num_images_per_prompt?: string;
  default_num_inference_steps?: string;
  max_num_inference_steps?: string;
  num_streams?: string;
  cache_dir?: string;
  source_loras?: string;
}

const UINT32_MAX = 4294967295;
const RESOLUTION = /^(\d+)x(\d+)$/;
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const LORA_ALIAS = /^[A-Za-z0-9._-]+$/;
const HF_REPO = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** OVMS's calculator defaults, which the cross-flag checks compare against. */

/** A flag value shown in a message: quoted, JSON-escaped so it stays on one line. */
const shown = (value: string) => JSON.stringify(value);

interface Resolution {
  width: number;
  height: number;
}

function resolutionOf(flag: string, value: string): Resolution {
  const m = RESOLUTION.exec(value);
  const width = m ? Number(m[1]) : 0;
  const height = m ? Number(m[2]) : 0;
  if (!m || !(width > 0) || !(height > 0) || width > UINT32_MAX || height > UINT32_MAX) {
    throw new GraphExportError(`--${flag} must be WxH with both sides greater than 0 (e.g. 1024x1024), got ${shown(value)}`);
  }
  return { width, height };
}

function resolutionListOf(value: string): Resolution[] {
  const words = value.trim() === "" ? [] : value.trim().split(/\s+/);
  if (words.length === 0) throw new GraphExportError(`--resolution must be WxH or a space-separated list of them (e.g. "512x512 768x768"), got ${shown(value)}`);
  const list: Resolution[] = [];
  for (const w of words) {
    if (!RESOLUTION.test(w)) {
      throw new GraphExportError(`--resolution must be WxH or a space-separated list of them (e.g. "512x512 768x768"), got ${shown(value)}`);
    }
    const r = resolutionOf("resolution", w);
    if (list.some((o) => o.width === r.width && o.height === r.height)) {
      throw new GraphExportError(`--resolution lists ${w} twice, got ${shown(value)}`);
    }
    list.push(r);
  }
  return list;
}

function positiveUint32(flag: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n > 0) || n > UINT32_MAX) {
    throw new GraphExportError(`--${flag} must be an integer from 1 to ${UINT32_MAX}, got ${shown(value)}`);
  }
  return n;
}

function finiteFloat(flag: string, value: string): number {
  const n = FLOAT.test(value.trim()) ? Number(value.trim()) : NaN;
  // The field is a proto float: a value beyond its range would be infinite.
  if (!Number.isFinite(n) || !Number.isFinite(Math.fround(n))) {
    throw new GraphExportError(`--${flag} must be a finite number (e.g. 7.5), got ${shown(value)}`);
  }
  return n;
}

function devicesOf(value: string): string[] {
  const devices = value.trim() === "" ? [] : value.trim().split(/\s+/);
  if (devices.length !== 1 && devices.length !== 3) {
    throw new GraphExportError(`--target_device must name one device or three (text encoders, denoiser, VAE; e.g. "NPU NPU GPU"), got ${shown(value)}`);
  }
  return devices;
}

const isNpu = (device: string | undefined) => device !== undefined && device.toUpperCase().includes("NPU");

/** Parses and checks the pull-mode flags of an image-generation graph; throws GraphExportError naming the flag. */
export function imageGraphSettingsFromFlags(flags: ImageGraphFlags): ImageGraphSettings {
  const s: ImageGraphSettings = {};
  if (flags.target_device !== undefined) {
    devicesOf(flags.target_device);
    s.targetDevice = flags.target_device.trim();
  }
  if (flags.resolution !== undefined) s.resolution = resolutionListOf(flags.resolution).map(showResolution).join(" ");
  if (flags.max_resolution !== undefined) s.maxResolution = showResolution(resolutionOf("max_resolution", flags.max_resolution));
  if (flags.default_resolution !== undefined) s.defaultResolution = showResolution(resolutionOf("default_resolution", flags.default_resolution));
  if (flags.num_images_per_prompt !== undefined) s.numImagesPerPrompt = positiveUint32("num_images_per_prompt", flags.num_images_per_prompt);
  if (flags.guidance_scale !== undefined) s.guidanceScale = finiteFloat("guidance_scale", flags.guidance_scale);
  if (flags.max_num_images_per_prompt !== undefined) s.maxNumImagesPerPrompt = positiveUint32("max_num_images_per_prompt", flags.max_num_images_per_prompt);
  if (flags.default_num_inference_steps !== undefined) s.defaultNumInferenceSteps = positiveUint32("default_num_inference_steps", flags.default_num_inference_steps);
  if (flags.max_num_inference_steps !== undefined) s.maxNumInferenceSteps = positiveUint32("max_num_inference_steps", flags.max_num_inference_steps);
  if (flags.num_streams !== undefined) s.numStreams = positiveUint32("num_streams", flags.num_streams);
  if (flags.cache_dir !== undefined) {
    if (flags.cache_dir.trim() === "") throw new GraphExportError(`--cache_dir must be a folder path, got ${shown(flags.cache_dir)}`);
    s.cacheDir = flags.cache_dir;
  }
  if (flags.source_loras !== undefined) s.loras = parseSourceLoras(flags.source_loras);
  checkSettings(s);
  return s;
}

const showResolution = (r: Resolution) => `${r.width}x${r.height}`;

// ---------------------------------------------------------------------------
// --source_loras

/** The `:<alpha>` at the end of a source, if any: a number, or a mistake when the colon can only mean alpha. */
function splitAlpha(entry: string, alias: string, spec: string): { source: string; alpha?: number } {
  const colon = spec.lastIndexOf(":");
  if (colon < 0) return { source: spec };
  // Colons that belong to the source: a URL's scheme and authority (port), a drive letter.
  const url = /^https?:\/\/[^/]*/i.exec(spec);
  if (url && colon < url[0].length) return { source: spec };
  if (/^[A-Za-z]:[\\/]/.test(spec) && colon === 1) return { source: spec };
  const text = spec.slice(colon + 1);
  const alpha = FLOAT.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(alpha)) {
    throw new GraphExportError(`--source_loras adapter "${alias}" has alpha ${shown(text)}, which is not a number (in ${shown(entry)})`);
  }
  return { source: spec.slice(0, colon), alpha };
}

function sourceOf(entry: string, alias: string, text: string): LoraSource {
  if (text === "") throw new GraphExportError(`--source_loras adapter "${alias}" has no source (in ${shown(entry)})`);
  if (/^https?:\/\//i.test(text)) {
    let ok = false;
    try {
      ok = new URL(text).host !== "";
    } catch {
      ok = false;
    }
    if (!ok) throw new GraphExportError(`--source_loras adapter "${alias}" has an invalid URL ${shown(text)}`);
    return { kind: "url", url: text };
  }
  if (text.startsWith("/") || text.startsWith("./") || text.startsWith(".\\") || /^[A-Za-z]:\\/.test(text)) {
    return { kind: "local", path: text };
  }
  const at = text.indexOf("@");
  const repo = at < 0 ? text : text.slice(0, at);
  const file = at < 0 ? undefined : text.slice(at + 1);
  if (!HF_REPO.test(repo) || (file !== undefined && !/^[^/\\@].*\.safetensors$/.test(file))) {
    throw new GraphExportError(
      `--source_loras adapter "${alias}" has source ${shown(text)}: expected a Hugging Face repo (org/name or org/name@file.safetensors), an http(s) URL, or a local path starting with /, ./, .\\ or X:\\`,
    );
  }
  return file === undefined ? { kind: "hf", repo } : { kind: "hf", repo, file };
}

/**
 * Parses `--source_loras`: comma-separated `alias=source[:alpha]` adapters
 * and `alias=@a[:alpha]+@b[:alpha]` composites (component alpha defaults to
 * 1). Only a trailing `:<number>` is an alpha, so URLs with ports and Windows
 * drive letters are kept whole; a local path whose name contains ":" needs
 * an explicit alpha (`/x:y.safetensors:1`). Throws GraphExportError.
 */
export function parseSourceLoras(text: string): SourceLoras {
  const result: SourceLoras = { adapters: [], composites: [] };
  if (text.trim() === "") throw new GraphExportError(`--source_loras must list at least one alias=source entry, got ${shown(text)}`);
  const taken = new Set<string>();
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    const eq = entry.indexOf("=");
    if (entry === "") throw new GraphExportError(`--source_loras has an empty entry (check the commas), got ${shown(text)}`);
    if (eq < 0) throw new GraphExportError(`--source_loras entry ${shown(entry)} must be alias=source`);
    const alias = entry.slice(0, eq).trim();
    const spec = entry.slice(eq + 1).trim();
    if (alias === "") throw new GraphExportError(`--source_loras entry ${shown(entry)} has an empty alias`);
    if (!LORA_ALIAS.test(alias)) {
      throw new GraphExportError(`--source_loras alias ${shown(alias)} may only contain letters, digits, ".", "_" and "-"`);
    }
    if (taken.has(alias)) throw new GraphExportError(`--source_loras alias "${alias}" is defined twice`);
    taken.add(alias);
    if (spec.startsWith("@")) {
      const components: { adapter: string; alpha: number }[] = [];
      for (const part of spec.split("+")) {
        const p = part.trim();
        const m = /^@([^:]*)(?::(.*))?$/.exec(p);
        if (!m || m[1] === "") throw new GraphExportError(`--source_loras composite "${alias}" has component ${shown(p)}: expected @adapter or @adapter:alpha`);
        const alpha = m[2] === undefined ? 1 : FLOAT.test(m[2].trim()) ? Number(m[2].trim()) : NaN;
        if (!Number.isFinite(alpha)) {
          throw new GraphExportError(`--source_loras composite "${alias}" gives adapter "${m[1]}" alpha ${shown(m[2] ?? "")}, which is not a number`);
        }
        if (components.some((c) => c.adapter === m[1])) throw new GraphExportError(`--source_loras composite "${alias}" names adapter "${m[1]}" twice`);
        components.push({ adapter: m[1], alpha });
      }
      result.composites.push({ alias, components });
    } else {
      const { source, alpha } = splitAlpha(entry, alias, spec);
      const adapter: SourceLoras["adapters"][number] = { alias, source: sourceOf(entry, alias, source) };
      if (alpha !== undefined) adapter.alpha = alpha;
      result.adapters.push(adapter);
    }
  }
  checkLoras(result);
  return result;
}

/** The rules on a parsed (or hand-built) SourceLoras. */
function checkLoras(loras: SourceLoras): void {
  const aliases = new Set<string>();
  for (const { alias } of [...loras.adapters, ...loras.composites]) {
    if (!LORA_ALIAS.test(alias)) throw new GraphExportError(`--source_loras alias ${shown(alias)} may only contain letters, digits, ".", "_" and "-"`);
    if (aliases.has(alias)) throw new GraphExportError(`--source_loras alias "${alias}" is defined twice`);
    aliases.add(alias);
  }
  for (const a of loras.adapters) {
    if (a.alpha !== undefined && !Number.isFinite(a.alpha)) throw new GraphExportError(`--source_loras adapter "${a.alias}" has alpha ${a.alpha}, which is not a finite number`);
  }
  const adapters = new Set(loras.adapters.map((a) => a.alias));
  for (const c of loras.composites) {
    if (c.components.length === 0) throw new GraphExportError(`--source_loras composite "${c.alias}" has no components`);
    for (const part of c.components) {
      if (!adapters.has(part.adapter)) {
        throw new GraphExportError(`--source_loras composite "${c.alias}" names "${part.adapter}", which is not an adapter defined in --source_loras`);
      }
      if (!Number.isFinite(part.alpha)) throw new GraphExportError(`--source_loras composite "${c.alias}" gives "${part.adapter}" alpha ${part.alpha}, which is not a finite number`);
    }
  }
}

// ---------------------------------------------------------------------------
// Settings as a whole

/** Each field's format (combinations are the calculator's to judge: see checkExportedGraph). */
function checkSettings(s: ImageGraphSettings): void {
  if (s.targetDevice !== undefined) devicesOf(s.targetDevice);
  if (s.resolution !== undefined) resolutionListOf(s.resolution);
  if (s.maxResolution !== undefined) resolutionOf("max_resolution", s.maxResolution);
  if (s.defaultResolution !== undefined) resolutionOf("default_resolution", s.defaultResolution);
  const int = (flag: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isInteger(v) && v > 0 && v <= UINT32_MAX)) {
      throw new GraphExportError(`--${flag} must be an integer from 1 to ${UINT32_MAX}, got "${v}"`);
    }
  };
  int("num_images_per_prompt", s.numImagesPerPrompt);
  int("max_num_images_per_prompt", s.maxNumImagesPerPrompt);
  int("default_num_inference_steps", s.defaultNumInferenceSteps);
  int("max_num_inference_steps", s.maxNumInferenceSteps);
  int("num_streams", s.numStreams);
  if (s.guidanceScale !== undefined && !(Number.isFinite(s.guidanceScale) && Number.isFinite(Math.fround(s.guidanceScale)))) {
    throw new GraphExportError(`--guidance_scale must be a finite number (e.g. 7.5), got "${s.guidanceScale}"`);
  }
  if (s.cacheDir !== undefined && s.cacheDir.trim() === "") throw new GraphExportError(`--cache_dir must be a folder path, got ${shown(s.cacheDir)}`);
  if (s.loras) checkLoras(s.loras);
}

// ---------------------------------------------------------------------------
// The graph text

/** A protobuf text-format string literal: double-quoted, with quotes, backslashes and control characters escaped. */
function quote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += "\\" + c.toString(8).padStart(3, "0");
    else out += ch;
  }
  return out + '"';
}

/** A number as text format reads it back (JS shortest round-trip form; exponents are accepted). */
const num = (n: number) => String(n);

/**
 * The graph.pbtxt text of an image-generation servable. `loraPaths` maps each
 * adapter alias to its downloaded file, relative to the graph's folder (or
 * absolute), written as given. Checks the settings first (see
 * imageGraphSettingsFromFlags) and throws GraphExportError rather than write a
 * graph the calculator would refuse to load.
 */
export function imageGenerationGraph(settings: ImageGraphSettings, loraPaths?: Record<string, string>): string {
  checkSettings(settings);
  const o: string[] = [];
  const field = (name: string, value: string) => o.push(`      ${name}: ${value}`);
  field("models_path", quote("./"));
  if (settings.targetDevice !== undefined) field("device", quote(settings.targetDevice));
  const plugin: Record<string, string> = {};
  if (settings.numStreams !== undefined) plugin.NUM_STREAMS = String(settings.numStreams);
  if (settings.cacheDir !== undefined) plugin.CACHE_DIR = settings.cacheDir;
  if (Object.keys(plugin).length > 0) field("plugin_config", quote(JSON.stringify(plugin)));
  if (settings.resolution !== undefined) field("resolution", quote(settings.resolution.trim().split(/\s+/).join(" ")));
  if (settings.numImagesPerPrompt !== undefined) field("num_images_per_prompt", num(settings.numImagesPerPrompt));
  if (settings.guidanceScale !== undefined) field("guidance_scale", num(settings.guidanceScale));
  if (settings.maxResolution !== undefined) field("max_resolution", quote(settings.maxResolution));
  if (settings.defaultResolution !== undefined) field("default_resolution", quote(settings.defaultResolution));
  if (settings.maxNumImagesPerPrompt !== undefined) field("max_num_images_per_prompt", num(settings.maxNumImagesPerPrompt));
  if (settings.defaultNumInferenceSteps !== undefined) field("default_num_inference_steps", num(settings.defaultNumInferenceSteps));
  if (settings.maxNumInferenceSteps !== undefined) field("max_num_inference_steps", num(settings.maxNumInferenceSteps));

  const mode = isNpu(settings.targetDevice) ? "STATIC" : "DYNAMIC";
  for (const a of settings.loras?.adapters ?? []) {
    const path = loraPaths && Object.hasOwn(loraPaths, a.alias) ? loraPaths[a.alias] : undefined;
    if (!path) throw new GraphExportError(`--source_loras adapter "${a.alias}" has no downloaded file to point the graph at`);
    o.push("      lora_adapters {");
    field("  alias", quote(a.alias));
    field("  path", quote(path));
    if (a.alpha !== undefined) field("  alpha", num(a.alpha));
    field("  mode", mode);
    o.push("      }");
  }
  for (const c of settings.loras?.composites ?? []) {
    o.push("      composite_lora_adapters {");
    field("  alias", quote(c.alias));
    for (const part of c.components) o.push(`        components { adapter_alias: ${quote(part.adapter)} alpha: ${num(part.alpha)} }`);
    o.push("      }");
  }

  return [
    "# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO",
    "# Image-generation servable written by graphserve (pull mode); models_path is this folder.",
    'input_stream: "HTTP_REQUEST_PAYLOAD:input"',
    'output_stream: "HTTP_RESPONSE_PAYLOAD:output"',
    "",
    "node {",
    '  name: "ImageGenExecutor"',
    '  calculator: "ImageGenCalculator"',
    '  input_stream: "HTTP_REQUEST_PAYLOAD:input"',
    '  input_side_packet: "IMAGE_GEN_NODE_RESOURCES:pipes"',
    '  output_stream: "HTTP_RESPONSE_PAYLOAD:output"',
    "  node_options {",
    "    [type.googleapis.com/mediapipe.ImageGenCalculatorOptions] {",
    ...o,
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");
}

/**
 * Reads `text` back as a servable would load it (our parser, MediaPipe's
 * validation, ImageGenCalculator's load-time rules); GraphExportError with
 * the reason otherwise.
 */
export async function checkExportedGraph(text: string): Promise<void> {
  const registry = await CalculatorRegistry.withBuiltins();
  try {
    validateGraph(parseGraphText(text, "graph.pbtxt", registry.schema), registry);
  } catch (e) {
    // The last line says why; the file:line:col before it points into text the user never wrote.
    const why = ((e as Error).message.split("\n").filter((l) => l.trim() !== "").pop() ?? String(e)).trim().replace(/^\S+:\d+:\d+: /, "");
    throw new GraphExportError(`these flags describe a graph that would not load: ${why}`, { cause: e });
  }
}
