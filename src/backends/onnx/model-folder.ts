/**
 * Reading and validating an Optimum-layout ONNX diffusion folder (diffusers
 * repo style): model_index.json, scheduler/scheduler_config.json, each
 * component's config.json and model.onnx, tokenizer folders.
 *
 * `readModelFolder` reads only the JSON files (cheap, main thread);
 * `loadModelSessions` creates the ORT sessions and checks them against the
 * configs (runs once per worker). Every error is a BackendError naming the
 * file at fault and the problem.
 */
import { access, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import { BackendError } from "../types.js";
import { parseConfigJson } from "./config-json.js";
import { upcastFloat16Model } from "./upcast-fp16.js";
import { createScheduler } from "./schedulers/index.js";

export type OnnxFamily = "sd" | "sdxl";

export interface ModelFolderInfo {
  readonly dir: string;
  readonly family: OnnxFamily;
  /** The UNet has 9 input channels (latents ‖ mask ‖ masked-image latents). */
  readonly inpainting: boolean;
  /** model_index.json `_class_name`. */
  readonly pipelineClass: string;
  /** Parsed scheduler/scheduler_config.json. */
  readonly schedulerConfig: Record<string, unknown>;
  readonly latentChannels: number;
  readonly unetInChannels: number;
  /** unet/config.json cross_attention_dim; undefined in the legacy layout (then taken from the UNet graph). */
  readonly crossAttentionDim?: number;
  /** Latent sample size (unet sample_size); native image size = sampleSize · vaeScaleFactor. */
  readonly sampleSize: number;
  readonly vaeScaleFactor: number;
  readonly vaeScalingFactor: number;
  readonly vaeShiftFactor: number;
  /** SDXL: `text_embeds` width (text_encoder_2 projection_dim). */
  readonly textEmbedsDim?: number;
  /** LCM-style `timestep_cond` width, when the UNet has one. */
  readonly timeCondProjDim?: number;
  readonly hasVaeEncoder: boolean;
  /** The legacy diffusers ONNX layout: no per-component config.json. */
  readonly legacyLayout: boolean;
  /** model_index.json `force_zeros_for_empty_prompt` (SDXL pipelines default it to true). */
  readonly forceZerosForEmptyPrompt: boolean;
  /** model_index.json `requires_aesthetics_score` (SDXL refiner-style time ids: size, crop, aesthetic score). */
  readonly requiresAestheticsScore: boolean;
  /** Component → model.onnx path. */
  readonly paths: {
    readonly textEncoder: string;
    readonly textEncoder2?: string;
    readonly unet: string;
    readonly vaeDecoder: string;
    readonly vaeEncoder?: string;
  };
  readonly tokenizerDirs: readonly string[];
}

type Json = Record<string, unknown>;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function readJson(path: string, optional: true): Promise<Json | undefined>;
async function readJson(path: string, optional?: false): Promise<Json>;
async function readJson(path: string, optional = false): Promise<Json | undefined> {
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

function num(cfg: Json, key: string, path: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new BackendError(`${path}: missing "${key}"`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new BackendError(`${path}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads and cross-checks the folder's JSON files and that every model.onnx exists. */
export async function readModelFolder(dir: string): Promise<ModelFolderInfo> {
  const indexPath = join(dir, "model_index.json");
  const index = await readJson(indexPath);
  const pipelineClass = typeof index._class_name === "string" ? index._class_name : "";
  if (/StableDiffusion3|Flux/i.test(pipelineClass)) {
    throw new BackendError(`${indexPath}: ${pipelineClass} is not supported by the ONNX Runtime backend (SD and SDXL only)`);
  }
  if (index.transformer !== undefined && (index.unet === undefined || (Array.isArray(index.unet) && index.unet[0] === null))) {
    throw new BackendError(`${indexPath}: transformer-based pipelines are not supported (no unet)`);
  }
  const hasTe2Entry = Array.isArray(index.text_encoder_2) && index.text_encoder_2[0] !== null;
  const te2Path = join(dir, "text_encoder_2", "model.onnx");
  const xl = /XL/.test(pipelineClass) || hasTe2Entry || (await exists(te2Path));

  const schedPath = join(dir, "scheduler", "scheduler_config.json");
  const schedulerConfig = await readJson(schedPath);
  try {
    createScheduler(schedulerConfig);
  } catch (e) {
    throw new BackendError(`${schedPath}: ${(e as Error).message}`, { cause: e });
  }

  // The legacy diffusers ONNX layout (scripts/convert_stable_diffusion_checkpoint_to_onnx.py, the
  // Onnx*Pipeline classes) saves no per-component config.json; those pipelines assume SD 1.x values
  // (4 latent channels, 512×512, VAE factor 8, scaling 0.18215), and widths are checked against the
  // ONNX graphs when the sessions load.
  const unetCfgPath = join(dir, "unet", "config.json");
  const unetCfg = await readJson(unetCfgPath, true);
  const legacy = unetCfg === undefined;
  if (legacy && xl) throw new BackendError(`${unetCfgPath}: missing (SDXL folders need their component configs)`);
  const legacyInpainting = pipelineClass === "OnnxStableDiffusionInpaintPipeline";
  const unetInChannels = unetCfg ? num(unetCfg, "in_channels", unetCfgPath) : legacyInpainting ? 9 : 4;
  const crossAttentionDim = unetCfg ? num(unetCfg, "cross_attention_dim", unetCfgPath) : undefined;
  const sampleSize = unetCfg ? num(unetCfg, "sample_size", unetCfgPath, 64) : 64;
  const timeCondProjDim = typeof unetCfg?.time_cond_proj_dim === "number" ? unetCfg.time_cond_proj_dim : undefined;
  if (xl && unetCfg?.addition_embed_type !== "text_time") {
    throw new BackendError(`${unetCfgPath}: SDXL needs addition_embed_type "text_time", got ${JSON.stringify(unetCfg?.addition_embed_type)}`);
  }

  // The VAE config: vae_decoder/config.json (Optimum), else vae/config.json.
  let vaeCfgPath = join(dir, "vae_decoder", "config.json");
  let vaeCfg = await readJson(vaeCfgPath, true);
  if (!vaeCfg) {
    vaeCfgPath = join(dir, "vae", "config.json");
    vaeCfg = await readJson(vaeCfgPath, true);
  }
  if (!vaeCfg && !legacy) throw new BackendError(`${join(dir, "vae_decoder", "config.json")}: missing`);
  vaeCfg ??= {};
  const latentChannels = num(vaeCfg, "latent_channels", vaeCfgPath, 4);
  const vaeScalingFactor = num(vaeCfg, "scaling_factor", vaeCfgPath, xl ? 0.13025 : 0.18215);
  const vaeShiftFactor = num(vaeCfg, "shift_factor", vaeCfgPath, 0);
  const blocks = Array.isArray(vaeCfg.block_out_channels) ? vaeCfg.block_out_channels.length : 4;
  const vaeScaleFactor = 2 ** (blocks - 1);

  const inpainting = unetInChannels === 2 * latentChannels + 1;
  if (!inpainting && unetInChannels !== latentChannels) {
    throw new BackendError(`${unetCfgPath}: in_channels ${unetInChannels} matches neither the VAE's latent_channels ${latentChannels} nor an inpainting UNet (${2 * latentChannels + 1})`);
  }

  // Text encoder hidden sizes vs the UNet's cross-attention width.
  const te1CfgPath = join(dir, "text_encoder", "config.json");
  const te1Cfg = legacy ? undefined : await readJson(te1CfgPath);
  let textEmbedsDim: number | undefined;
  if (te1Cfg && crossAttentionDim !== undefined) {
    const te1Hidden = num(te1Cfg, "hidden_size", te1CfgPath);
    if (xl) {
      const te2CfgPath = join(dir, "text_encoder_2", "config.json");
      const te2Cfg = await readJson(te2CfgPath);
      const te2Hidden = num(te2Cfg, "hidden_size", te2CfgPath);
      textEmbedsDim = num(te2Cfg, "projection_dim", te2CfgPath);
      if (te1Hidden + te2Hidden !== crossAttentionDim) {
        throw new BackendError(
          `${te1CfgPath} + ${te2CfgPath}: hidden sizes ${te1Hidden} + ${te2Hidden} do not add up to the UNet's cross_attention_dim ${crossAttentionDim} (${unetCfgPath})`,
        );
      }
    } else if (te1Hidden !== crossAttentionDim) {
      throw new BackendError(`${te1CfgPath}: hidden_size ${te1Hidden} does not match the UNet's cross_attention_dim ${crossAttentionDim} (${unetCfgPath})`);
    }
  }

  const paths = {
    textEncoder: join(dir, "text_encoder", "model.onnx"),
    textEncoder2: xl ? te2Path : undefined,
    unet: join(dir, "unet", "model.onnx"),
    vaeDecoder: join(dir, "vae_decoder", "model.onnx"),
    vaeEncoder: join(dir, "vae_encoder", "model.onnx"),
  };
  for (const p of [paths.textEncoder, paths.textEncoder2, paths.unet, paths.vaeDecoder]) {
    if (p !== undefined && !(await exists(p))) throw new BackendError(`${p}: missing`);
  }
  const hasVaeEncoder = await exists(paths.vaeEncoder);
  const tokenizerDirs = [join(dir, "tokenizer"), ...(xl ? [join(dir, "tokenizer_2")] : [])];
  for (const t of tokenizerDirs) {
    if (!(await exists(join(t, "tokenizer.json"))) && !(await exists(join(t, "vocab.json")))) {
      throw new BackendError(`${t}: missing tokenizer files (tokenizer.json or vocab.json + merges.txt)`);
    }
  }
  return {
    dir,
    family: xl ? "sdxl" : "sd",
    inpainting,
    pipelineClass,
    schedulerConfig,
    latentChannels,
    unetInChannels,
    crossAttentionDim,
    sampleSize,
    vaeScaleFactor,
    vaeScalingFactor,
    vaeShiftFactor,
    textEmbedsDim,
    timeCondProjDim,
    hasVaeEncoder,
    legacyLayout: legacy,
    forceZerosForEmptyPrompt: xl && index.force_zeros_for_empty_prompt !== false,
    requiresAestheticsScore: xl && index.requires_aesthetics_score === true,
    paths: { ...paths, vaeEncoder: hasVaeEncoder ? paths.vaeEncoder : undefined },
    tokenizerDirs,
  };
}

export interface ModelSessions {
  readonly textEncoder: ort.InferenceSession;
  readonly textEncoder2?: ort.InferenceSession;
  readonly unet: ort.InferenceSession;
  readonly vaeDecoder: ort.InferenceSession;
  readonly vaeEncoder?: ort.InferenceSession;
  /** The dtype each session wants for its integer inputs (input_ids, timestep). */
  readonly inputIdsDtype: "int32" | "int64";
  readonly inputIds2Dtype: "int32" | "int64";
  /**
   * The UNet `timestep` input as declared: a float scalar in optimum ≥ 1.24 / optimum-onnx exports,
   * int64 `[batch]` in older ones, float `[1]` in the legacy diffusers layout. `length` is the static
   * length of a rank-1 input, "batch" when symbolic, 0 for a scalar.
   */
  readonly timestep: { readonly type: "float32" | "int64"; readonly length: number | "batch" };
  /** vae_encoder output name: `latent_sample` or `latent_parameters` (mean ‖ logvar). */
  readonly vaeEncoderOutput?: "latent_sample" | "latent_parameters";
  /** SDXL: the penultimate hidden-state output names of each encoder. */
  readonly penultimate1?: string;
  readonly penultimate2?: string;
  /** Latent size the UNet was exported for, when its `sample` height and width are static. */
  readonly staticLatentSize?: { readonly height: number; readonly width: number };
  /** Batch size the UNet was exported for, when static. */
  readonly staticBatch?: number;
}

export interface SessionLoadOptions {
  readonly intraOpNumThreads?: number;
  /** Let ORT's intra-op threads spin-wait between runs (default false: they would compete with the event loop and other workers). */
  readonly allowSpinning?: boolean;
}

/** An ORT session for `path`; an fp16 model is loaded from its float32 rewrite (see upcast-fp16.ts). */
async function createSession(path: string, opts: SessionLoadOptions): Promise<ort.InferenceSession> {
  let upcast: string | undefined;
  try {
    upcast = await upcastFloat16Model(path);
  } catch (e) {
    throw new BackendError(`${path}: cannot read the ONNX model (${(e as Error).message})`, { cause: e });
  }
  try {
    return await ort.InferenceSession.create(upcast ?? path, {
      ...(opts.intraOpNumThreads !== undefined ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? "1" : "0" } } },
    });
  } catch (e) {
    throw new BackendError(`${path}: cannot load the ONNX model (${(e as Error).message.split("\n")[0]})`, { cause: e });
  } finally {
    // ORT has read (or mapped) the rewrite by now.
    if (upcast) await rm(dirname(upcast), { recursive: true, force: true });
  }
}

function meta(session: ort.InferenceSession, name: string, kind: "input" | "output"): ort.InferenceSession.TensorValueMetadata | undefined {
  const list = kind === "input" ? session.inputMetadata : session.outputMetadata;
  const m = list.find((x) => x.name === name);
  return m && m.isTensor ? m : undefined;
}

function requireNames(session: ort.InferenceSession, path: string, inputs: string[], outputs: string[]): void {
  for (const n of inputs) {
    if (!session.inputNames.includes(n)) {
      throw new BackendError(`${path}: missing input "${n}" (inputs are ${session.inputNames.map((x) => `"${x}"`).join(", ")})`);
    }
  }
  for (const n of outputs) {
    if (!session.outputNames.includes(n)) {
      throw new BackendError(`${path}: missing output "${n}" (outputs are ${session.outputNames.map((x) => `"${x}"`).join(", ")})`);
    }
  }
}

/** The static size of dimension `axis` of an input/output, or undefined when symbolic/unknown. */
function staticDim(session: ort.InferenceSession, name: string, kind: "input" | "output", axis: number): number | undefined {
  const m = meta(session, name, kind);
  if (!m) return undefined;
  const shape = m.shape as readonly (number | string)[];
  const d = shape[axis < 0 ? shape.length + axis : axis];
  return typeof d === "number" && d > 0 ? d : undefined;
}

function intDtype(session: ort.InferenceSession, name: string, path: string): "int32" | "int64" {
  const t = meta(session, name, "input")?.type;
  if (t === "int32" || t === "int64") return t;
  throw new BackendError(`${path}: input "${name}" must be int32 or int64, got ${t ?? "an unknown type"}`);
}

function penultimate(session: ort.InferenceSession, path: string): string {
  const hs = session.outputNames
    .map((n) => /^hidden_states\.(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  if (hs.length < 2) throw new BackendError(`${path}: SDXL needs the hidden_states.N outputs (export with output_hidden_states); found none`);
  return `hidden_states.${Math.max(...hs) - 1}`;
}

/** Creates every session and checks names, dtypes and static widths against the folder's configs. */
export async function loadModelSessions(info: ModelFolderInfo, opts: SessionLoadOptions = {}): Promise<ModelSessions> {
  const p = info.paths;
  const xl = info.family === "sdxl";
  const textEncoder = await createSession(p.textEncoder, opts);
  requireNames(textEncoder, p.textEncoder, ["input_ids"], ["last_hidden_state"]);
  const inputIdsDtype = intDtype(textEncoder, "input_ids", p.textEncoder);
  const checkWidth = (s: ort.InferenceSession, path: string, name: string, kind: "input" | "output", expected: number, what: string, otherPath: string) => {
    const d = staticDim(s, name, kind, -1);
    if (d !== undefined && d !== expected) throw new BackendError(`${path}: ${kind} "${name}" has width ${d}, but ${what} is ${expected} (${otherPath})`);
    return d;
  };

  let textEncoder2: ort.InferenceSession | undefined;
  let inputIds2Dtype = inputIdsDtype;
  let penultimate1: string | undefined;
  let penultimate2: string | undefined;
  if (xl) {
    textEncoder2 = await createSession(p.textEncoder2!, opts);
    requireNames(textEncoder2, p.textEncoder2!, ["input_ids"], ["text_embeds"]);
    inputIds2Dtype = intDtype(textEncoder2, "input_ids", p.textEncoder2!);
    penultimate1 = penultimate(textEncoder, p.textEncoder);
    penultimate2 = penultimate(textEncoder2, p.textEncoder2!);
  }

  const unet = await createSession(p.unet, opts);
  const unetInputs = ["sample", "timestep", "encoder_hidden_states", ...(xl ? ["text_embeds", "time_ids"] : [])];
  requireNames(unet, p.unet, unetInputs, ["out_sample"]);
  const tsMeta = meta(unet, "timestep", "input");
  const tsType = tsMeta?.type;
  if (tsType !== "float32" && tsType !== "int64") throw new BackendError(`${p.unet}: input "timestep" must be float32 or int64, got ${tsType}`);
  const tsShape = tsMeta!.shape as readonly (number | string)[];
  if (tsShape.length > 1) throw new BackendError(`${p.unet}: input "timestep" must be a scalar or a vector, got shape [${tsShape.join(", ")}]`);
  const tsLength = tsShape.length === 0 ? 0 : staticDim(unet, "timestep", "input", 0) ?? "batch";
  const ehsWidth = staticDim(unet, "encoder_hidden_states", "input", -1);
  if (ehsWidth !== undefined && info.crossAttentionDim !== undefined && ehsWidth !== info.crossAttentionDim) {
    throw new BackendError(`${p.unet}: input "encoder_hidden_states" has width ${ehsWidth}, but unet/config.json cross_attention_dim is ${info.crossAttentionDim}`);
  }
  const sh = staticDim(unet, "sample", "input", 2);
  const sw = staticDim(unet, "sample", "input", 3);
  const ch = staticDim(unet, "sample", "input", 1);
  if (ch !== undefined && ch !== info.unetInChannels) {
    throw new BackendError(`${p.unet}: input "sample" has ${ch} channels, but unet/config.json in_channels is ${info.unetInChannels}`);
  }
  // Text encoder output widths vs the UNet.
  if (xl) {
    const w1 = staticDim(textEncoder, penultimate1!, "output", -1);
    const w2 = staticDim(textEncoder2!, penultimate2!, "output", -1);
    const target = ehsWidth ?? info.crossAttentionDim;
    if (w1 !== undefined && w2 !== undefined && target !== undefined && w1 + w2 !== target) {
      throw new BackendError(`${p.textEncoder} + ${p.textEncoder2}: hidden sizes ${w1} + ${w2} do not match the UNet's encoder_hidden_states width ${target} (${p.unet})`);
    }
    // time_ids: size, crop, target size (6), or size, crop, aesthetic score (5) with requires_aesthetics_score.
    const timeIds = staticDim(unet, "time_ids", "input", -1);
    const wanted = info.requiresAestheticsScore ? 5 : 6;
    if (timeIds !== undefined && timeIds !== wanted) {
      throw new BackendError(
        `${p.unet}: input "time_ids" has width ${timeIds}, but model_index.json ${info.requiresAestheticsScore ? "sets" : "does not set"} requires_aesthetics_score (${wanted} values)`,
      );
    }
    const te = staticDim(unet, "text_embeds", "input", -1);
    if (te !== undefined) checkWidth(textEncoder2!, p.textEncoder2!, "text_embeds", "output", te, "the UNet's text_embeds width", p.unet);
  } else {
    const target = ehsWidth ?? info.crossAttentionDim;
    if (target !== undefined) checkWidth(textEncoder, p.textEncoder, "last_hidden_state", "output", target, "the UNet's encoder_hidden_states width", p.unet);
  }

  const vaeDecoder = await createSession(p.vaeDecoder, opts);
  requireNames(vaeDecoder, p.vaeDecoder, ["latent_sample"], ["sample"]);
  const decCh = staticDim(vaeDecoder, "latent_sample", "input", 1);
  if (decCh !== undefined && decCh !== info.latentChannels) {
    throw new BackendError(`${p.vaeDecoder}: input "latent_sample" has ${decCh} channels, expected latent_channels ${info.latentChannels}`);
  }

  let vaeEncoder: ort.InferenceSession | undefined;
  let vaeEncoderOutput: "latent_sample" | "latent_parameters" | undefined;
  if (p.vaeEncoder) {
    vaeEncoder = await createSession(p.vaeEncoder, opts);
    requireNames(vaeEncoder, p.vaeEncoder, ["sample"], []);
    if (vaeEncoder.outputNames.includes("latent_parameters")) vaeEncoderOutput = "latent_parameters";
    else if (vaeEncoder.outputNames.includes("latent_sample")) vaeEncoderOutput = "latent_sample";
    else throw new BackendError(`${p.vaeEncoder}: missing output "latent_sample" or "latent_parameters" (outputs are ${vaeEncoder.outputNames.join(", ")})`);
  }
  return {
    textEncoder,
    textEncoder2,
    unet,
    vaeDecoder,
    vaeEncoder,
    inputIdsDtype,
    inputIds2Dtype,
    timestep: { type: tsType, length: tsLength },
    vaeEncoderOutput,
    penultimate1,
    penultimate2,
    staticLatentSize: sh !== undefined && sw !== undefined ? { height: sh, width: sw } : undefined,
    staticBatch: staticDim(unet, "sample", "input", 0),
  };
}

export async function releaseSessions(s: ModelSessions): Promise<void> {
  for (const x of [s.textEncoder, s.textEncoder2, s.unet, s.vaeDecoder, s.vaeEncoder]) await x?.release();
}
