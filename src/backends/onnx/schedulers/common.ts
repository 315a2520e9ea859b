/**
 * Shared scheduler maths: the training noise schedule (β, ᾱ), inference
 * timestep spacing, σ interpolation, step/strength validation and the small
 * element-wise kernels every scheduler uses on Float32Array latents.
 *
 * All scalar coefficients are computed in float64; only the per-element
 * arithmetic touches the Float32Array data (one pass, no closures per element).
 */
import type { PredictionType, ResolvedSchedulerConfig, TimestepSpacing } from "./config.js";

/** A source of independent standard-normal samples (e.g. seeded Box–Muller). */
export type NormalRng = () => number;

export interface SetTimestepsOptions {
  /**
   * img2img strength in (0, 1]: keep only the last ⌊n·strength⌋ steps of the
   * n-step schedule (1 = full txt2img schedule).
   */
  strength?: number;
}

/** The training-time β schedule (length numTrainTimesteps). */
export function makeBetas(cfg: ResolvedSchedulerConfig): Float64Array {
  const T = cfg.numTrainTimesteps;
  if (cfg.trainedBetas) return Float64Array.from(cfg.trainedBetas);
  const betas = new Float64Array(T);
  switch (cfg.betaSchedule) {
    case "linear": {
      for (let i = 0; i < T; i++) betas[i] = cfg.betaStart + ((cfg.betaEnd - cfg.betaStart) * i) / (T - 1);
      break;
    }
    case "scaled_linear": {
      // Linear in √β, then squared.
      const a = Math.sqrt(cfg.betaStart);
      const b = Math.sqrt(cfg.betaEnd);
      for (let i = 0; i < T; i++) {
        const r = a + ((b - a) * i) / (T - 1);
        betas[i] = r * r;
      }
      break;
    }
    case "squaredcos_cap_v2": {
      // Cosine schedule (Nichol & Dhariwal 2021): ᾱ(t) = cos²(((t + 0.008)/1.008)·π/2),
      // β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999).
      const abar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      for (let i = 0; i < T; i++) betas[i] = Math.min(1 - abar((i + 1) / T) / abar(i / T), 0.999);
      break;
    }
  }
  return betas;
}

/** ᾱ_t = Π_{s≤t} (1 − β_s). */
export function makeAlphasCumprod(cfg: ResolvedSchedulerConfig): Float64Array {
  const betas = makeBetas(cfg);
  const out = new Float64Array(betas.length);
  let p = 1;
  for (let i = 0; i < betas.length; i++) {
    p *= 1 - betas[i];
    out[i] = p;
  }
  return out;
}

/** Round half to even (numpy's `round`), so spacing matches published configs exactly. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * n inference timesteps out of T training steps, descending (first = noisiest).
 * - leading:  i·⌊T/n⌋ for i = n−1..0, plus stepsOffset
 * - trailing: round(T − i·T/n) − 1 for i = 0..n−1
 * - linspace: i·(T−1)/(n−1) for i = n−1..0 (rounded when `round`)
 */
export function spacedTimesteps(
  T: number,
  n: number,
  spacing: TimestepSpacing,
  stepsOffset: number,
  round: boolean,
): Float64Array {
  const out = new Float64Array(n);
  switch (spacing) {
    case "leading": {
      const ratio = Math.floor(T / n);
      for (let k = 0; k < n; k++) out[k] = (n - 1 - k) * ratio + stepsOffset;
      break;
    }
    case "trailing": {
      const ratio = T / n;
      for (let k = 0; k < n; k++) out[k] = roundHalfEven(T - k * ratio) - 1;
      break;
    }
    case "linspace": {
      const step = n > 1 ? (T - 1) / (n - 1) : 0;
      for (let k = 0; k < n; k++) {
        const v = (n - 1 - k) * step;
        out[k] = round ? roundHalfEven(v) : v;
      }
      break;
    }
  }
  for (let k = 0; k < n; k++) {
    if (!(out[k] >= 0 && out[k] <= T - 1)) {
      throw new RangeError(
        `timestep ${out[k]} (spacing ${spacing}, steps_offset ${stepsOffset}, ${n} steps) is outside [0, ${T - 1}]`,
      );
    }
  }
  return out;
}

/** σ_t = √((1−ᾱ_t)/ᾱ_t), linearly interpolated for fractional t (clamped to the ends). */
export function sigmaAt(alphasCumprod: Float64Array, t: number): number {
  const T = alphasCumprod.length;
  const s = (i: number): number => Math.sqrt((1 - alphasCumprod[i]) / alphasCumprod[i]);
  if (t <= 0) return s(0);
  if (t >= T - 1) return s(T - 1);
  const lo = Math.floor(t);
  const w = t - lo;
  return w === 0 ? s(lo) : (1 - w) * s(lo) + w * s(lo + 1);
}

/**
 * Karras et al. (2022) eq. 5 noise levels, ρ = 7: n values from σ_max down to σ_min,
 * evenly spaced in σ^(1/ρ).
 */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7): Float64Array {
  const out = new Float64Array(n);
  const lo = sigmaMin ** (1 / rho);
  const hi = sigmaMax ** (1 / rho);
  for (let i = 0; i < n; i++) {
    const ramp = n > 1 ? i / (n - 1) : 0;
    out[i] = (hi + ramp * (lo - hi)) ** rho;
  }
  return out;
}

/**
 * The (fractional) training timestep whose σ equals `sigma`, by linear
 * interpolation of ln σ_t between neighbouring integer t (clamped to [0, T−1]).
 */
export function timestepForSigma(alphasCumprod: Float64Array, sigma: number): number {
  const T = alphasCumprod.length;
  const logSigma = (i: number): number => 0.5 * Math.log((1 - alphasCumprod[i]) / alphasCumprod[i]);
  const target = Math.log(sigma);
  // ln σ_t increases with t: binary search the last t with ln σ_t <= target.
  let lo = 0;
  let hi = T - 1;
  if (target <= logSigma(0)) return 0;
  if (target >= logSigma(T - 1)) return T - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (logSigma(mid) <= target) lo = mid;
    else hi = mid;
  }
  const a = logSigma(lo);
  const b = logSigma(hi);
  return lo + (target - a) / (b - a);
}

/**
 * σ for each spaced timestep (Euler's schedule). With `karras`, the σ values are
 * replaced by the Karras ramp between the σ of the last and first timestep, and
 * the timesteps by the (fractional) t matching each new σ.
 */
export function sigmaSchedule(alphasCumprod: Float64Array, grid: Float64Array, karras: boolean): { timesteps: Float64Array; sigmas: Float64Array } {
  const n = grid.length;
  const sigmas = new Float64Array(n);
  for (let k = 0; k < n; k++) sigmas[k] = sigmaAt(alphasCumprod, grid[k]);
  if (!karras) return { timesteps: grid, sigmas };
  const ks = karrasSigmas(sigmas[n - 1], sigmas[0], n);
  return { timesteps: ks.map((s) => timestepForSigma(alphasCumprod, s)), sigmas: ks };
}

/** Validate the requested number of inference steps. */
export function checkNumSteps(n: number, max: number, what = "num_train_timesteps"): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`numInferenceSteps must be a positive integer; got ${n}`);
  if (n > max) throw new RangeError(`numInferenceSteps ${n} exceeds ${what} (${max})`);
}

/**
 * Index of the first kept step for img2img: with init = min(⌊n·strength⌋, n),
 * the schedule starts at n − init. Throws if no step would remain.
 */
export function strengthStart(n: number, options: SetTimestepsOptions | undefined): number {
  const strength = options?.strength ?? 1;
  if (typeof strength !== "number" || !(strength > 0 && strength <= 1)) {
    throw new RangeError(`strength must be a number in (0, 1]; got ${strength}`);
  }
  const init = Math.min(Math.floor(n * strength), n);
  if (init < 1) {
    throw new RangeError(`strength ${strength} with ${n} steps leaves no denoising step (need n·strength >= 1)`);
  }
  return n - init;
}

export function checkStepIndex(stepIndex: number, count: number): void {
  if (count === 0) throw new Error("scheduler: call setTimesteps() before using it");
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= count) {
    throw new RangeError(`stepIndex must be an integer in [0, ${count - 1}]; got ${stepIndex}`);
  }
}

export function checkSameLength(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length) throw new RangeError(`${what}: length mismatch (${a.length} vs ${b.length})`);
}

/** The caller's output buffer (checked) or a fresh one. */
export function outBuffer(out: Float32Array | undefined, length: number): Float32Array {
  if (out === undefined) return new Float32Array(length);
  if (out.length !== length) throw new RangeError(`out: length ${out.length} does not match sample length ${length}`);
  return out;
}

export function requireRng(rng: NormalRng | undefined, who: string): NormalRng {
  if (typeof rng !== "function") throw new TypeError(`${who}.step needs an rng (standard-normal source) for its noise`);
  return rng;
}

/** out[i] = a·x[i] + b·y[i]  (out may alias x or y). */
export function lincomb(out: Float32Array, a: number, x: Float32Array, b: number, y: Float32Array): Float32Array {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = a * x[i] + b * y[i];
  return out;
}

/** out[i] = a·x[i] + b·y[i] + c·z  with z a fresh standard-normal draw per element. */
export function lincombNoise(
  out: Float32Array,
  a: number,
  x: Float32Array,
  b: number,
  y: Float32Array,
  c: number,
  rng: NormalRng,
): Float32Array {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = a * x[i] + b * y[i] + c * rng();
  return out;
}

/** out[i] = a·x[i]. */
export function scale(out: Float32Array, a: number, x: Float32Array): Float32Array {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = a * x[i];
  return out;
}

/**
 * Linear maps from (sample x, model output m) to the predicted clean sample
 * x₀ = x0x·x + x0m·m and the predicted noise ε = epsx·x + epsm·m, for a
 * variance-preserving state x = α·x₀ + s·ε (α = √ᾱ, s = √(1−ᾱ), α² + s² = 1).
 * - epsilon:      x₀ = (x − s·ε)/α
 * - v_prediction: x₀ = α·x − s·v,   ε = s·x + α·v
 * - sample:       x₀ = m,           ε = (x − α·x₀)/s
 */
export interface PredictionCoeffs {
  x0x: number;
  x0m: number;
  epsx: number;
  epsm: number;
}

export function vpPrediction(type: PredictionType, alpha: number, s: number): PredictionCoeffs {
  switch (type) {
    case "epsilon":
      return { x0x: 1 / alpha, x0m: -s / alpha, epsx: 0, epsm: 1 };
    case "v_prediction":
      return { x0x: alpha, x0m: -s, epsx: s, epsm: alpha };
    case "sample":
      return { x0x: 0, x0m: 1, epsx: 1 / s, epsm: -alpha / s };
  }
}

/** DDPM-family forward noising: √ᾱ·x₀ + √(1−ᾱ)·ε. */
export function vpAddNoise(
  original: Float32Array,
  noise: Float32Array,
  alphaCumprod: number,
  out: Float32Array | undefined,
): Float32Array {
  checkSameLength(original, noise, "addNoise");
  return lincomb(outBuffer(out, original.length), Math.sqrt(alphaCumprod), original, Math.sqrt(1 - alphaCumprod), noise);
}

/**
 * scaleModelInput of the variance-preserving schedulers, whose UNet input is
 * the sample itself: a copy into `out` when one is given, else the sample.
 */
export function unscaledModelInput(sample: Float32Array, stepIndex: number, numSteps: number, out?: Float32Array): Float32Array {
  checkStepIndex(stepIndex, numSteps);
  if (out === undefined) return sample;
  outBuffer(out, sample.length).set(sample);
  return out;
}
