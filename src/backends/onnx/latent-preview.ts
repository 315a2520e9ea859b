/**
 * Previews without a VAE decode: each latent pixel's channels mapped to RGB by
 * one linear map (rgb = bias + Σ_c z_c · w_c, in the decoder's [−1, 1]), then
 * scaled up bilinearly to the request's size. The map works on the latents as
 * the denoiser sees them (scaled: (z − shift) · scaling_factor).
 *
 * For the VAEs the families ship, the published factors (ComfyUI,
 * comfy/latent_formats.py, `latent_rgb_factors` / `latent_rgb_factors_bias`
 * of SD15, SDXL, SD3 and Flux) are used, recognised by the VAE's config. Any
 * other VAE (tiny test models, the demo model, a fine-tune's own VAE) gets a
 * map fitted at load by least squares from the VAE itself (fitLatentRgbMap):
 * probe images of coloured blocks and discs through the encoder's means and
 * back through the decoder, each latent pixel against the mean colour of its
 * decoded footprint, scored on held-out probes so that the pipeline can keep
 * VAE decodes where no linear map follows the VAE (MIN_FITTED_PREVIEW_PSNR).
 */
import type { Json } from "../model-index.js";
import { BackendError } from "../types.js";

/** How previews are made: a linear latent→RGB approximation (default), or a full VAE decode. */
export type PreviewMode = "approx" | "vae";
export const PREVIEW_MODES: readonly PreviewMode[] = ["approx", "vae"];

/** The `previews` load option checked, default "approx". */
export function previewMode(value: unknown): PreviewMode {
  if (value === undefined) return "approx";
  if (typeof value === "string" && (PREVIEW_MODES as readonly string[]).includes(value)) return value as PreviewMode;
  throw new BackendError(`previews must be one of ${PREVIEW_MODES.map((m) => `"${m}"`).join(", ")}, got ${JSON.stringify(value)}`);
}

/** rgb_k = bias_k + Σ_c z_c · weights[c·3 + k] on scaled latents, in [−1, 1]. */
export interface LatentRgbMap {
  readonly channels: number;
  /** [C, 3]. */
  readonly weights: Float32Array;
  /** [3]. */
  readonly bias: Float32Array;
  /** Where it comes from: a published set's name, or "fitted". */
  readonly source: string;
}

/** A published factor set and the VAE it was made for. */
interface PublishedFactors {
  readonly name: string;
  readonly latentChannels: number;
  readonly scalingFactor: number;
  readonly shiftFactor: number;
  /** Rows per latent channel: [R, G, B]. */
  readonly factors: readonly (readonly [number, number, number])[];
  readonly bias: readonly [number, number, number];
}

/** Every published VAE here is an AutoencoderKL with these blocks. */
const PUBLISHED_BLOCKS = [128, 256, 512, 512];

/**
 * ComfyUI comfy/latent_formats.py (github.com/comfyanonymous/ComfyUI): SD15 (SD 1.x and 2.x share the
 * VAE), SDXL, SD3 and Flux. SD15 has no bias there.
 */
const PUBLISHED: readonly PublishedFactors[] = [
  {
    name: "sd1",
    latentChannels: 4,
    scalingFactor: 0.18215,
    shiftFactor: 0,
    factors: [
      [0.3512, 0.2297, 0.3227],
      [0.325, 0.4974, 0.235],
      [-0.2829, 0.1762, 0.2721],
      [-0.212, -0.2616, -0.7177],
    ],
    bias: [0, 0, 0],
  },
  {
    name: "sdxl",
    latentChannels: 4,
    scalingFactor: 0.13025,
    shiftFactor: 0,
    factors: [
      [0.3651, 0.4232, 0.4341],
      [-0.2533, -0.0042, 0.1068],
      [0.1076, 0.1111, -0.0362],
      [-0.3165, -0.2492, -0.2188],
    ],
    bias: [0.1084, -0.0175, -0.0011],
  },
  {
    name: "sd3",
    latentChannels: 16,
    scalingFactor: 1.5305,
    shiftFactor: 0.0609,
    factors: [
      [-0.0922, -0.0175, 0.0749],
      [0.0311, 0.0633, 0.0954],
      [0.1994, 0.0927, 0.0458],
      [0.0856, 0.0339, 0.0902],
      [0.0587, 0.0272, -0.0496],
      [-0.0006, 0.1104, 0.0309],
      [0.0978, 0.0306, 0.0427],
      [-0.0042, 0.1038, 0.1358],
      [-0.0194, 0.002, 0.0669],
      [-0.0488, 0.013, -0.0268],
      [0.0922, 0.0988, 0.0951],
      [-0.0278, 0.0524, -0.0542],
      [0.0332, 0.0456, 0.0895],
      [-0.0069, -0.003, -0.081],
      [-0.0596, -0.0465, -0.0293],
      [-0.1448, -0.1463, -0.1189],
    ],
    bias: [0.2394, 0.2135, 0.1925],
  },
  {
    name: "flux",
    latentChannels: 16,
    scalingFactor: 0.3611,
    shiftFactor: 0.1159,
    factors: [
      [-0.0346, 0.0244, 0.0681],
      [0.0034, 0.021, 0.0687],
      [0.0275, -0.0668, -0.0433],
      [-0.0174, 0.016, 0.0617],
      [0.0859, 0.0721, 0.0329],
      [0.0004, 0.0383, 0.0115],
      [0.0405, 0.0861, 0.0915],
      [-0.0236, -0.0185, -0.0259],
      [-0.0245, 0.025, 0.118],
      [0.1008, 0.0755, -0.0421],
      [-0.0515, 0.0201, 0.0011],
      [0.0428, -0.0012, -0.0036],
      [0.0817, 0.0765, 0.0749],
      [-0.1264, -0.0522, -0.1103],
      [-0.028, -0.0881, -0.0499],
      [-0.1262, -0.0982, -0.0778],
    ],
    bias: [-0.0329, -0.0718, -0.0851],
  },
];

/**
 * The published map for this VAE config, when it is one of the published VAEs: their architecture
 * (latent channels, block_out_channels 128/256/512/512) and their scaling and shift factors.
 * A config-less folder (the legacy layout) or any other VAE gets undefined: fit one instead.
 */
export function publishedLatentRgbMap(vaeConfig: Json | undefined): LatentRgbMap | undefined {
  if (!vaeConfig) return undefined;
  const blocks = vaeConfig.block_out_channels;
  if (!Array.isArray(blocks) || blocks.length !== PUBLISHED_BLOCKS.length || blocks.some((b, i) => b !== PUBLISHED_BLOCKS[i])) return undefined;
  const near = (v: unknown, want: number) => (v === undefined || v === null ? want === 0 : typeof v === "number" && Math.abs(v - want) < 1e-6);
  const p = PUBLISHED.find((f) => vaeConfig.latent_channels === f.latentChannels && near(vaeConfig.scaling_factor, f.scalingFactor) && near(vaeConfig.shift_factor, f.shiftFactor));
  if (!p) return undefined;
  return { channels: p.latentChannels, weights: Float32Array.from(p.factors.flat()), bias: Float32Array.from(p.bias), source: p.name };
}

// ---------------------------------------------------------------------------
// Applying a map.

/** Bilinear taps along one axis scaled by `factor` (half-pixel centres, edges clamped): lower index and weight of the upper one. */
function taps(outLen: number, inLen: number): { i0: Uint32Array; i1: Uint32Array; t: Float32Array } {
  const i0 = new Uint32Array(outLen);
  const i1 = new Uint32Array(outLen);
  const t = new Float32Array(outLen);
  const scale = inLen / outLen;
  for (let o = 0; o < outLen; o++) {
    const x = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), inLen - 1);
    const lo = Math.floor(x);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, inLen - 1);
    t[o] = x - lo;
  }
  return { i0, i1, t };
}

/**
 * Previews of n images: NCHW latents [n, C, h, w] → RGB u8 NHWC [n, height, width, 3], the map applied per
 * latent pixel and scaled up bilinearly; values as the decode's: round((x + 1) / 2 · 255), clamped.
 */
export function latentRgbPreview(map: LatentRgbMap, latents: Float32Array, n: number, h: number, w: number, width: number, height: number): Uint8Array {
  const C = map.channels;
  const plane = h * w;
  if (latents.length !== n * C * plane) throw new Error(`latents hold ${latents.length} values, not ${n}×${C}×${h}×${w}`);
  const small = new Float32Array(plane * 3);
  const row = new Float32Array(w * 3);
  const out = new Uint8Array(n * width * height * 3);
  const xs = taps(width, w);
  const ys = taps(height, h);
  for (let b = 0; b < n; b++) {
    // The map per latent pixel, already in output units: (x + 1) · 127.5 + 0.5, so rounding is a floor below.
    const base = b * C * plane;
    for (let p = 0; p < plane; p++) {
      let r = map.bias[0];
      let g = map.bias[1];
      let bl = map.bias[2];
      for (let c = 0; c < C; c++) {
        const z = latents[base + c * plane + p];
        r += z * map.weights[c * 3];
        g += z * map.weights[c * 3 + 1];
        bl += z * map.weights[c * 3 + 2];
      }
      small[p * 3] = (r + 1) * 127.5 + 0.5;
      small[p * 3 + 1] = (g + 1) * 127.5 + 0.5;
      small[p * 3 + 2] = (bl + 1) * 127.5 + 0.5;
    }
    // Vertical blend into one latent-wide row, then horizontal: one lerp per output value.
    let o = b * width * height * 3;
    for (let y = 0; y < height; y++) {
      const r0 = ys.i0[y] * w * 3;
      const r1 = ys.i1[y] * w * 3;
      const ty = ys.t[y];
      for (let j = 0; j < w * 3; j++) row[j] = small[r0 + j] + (small[r1 + j] - small[r0 + j]) * ty;
      for (let x = 0; x < width; x++) {
        const a = xs.i0[x] * 3;
        const c = xs.i1[x] * 3;
        const tx = xs.t[x];
        for (let k = 0; k < 3; k++, o++) {
          const v = row[a + k] + (row[c + k] - row[a + k]) * tx;
          out[o] = v >= 255 ? 255 : v > 0 ? v | 0 : 0;
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Fitting a map to a VAE.

/** Least squares of pooled decoded RGB on latent pixels: sums of [z, 1][z, 1]ᵀ and [z, 1]·rgbᵀ, in float64. */
export class LatentRgbFit {
  private readonly xx: Float64Array;
  private readonly xy: Float64Array;
  private count = 0;

  constructor(readonly channels: number) {
    this.xx = new Float64Array((channels + 1) ** 2);
    this.xy = new Float64Array((channels + 1) * 3);
  }

  /**
   * Adds every latent pixel of `latents` [n, C, h, w] with the mean of its f×f footprint in `decoded`
   * [n, 3, h·f, w·f] (the decoder's output for those latents).
   */
  add(latents: Float32Array, decoded: Float32Array, n: number, h: number, w: number, f: number): void {
    const C = this.channels;
    const K = C + 1;
    const plane = h * w;
    const W = w * f;
    const dplane = h * f * W;
    const x = new Float64Array(K);
    const y = new Float64Array(3);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          for (let c = 0; c < C; c++) x[c] = latents[(b * C + c) * plane + i * w + j];
          x[C] = 1;
          for (let k = 0; k < 3; k++) {
            let s = 0;
            const base = (b * 3 + k) * dplane;
            for (let dy = 0; dy < f; dy++) {
              const row = base + (i * f + dy) * W + j * f;
              for (let dx = 0; dx < f; dx++) s += decoded[row + dx];
            }
            y[k] = s / (f * f);
          }
          for (let r = 0; r < K; r++) {
            for (let c = 0; c < K; c++) this.xx[r * K + c] += x[r] * x[c];
            for (let k = 0; k < 3; k++) this.xy[r * 3 + k] += x[r] * y[k];
          }
          this.count++;
        }
      }
    }
  }

  /**
   * The map minimising the squared error, with a small ridge (1e-6 of the mean diagonal) so directions the
   * samples never moved along get weight ≈ 0 rather than noise.
   */
  solve(): LatentRgbMap {
    const C = this.channels;
    const K = C + 1;
    if (this.count < K) throw new Error(`${this.count} samples cannot fit ${K} unknowns`);
    const a = Float64Array.from(this.xx);
    const rhs = Float64Array.from(this.xy);
    let trace = 0;
    for (let i = 0; i < K; i++) trace += a[i * K + i];
    for (let i = 0; i < C; i++) a[i * K + i] += (1e-6 * trace) / K; // the bias column is not shrunk
    // Gaussian elimination with partial pivoting on the (K × K) system, three right-hand sides.
    for (let col = 0; col < K; col++) {
      let piv = col;
      for (let r = col + 1; r < K; r++) if (Math.abs(a[r * K + col]) > Math.abs(a[piv * K + col])) piv = r;
      if (a[piv * K + col] === 0) throw new Error("the samples leave the fit singular");
      if (piv !== col) {
        for (let c = 0; c < K; c++) [a[col * K + c], a[piv * K + c]] = [a[piv * K + c], a[col * K + c]];
        for (let k = 0; k < 3; k++) [rhs[col * 3 + k], rhs[piv * 3 + k]] = [rhs[piv * 3 + k], rhs[col * 3 + k]];
      }
      for (let r = 0; r < K; r++) {
        if (r === col) continue;
        const m = a[r * K + col] / a[col * K + col];
        if (m === 0) continue;
        for (let c = col; c < K; c++) a[r * K + c] -= m * a[col * K + c];
        for (let k = 0; k < 3; k++) rhs[r * 3 + k] -= m * rhs[col * 3 + k];
      }
    }
    const weights = new Float32Array(C * 3);
    const bias = new Float32Array(3);
    for (let r = 0; r < K; r++) {
      for (let k = 0; k < 3; k++) {
        const v = rhs[r * 3 + k] / a[r * K + r];
        if (r < C) weights[r * 3 + k] = v;
        else bias[k] = v;
      }
    }
    return { channels: C, weights, bias, source: "fitted" };
  }
}

/** What fitting needs of a VAE: decode (and encode, when there is an encoder) on scaled latents. */
export interface VaeAccess {
  readonly channels: number;
  /** Pixels per latent pixel. */
  readonly factor: number;
  /** The decoder's output [n, 3, h·f, w·f] (≈[−1, 1]) for scaled latents [n, C, h, w]. */
  decode(latents: Float32Array, n: number, h: number, w: number): Promise<Float32Array>;
  /** The scaled latent means [1, C, H/f, W/f] of an image [1, 3, H, W] in [−1, 1]. */
  encode?(pixels: Float32Array, height: number, width: number): Promise<Float32Array>;
  /** The decoder's latent size, when it was exported for one. */
  readonly staticLatentSize?: { readonly height: number; readonly width: number };
}

/** A fitted map and how well it did on probes it was not fitted on. */
export interface FittedLatentRgbMap {
  readonly map: LatentRgbMap;
  /** PSNR (dB) of the map's colours against the decoded colours averaged over each latent pixel's footprint, on the validation probes. */
  readonly validationPsnr: number;
  readonly ms: number;
}

/** Probes fitted on, and probes held out to validate the fit. */
const FIT_PROBES = 4;
const VALIDATION_PROBES = 2;

/** A deterministic generator in [0, 1) (probes are the same on every load and every worker). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/**
 * Probe image k, [1, 3, H, W] in [−1, 1]: even k, a grid of random colours in blocks of one or two latent pixels;
 * odd k, a disc of one random colour on another (edges inside latent pixels).
 */
function probeImage(k: number, height: number, width: number, factor: number, rand: () => number): Float32Array {
  const px = new Float32Array(3 * height * width);
  const plane = height * width;
  const colour = () => [rand() * 2 - 1, rand() * 2 - 1, rand() * 2 - 1];
  if (k % 2 === 0) {
    const block = factor * (1 + ((k / 2) % 2));
    const cols = Math.ceil(width / block);
    const colours = Array.from({ length: Math.ceil(height / block) * cols }, colour);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const c = colours[Math.floor(y / block) * cols + Math.floor(x / block)];
        for (let ch = 0; ch < 3; ch++) px[ch * plane + y * width + x] = c[ch];
      }
    }
  } else {
    const [bg, fg] = [colour(), colour()];
    const cx = rand() * width;
    const cy = rand() * height;
    const r = (0.15 + 0.3 * rand()) * Math.min(width, height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const c = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 < r * r ? fg : bg;
        for (let ch = 0; ch < 3; ch++) px[ch * plane + y * width + x] = c[ch];
      }
    }
  }
  return px;
}

/**
 * Probe latents without an encoder, [1, C, h, w]: standard normal vectors (the scaled latents' prior) in blocks of
 * two or four latent pixels, or a disc on a background, since real latents are smooth across neighbours (a decoder
 * mixes each latent pixel with its neighbours; the map sees one at a time).
 */
function priorProbe(k: number, C: number, h: number, w: number, rand: () => number): Float32Array {
  // Box–Muller from the same deterministic generator.
  const vector = () => Array.from({ length: C }, () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));
  const z = new Float32Array(C * h * w);
  const plane = h * w;
  const at = (y: number, x: number, v: number[]) => v.forEach((value, c) => (z[c * plane + y * w + x] = value));
  if (k % 2 === 0) {
    const block = 2 * (1 + ((k / 2) % 2));
    const cols = Math.ceil(w / block);
    const vectors = Array.from({ length: Math.ceil(h / block) * cols }, vector);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) at(y, x, vectors[Math.floor(y / block) * cols + Math.floor(x / block)]);
  } else {
    const [bg, fg] = [vector(), vector()];
    const cx = rand() * w;
    const cy = rand() * h;
    const r = (0.15 + 0.3 * rand()) * Math.min(w, h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) at(y, x, (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 < r * r ? fg : bg);
  }
  return z;
}

/** Squared error of `map` on latents [1, C, h, w] against their decode averaged over each latent pixel's footprint. */
function pooledError(map: LatentRgbMap, latents: Float32Array, decoded: Float32Array, h: number, w: number, f: number): { se: number; count: number } {
  const C = map.channels;
  const plane = h * w;
  const W = w * f;
  const dplane = h * f * W;
  let se = 0;
  for (let p = 0; p < plane; p++) {
    const i = Math.floor(p / w);
    const j = p % w;
    for (let k = 0; k < 3; k++) {
      let v = map.bias[k];
      for (let c = 0; c < C; c++) v += latents[c * plane + p] * map.weights[c * 3 + k];
      let s = 0;
      for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += decoded[k * dplane + (i * f + dy) * W + j * f + dx];
      se += (v - s / (f * f)) ** 2;
    }
  }
  return { se, count: plane * 3 };
}

/**
 * Fits a map to this VAE: probe images (see probeImage) through the encoder's means, decoded again, the map
 * least-squares from each latent pixel to its decoded footprint's mean colour; without an encoder, standard
 * normal latents (the scaled latents' prior) are decoded instead. Probes are max(64, 4f) pixels a side
 * (the decoder's own size when it has one): at least 4×4 latent pixels each, and small: on SD's full-size VAE
 * the six encodes and decodes cost 4.8 CPU-seconds, a sixth of one 512² decode (bench/previews.bench.ts).
 */
export async function fitLatentRgbMap(vae: VaeAccess): Promise<FittedLatentRgbMap> {
  const t0 = performance.now();
  const f = vae.factor;
  const C = vae.channels;
  const side = Math.max(64, 4 * f) / f;
  const h = vae.staticLatentSize?.height ?? side;
  const w = vae.staticLatentSize?.width ?? side;
  const rand = lcg(0x9e3779b9);
  const fit = new LatentRgbFit(C);
  const held: { z: Float32Array; d: Float32Array }[] = [];
  for (let k = 0; k < FIT_PROBES + VALIDATION_PROBES; k++) {
    let z: Float32Array;
    if (vae.encode) z = await vae.encode(probeImage(k, h * f, w * f, f, rand), h * f, w * f);
    else z = priorProbe(k, C, h, w, rand);
    const d = await vae.decode(z, 1, h, w);
    if (k < FIT_PROBES) fit.add(z, d, 1, h, w, f);
    else held.push({ z, d });
  }
  const map = fit.solve();
  let se = 0;
  let count = 0;
  for (const { z, d } of held) {
    const r = pooledError(map, z, d, h, w, f);
    se += r.se;
    count += r.count;
  }
  return { map, validationPsnr: 10 * Math.log10(4 / (se / count)), ms: performance.now() - t0 };
}
