/**
 * FlowMatchEulerDiscreteScheduler (SD3, FLUX): the sample moves along a straight
 * path between data (σ = 0) and noise (σ = 1), x_σ = (1 − σ)·x₀ + σ·ε, and the
 * model predicts the velocity; one Euler step is x ← x + (σ_next − σ)·v.
 *
 * The schedule: n values from σ_max to σ_min (or the sigmas the pipeline passes,
 * FLUX's linspace(1, 1/n, n)), shifted either statically, σ' = s·σ / (1 + (s − 1)·σ),
 * or, with `use_dynamic_shifting`, by μ from the image's sequence length:
 * exponential σ' = e^μ / (e^μ + 1/σ − 1), linear σ' = μ / (μ + 1/σ − 1), with
 * μ = m·len + b on the line through (base_image_seq_len, base_shift) and
 * (max_image_seq_len, max_shift). diffusers keeps the schedule in float32 and
 * does the element-wise work in float32 with one rounding per operation; the
 * kernels below do the same, so the results match it bit for bit.
 */
import { SchedulerConfigError } from "./config.js";
import { type NormalRng, type SetTimestepsOptions, checkSameLength, checkStepIndex, outBuffer } from "./common.js";
import type { Scheduler } from "./types.js";

const f32 = Math.fround;

/** A validated flow-matching scheduler_config.json (camelCase, defaults filled in as diffusers does). */
export interface FlowMatchConfig {
  readonly className: "FlowMatchEulerDiscreteScheduler";
  readonly numTrainTimesteps: number;
  readonly shift: number;
  readonly useDynamicShifting: boolean;
  readonly baseShift: number;
  readonly maxShift: number;
  readonly baseImageSeqLen: number;
  readonly maxImageSeqLen: number;
  readonly timeShiftType: "exponential" | "linear";
}

export interface FlowMatchTimestepsOptions extends SetTimestepsOptions {
  /** The pipeline's own σ schedule before shifting (FLUX: linspace(1, 1/n, n)); default linspace(σ_max, σ_min, n). */
  readonly sigmas?: readonly number[];
  /** Latent tokens per image, for dynamic shifting (FLUX: (H/16)·(W/16); SD3: (H/8/patch)·(W/8/patch)). */
  readonly imageSeqLen?: number;
}

function fail(message: string): never {
  throw new SchedulerConfigError(`scheduler config (FlowMatchEulerDiscreteScheduler): ${message}`);
}

function numberOr(raw: Record<string, unknown>, key: string, fallback: number): number {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) fail(`"${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** Options that change the schedule in ways not implemented here are refused rather than ignored. */
const UNSUPPORTED_WHEN_SET = ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas", "stochastic_sampling"] as const;

export function resolveFlowMatchConfig(raw: Record<string, unknown>): FlowMatchConfig {
  for (const key of UNSUPPORTED_WHEN_SET) if (raw[key] === true) fail(`"${key}": true is not supported`);
  if (raw.shift_terminal !== undefined && raw.shift_terminal !== null) fail(`"shift_terminal" is not supported (got ${JSON.stringify(raw.shift_terminal)})`);
  const timeShiftType = raw.time_shift_type ?? "exponential";
  if (timeShiftType !== "exponential" && timeShiftType !== "linear") fail(`"time_shift_type" must be "exponential" or "linear", got ${JSON.stringify(timeShiftType)}`);
  const numTrainTimesteps = numberOr(raw, "num_train_timesteps", 1000);
  if (!Number.isInteger(numTrainTimesteps) || numTrainTimesteps < 1) fail(`"num_train_timesteps" must be a positive integer, got ${numTrainTimesteps}`);
  const shift = numberOr(raw, "shift", 1);
  if (!(shift > 0)) fail(`"shift" must be positive, got ${shift}`);
  const useDynamicShifting = raw.use_dynamic_shifting === true;
  return {
    className: "FlowMatchEulerDiscreteScheduler",
    numTrainTimesteps,
    shift,
    useDynamicShifting,
    baseShift: numberOr(raw, "base_shift", 0.5),
    maxShift: numberOr(raw, "max_shift", 1.15),
    // diffusers' pipelines read these two with these defaults (`scheduler.config.get(...)`).
    baseImageSeqLen: numberOr(raw, "base_image_seq_len", 256),
    maxImageSeqLen: numberOr(raw, "max_image_seq_len", 4096),
    timeShiftType,
  };
}

/** μ for dynamic shifting: the line through (base_image_seq_len, base_shift) and (max_image_seq_len, max_shift) at `imageSeqLen` (float64, as Python computes it). */
export function flowMatchMu(cfg: FlowMatchConfig, imageSeqLen: number): number {
  const m = (cfg.maxShift - cfg.baseShift) / (cfg.maxImageSeqLen - cfg.baseImageSeqLen);
  const b = cfg.baseShift - m * cfg.baseImageSeqLen;
  return imageSeqLen * m + b;
}

/** n float64 values from a to b inclusive, as numpy.linspace computes them. */
export function linspace(a: number, b: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = a;
    return out;
  }
  const step = (b - a) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = a + i * step;
  out[n - 1] = b;
  return out;
}

export class FlowMatchEulerDiscreteScheduler implements Scheduler {
  readonly className = "FlowMatchEulerDiscreteScheduler";
  /** The sample is fed unscaled and starts as plain noise. */
  readonly initNoiseSigma = 1;
  numInferenceSteps = 0;
  timesteps = new Float64Array(0);
  /** σ per step index (float32 values), plus the final 0. */
  sigmas = new Float64Array(0);
  /** The training schedule's ends (float32 values). */
  readonly sigmaMax: number;
  readonly sigmaMin: number;

  constructor(readonly config: FlowMatchConfig) {
    // The training sigmas t/N for t = N..1, statically shifted unless shifting is dynamic (float32).
    const N = config.numTrainTimesteps;
    const shifted = (t: number): number => {
      const s = f32(t / N);
      return config.useDynamicShifting ? s : f32(f32(f32(config.shift) * s) / f32(1 + f32(f32(config.shift - 1) * s)));
    };
    this.sigmaMax = shifted(N);
    this.sigmaMin = shifted(1);
  }

  setTimesteps(numInferenceSteps: number, options: FlowMatchTimestepsOptions = {}): void {
    const cfg = this.config;
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) throw new RangeError(`numInferenceSteps must be a positive integer; got ${numInferenceSteps}`);
    const strength = options.strength ?? 1;
    if (typeof strength !== "number" || !(strength > 0 && strength <= 1)) throw new RangeError(`strength must be a number in (0, 1]; got ${strength}`);
    let sigmas: Float64Array;
    // A pipeline's own sigmas are cast to float32 first and shifted in float32; the default grid is shifted in float64.
    let float32 = false;
    if (options.sigmas !== undefined) {
      if (options.sigmas.length !== numInferenceSteps) throw new RangeError(`${options.sigmas.length} sigmas for ${numInferenceSteps} steps`);
      sigmas = Float64Array.from(options.sigmas, f32);
      float32 = true;
    } else {
      const N = cfg.numTrainTimesteps;
      sigmas = linspace(this.sigmaMax * N, this.sigmaMin * N, numInferenceSteps).map((t) => t / N);
    }
    const r = float32 ? f32 : (x: number) => x;
    if (cfg.useDynamicShifting) {
      if (options.imageSeqLen === undefined) throw new RangeError("use_dynamic_shifting needs the image sequence length");
      const mu = flowMatchMu(cfg, options.imageSeqLen);
      const e = r(cfg.timeShiftType === "exponential" ? Math.exp(mu) : mu);
      sigmas = sigmas.map((s) => r(e / r(e + r(r(1 / s) - 1))));
    } else {
      const shift = r(cfg.shift);
      const shiftLess1 = r(cfg.shift - 1);
      sigmas = sigmas.map((s) => r(r(shift * s) / r(1 + r(shiftLess1 * s))));
    }
    // diffusers' img2img cut: t_start = int(max(n − min(n·strength, n), 0)), below n for any strength > 0.
    const start = Math.trunc(Math.max(numInferenceSteps - Math.min(numInferenceSteps * strength, numInferenceSteps), 0));
    const all = new Float64Array(numInferenceSteps + 1);
    for (let i = 0; i < numInferenceSteps; i++) all[i] = f32(sigmas[i]);
    all[numInferenceSteps] = 0;
    this.numInferenceSteps = numInferenceSteps;
    this.sigmas = all.slice(start);
    this.timesteps = this.sigmas.slice(0, -1).map((s) => f32(s * cfg.numTrainTimesteps));
  }

  scaleModelInput(sample: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    if (out === undefined) return sample;
    outBuffer(out, sample.length).set(sample);
    return out;
  }

  /** x + (σ_next − σ)·v, in float32 (dt rounded, then product, then sum). */
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, _rng?: NormalRng, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample, "step");
    const dt = f32(this.sigmas[stepIndex + 1] - this.sigmas[stepIndex]);
    const dst = outBuffer(out, sample.length);
    for (let i = 0; i < dst.length; i++) dst[i] = sample[i] + f32(dt * modelOutput[i]);
    return dst;
  }

  /** diffusers' scale_noise: σ·ε + (1 − σ)·x₀ at the step's σ, in float32. */
  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(original, noise, "addNoise");
    const sigma = this.sigmas[stepIndex];
    const keep = f32(1 - sigma);
    const dst = outBuffer(out, original.length);
    for (let i = 0; i < dst.length; i++) dst[i] = f32(sigma * noise[i]) + f32(keep * original[i]);
    return dst;
  }
}
