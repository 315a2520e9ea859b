/**
 * The ONNX Runtime backend's memory pre-check: what loading a model folder and
 * running one image at its default size will take, worked out from the folder's
 * files before any worker starts, compared with the memory the host has.
 *
 * Where the memory goes (each figure measured on ORT 1.30, x86-64, see the README's "Memory"):
 * - Every worker loads every component present (onnx-backend.ts), so all of it
 *   is multiplied by the worker count.
 * - Weights: as loaded, float16 widened to float32 (upcast-fp16.ts); ORT re-lays
 *   out convolution kernels (4-D initializers), and the allocator keeps the
 *   originals of those under 32 MiB.
 * - Loading: fp32 data inside model.onnx costs 1.4× its size more while ORT
 *   parses the file, which the worker's allocator keeps; an fp16 model is read
 *   whole and rewritten (in memory too when the temp folder is a tmpfs).
 * - Running: each session's CPU arena keeps its largest run's buffers, with
 *   some slack (ORT's memory pattern, which would add a planned block as large
 *   again from the second run, is off: sessions.ts): the attention probabilities (batch × heads × tokens² × 4 bytes) of the
 *   denoiser and the text encoders, the full-resolution feature maps of the VAE.
 */
import { existsSync, statfsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Json, readJsonFile, vaeScaleFactorOf } from "../model-index.js";
import type { AvailableMemory } from "../host-memory.js";
import { BackendError } from "../types.js";
import { readWeightCensus, type WeightCensus } from "./weight-census.js";

/** The component folders the ONNX backend loads a model.onnx from, when present. */
export const ONNX_COMPONENTS = ["text_encoder", "text_encoder_2", "text_encoder_3", "unet", "transformer", "vae_decoder", "vae_encoder"] as const;
export type OnnxComponent = (typeof ONNX_COMPONENTS)[number];

/** Runtime per worker: ORT's environment and thread pools, the worker's JS heap, tokenizers (measured 60–85 MB for the first worker, 10–50 MB for each further one). */
export const WORKER_OVERHEAD_BYTES = 64 * 2 ** 20;
/**
 * Convolution kernels: ORT re-lays them out (NCHWc) and frees the originals, which the allocator keeps
 * for kernels under 32 MiB (measured 2.0× their bytes for 14.7 MB kernels in a worker's first model, 1.3× after)
 * and gives back for larger ones (1.0× once loaded, 1.5× while loading, measured with 59 MB kernels).
 */
const SMALL_CONV_COPY = 1;
const LARGE_CONV_LOADING = 0.5;
/** fp32 data inside model.onnx: the protobuf and its copies while the session builds (measured +1.4× the inline bytes). */
const INLINE_EXTRA = 1.4;
/** fp16 rewrite: besides reading model.onnx whole, a tensor's chunks, half bits and float32 copy waiting for GC (measured 2.7× the largest tensor's float32 bytes). */
const UPCAST_LARGEST_EXTRA = 4;
/**
 * A session's arena keeps its largest run's buffers, rounded up into its pools and fragmented: measured 1.09–1.31×
 * the live set on the fixtures (sd1, sdxl, sd3, flux-schnell, the demo) with ORT's memory pattern off, as sessions.ts
 * sets it (on, it added a planned block of the same size from the second run: 2.0–2.1×).
 */
const ARENA_FACTOR = 1.35;
/** Attention keeps the scaled scores and their softmax alive together (measured 2.0× the probabilities in one run of an exported UNet). */
const ATTENTION_LIVE = 2;
/** Decoded result buffers per output pixel (float32 RGB and its 8-bit copy). */
const OUTPUT_BYTES_PER_PIXEL = 16;
/** T5 tokens a request may ask for (max_sequence_length): the longest text the check allows for. */
const T5_TOKENS = 512;
const CLIP_TOKENS = 77;
const TMPFS_MAGIC = 0x01021994;

/** The largest attention a component runs, per image. */
export interface AttentionShape {
  readonly heads: number;
  /** Output-image pixels per token (64: one per latent pixel of an ×8 VAE); 0: no image tokens. */
  readonly pixelsPerToken: number;
  /** Tokens that do not scale with the image: a joint transformer's text, a text encoder's sequence. */
  readonly fixedTokens: number;
  /** Rows per image in one run: 2 under classifier-free guidance. */
  readonly batch: number;
}

export interface ComponentFacts {
  readonly name: OnnxComponent;
  readonly weights: WeightCensus;
  readonly attention?: AttentionShape;
  /** Feature-map channels alive at once per output pixel, the VAE's at full resolution (measured: decoder c0 + c1, encoder 4·c0 of block_out_channels). */
  readonly featureChannels?: number;
}

/** What the estimate needs from a folder (readMemoryFacts). */
export interface MemoryFacts {
  readonly dir: string;
  readonly components: readonly ComponentFacts[];
  /** The model's native size: what a request without a size gets. */
  readonly defaultWidth: number;
  readonly defaultHeight: number;
  /** os.tmpdir() is a tmpfs: an fp16 model's float32 rewrite sits in memory while it loads. */
  readonly tmpInMemory: boolean;
}

export interface ComponentEstimate {
  readonly name: OnnxComponent;
  /** Resident once loaded. */
  readonly weights: number;
  /** Held while it loads, beyond `weights`. */
  readonly loading: number;
  /** Kept by its arena after runs at the estimate's size. */
  readonly activations: number;
}

export interface MemoryEstimate {
  readonly workers: number;
  readonly width: number;
  readonly height: number;
  readonly components: readonly ComponentEstimate[];
  /** Per worker: Σ weights. */
  readonly weights: number;
  /** Per worker: the largest loading extra (a worker loads one component at a time). */
  readonly loading: number;
  /** Per worker: Σ activations. */
  readonly activations: number;
  readonly overhead: number;
  readonly perWorker: number;
  /** workers × perWorker: what the load and a first image take beyond what the process holds now. */
  readonly total: number;
}

function attentionBytes(a: AttentionShape, pixels: number): number {
  const tokens = (a.pixelsPerToken > 0 ? Math.ceil(pixels / a.pixelsPerToken) : 0) + a.fixedTokens;
  return a.batch * a.heads * tokens * tokens * 4;
}

/** Memory for `workers` workers loading the folder and each running one image of `width`×`height` (default: the native size). */
export function estimateMemory(facts: MemoryFacts, run: { readonly workers: number; readonly width?: number; readonly height?: number }): MemoryEstimate {
  const width = run.width ?? facts.defaultWidth;
  const height = run.height ?? facts.defaultHeight;
  const pixels = width * height;
  const components = facts.components.map((c): ComponentEstimate => {
    const w = c.weights;
    const graph = Math.max(0, w.fileBytes - w.inlineBytes);
    const weights = w.loadedBytes + SMALL_CONV_COPY * w.smallConvBytes + graph;
    const reading = w.float16Bytes > 0 ? w.fileBytes + UPCAST_LARGEST_EXTRA * w.largestBytes + (facts.tmpInMemory ? w.loadedBytes : 0) : INLINE_EXTRA * w.inlineBytes;
    const loading = reading + LARGE_CONV_LOADING * (w.convBytes - w.smallConvBytes);
    const live = Math.max(c.attention ? ATTENTION_LIVE * attentionBytes(c.attention, pixels) : 0, (c.featureChannels ?? 0) * 4 * pixels);
    const output = c.name === "vae_decoder" ? OUTPUT_BYTES_PER_PIXEL * pixels : 0;
    return { name: c.name, weights, loading, activations: ARENA_FACTOR * live + output };
  });
  const weights = components.reduce((s, c) => s + c.weights, 0);
  const loading = Math.max(0, ...components.map((c) => c.loading));
  const activations = components.reduce((s, c) => s + c.activations, 0);
  const perWorker = weights + loading + activations + WORKER_OVERHEAD_BYTES;
  return { workers: run.workers, width, height, components, weights, loading, activations, overhead: WORKER_OVERHEAD_BYTES, perWorker, total: run.workers * perWorker };
}

// ---------------------------------------------------------------------------
// Reading the facts.

/** A config.json, or undefined when absent or unreadable (the loader reports broken configs; the estimate falls back to common values). */
async function config(dir: string, component: string): Promise<Json | undefined> {
  try {
    return await readJsonFile(join(dir, component, "config.json"), true);
  } catch {
    return undefined;
  }
}

const positive = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : undefined);

/** diffusers' UNet2DConditionModel: heads per level are `num_attention_heads`, else (misnamed) `attention_head_dim`. */
function unetAttention(cfg: Json | undefined, vaeFactor: number): AttentionShape {
  // No config (the legacy layout): SD 1.x, attention at every level but the last with 8 heads.
  const types = Array.isArray(cfg?.down_block_types) ? cfg.down_block_types.map(String) : ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"];
  const headsSetting = cfg?.num_attention_heads ?? cfg?.attention_head_dim ?? 8;
  const headsAt = (i: number) => positive(Array.isArray(headsSetting) ? headsSetting[i] : headsSetting) ?? 8;
  // Tokens shrink 4× per level: the level with the most heads × tokens² holds the largest attention.
  let best = { level: 0, heads: headsAt(0), weight: -1 };
  types.forEach((t, i) => {
    if (!/Attn/.test(t)) return;
    const weight = headsAt(i) / 16 ** i;
    if (weight > best.weight) best = { level: i, heads: headsAt(i), weight };
  });
  // An LCM UNet takes guidance as an embedding: one row per image.
  const batch = positive(cfg?.time_cond_proj_dim) !== undefined ? 1 : 2;
  return { heads: best.heads, pixelsPerToken: vaeFactor * vaeFactor * 4 ** best.level, fixedTokens: 0, batch };
}

/** FLUX packs 2×2 latent pixels per token and runs no CFG batch; SD3 patches by `patch_size` with CLIP + T5 text under CFG. */
function transformerAttention(cfg: Json | undefined, vaeFactor: number): AttentionShape {
  const heads = positive(cfg?.num_attention_heads) ?? 24;
  const flux = /Flux/.test(String(cfg?._class_name ?? "")) || cfg?.guidance_embeds !== undefined;
  if (flux) return { heads, pixelsPerToken: (vaeFactor * 2) ** 2, fixedTokens: T5_TOKENS, batch: 1 };
  const patch = positive(cfg?.patch_size) ?? 2;
  return { heads, pixelsPerToken: (vaeFactor * patch) ** 2, fixedTokens: CLIP_TOKENS + T5_TOKENS, batch: 2 };
}

function textEncoderAttention(cfg: Json | undefined): AttentionShape {
  const t5 = cfg?.model_type === "t5" || cfg?.num_heads !== undefined;
  const heads = positive(t5 ? cfg?.num_heads : cfg?.num_attention_heads) ?? (t5 ? 64 : 12);
  const tokens = t5 ? T5_TOKENS : positive(cfg?.max_position_embeddings) ?? CLIP_TOKENS;
  return { heads, pixelsPerToken: 0, fixedTokens: tokens, batch: 2 };
}

function tmpfsTemp(): boolean {
  try {
    return statfsSync(tmpdir()).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** The census of a model file; one ORT would fail on counts as its size (the load then reports the file). */
async function census(path: string): Promise<WeightCensus> {
  try {
    return await readWeightCensus(path);
  } catch {
    const size = (await stat(path)).size;
    return { storedBytes: size, loadedBytes: size, convBytes: 0, smallConvBytes: 0, inlineBytes: size, float16Bytes: 0, largestBytes: size, tensors: 0, fileBytes: size, externalFiles: [] };
  }
}

/** Reads what the estimate needs: which components the folder holds, their weights (headers only) and configs. */
export async function readMemoryFacts(dir: string, opts: { readonly tmpInMemory?: boolean } = {}): Promise<MemoryFacts> {
  const vae = (await config(dir, "vae_decoder")) ?? (await config(dir, "vae"));
  const f = vaeScaleFactorOf(vae);
  const channels = Array.isArray(vae?.block_out_channels) ? vae.block_out_channels.map((c) => positive(c) ?? 0) : [128, 256, 512, 512];
  const c0 = channels[0] || 128;
  const c1 = channels[1] || c0;
  // The VAE's mid-block attends over every latent pixel with one head.
  const vaeAttention: AttentionShape = { heads: 1, pixelsPerToken: f * f, fixedTokens: 0, batch: 1 };
  const components: ComponentFacts[] = [];
  let nativeSample: number | undefined;
  for (const name of ONNX_COMPONENTS) {
    const path = join(dir, name, "model.onnx");
    if (!existsSync(path)) continue;
    const weights = await census(path);
    const cfg = name === "vae_decoder" || name === "vae_encoder" ? vae : await config(dir, name);
    if (name === "unet") {
      nativeSample = positive(cfg?.sample_size) ?? 64;
      components.push({ name, weights, attention: unetAttention(cfg, f) });
    } else if (name === "transformer") {
      nativeSample = positive(cfg?.sample_size) ?? 128; // FLUX configs name none; its pipeline's default is 128
      components.push({ name, weights, attention: transformerAttention(cfg, f) });
    } else if (name === "vae_decoder") components.push({ name, weights, attention: vaeAttention, featureChannels: c0 + c1 });
    else if (name === "vae_encoder") components.push({ name, weights, attention: vaeAttention, featureChannels: 4 * c0 });
    else components.push({ name, weights, attention: textEncoderAttention(cfg) });
  }
  const size = (nativeSample ?? 64) * f;
  return { dir, components, defaultWidth: size, defaultHeight: size, tmpInMemory: opts.tmpInMemory ?? tmpfsTemp() };
}

// ---------------------------------------------------------------------------
// The check.

/** Bytes for a message: GB (10^9) with one decimal, MB below 0.1 GB. */
export function formatBytes(bytes: number): string {
  return bytes >= 1e8 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}

export interface WorkerPlan {
  readonly workers: number;
  readonly estimate: MemoryEstimate;
  /** Set when the default worker count was lowered to fit (a warning for the log). */
  readonly lowered?: string;
}

/**
 * The worker count to start: `workers` when they fit in `available`; fewer when the count was
 * the default (not asked for) and fewer fit; otherwise a BackendError saying what the folder
 * needs, what there is and what to try.
 */
export function planWorkers(
  facts: MemoryFacts,
  available: AvailableMemory,
  want: { readonly workers: number; readonly explicit: boolean; readonly width?: number; readonly height?: number },
): WorkerPlan {
  const estimate = estimateMemory(facts, want);
  if (estimate.total <= available.bytes) return { workers: want.workers, estimate };
  const fitting = Math.min(want.workers - 1, Math.floor(available.bytes / estimate.perWorker));
  if (!want.explicit && fitting >= 1) {
    const lowered = estimateMemory(facts, { ...want, workers: fitting });
    return {
      workers: fitting,
      estimate: lowered,
      lowered: `${facts.dir}: starting ${fitting} worker${fitting === 1 ? "" : "s"} instead of ${want.workers}: each needs about ${formatBytes(estimate.perWorker)} and ${formatBytes(available.bytes)} is available (${available.source})`,
    };
  }
  throw new BackendError(memoryRefusal(facts, estimate, available, fitting));
}

/** The refusal: what the load needs (and of what), what there is, what to try. `fitting`: workers that would fit. */
export function memoryRefusal(facts: MemoryFacts, e: MemoryEstimate, available: AvailableMemory, fitting = Math.floor(available.bytes / e.perWorker)): string {
  const byWeight = [...e.components].sort((a, b) => b.weights - a.weights);
  const shown = byWeight.slice(0, 3).map((c) => `${c.name} ${formatBytes(c.weights)}`);
  if (byWeight.length > 3) shown.push("…");
  const float16 = facts.components.some((c) => c.weights.float16Bytes > 0);
  const parts = [
    `weights ${formatBytes(e.weights)} as loaded (${shown.join(", ")}${float16 ? "; float16 weights are widened to float32 when they load" : ""})`,
    ...(e.loading > 0 ? [`${formatBytes(e.loading)} while a component loads`] : []),
    `${formatBytes(e.activations)} working memory for one ${e.width}×${e.height} image`,
    `${formatBytes(e.overhead)} runtime`,
  ];
  const breakdown = `${formatBytes(e.perWorker)} = ${parts.join(" + ")}`;
  const tries: string[] = [];
  if (e.workers > 1) tries.push(fitting >= 1 ? `fewer workers (parallelism ${fitting} needs ${formatBytes(fitting * e.perWorker)})` : `fewer workers (but one alone needs ${formatBytes(e.perWorker)})`);
  tries.push(`a lower-precision export such as int8 (${float16 ? "fp16 saves nothing here" : "not fp16: it is widened to float32 here"})`);
  const t5 = e.components.find((c) => c.name === "text_encoder_3");
  if (t5) tries.push(`an export without text_encoder_3 (the T5 encoder, ${formatBytes(t5.weights)} here), which SD3 can run without`);
  tries.push("an int8 OpenVINO IR of the model on the OpenVINO backend", "a machine or container limit with more memory");
  return (
    `${facts.dir}: this model needs about ${formatBytes(e.total)} of memory to load and run, but ${formatBytes(available.bytes)} is available (${available.source}). ` +
    (e.workers > 1 ? `Per worker (${e.workers} workers, each loading every component): ${breakdown}. ` : `It needs ${breakdown}. `) +
    `Try ${tries.slice(0, -1).join(", ")} or ${tries.at(-1)}; or --skip_memory_check to load it anyway (e.g. on a machine with swap).`
  );
}
