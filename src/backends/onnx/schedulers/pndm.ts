/**
 * PNDM (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds"):
 * PLMS steps, after a Runge–Kutta warm-up unless `skip_prk_steps` (Stable Diffusion
 * configs set it; diffusers' class default is false).
 *
 * The transfer from t to t' = t − ⌊T/n⌋ given a noise estimate ε is
 *   x' = √(ᾱ'/ᾱ)·x − (ᾱ' − ᾱ)·ε / (ᾱ·√(1−ᾱ') + √(ᾱ(1−ᾱ)ᾱ'))
 * and ε is a linear-multistep combination of the stored estimates:
 *   1 estimate (first step):  ε₀                          (x moved t₀ → t₁)
 *   second evaluation:        (ε₀ + ε₁)/2 from the saved x at t₀ to t₁ (trapezoid)
 *   2 stored:  (3ε₋₁ − ε₋₂)/2
 *   3 stored:  (23ε₋₁ − 16ε₋₂ + 5ε₋₃)/12
 *   4 stored:  (55ε₋₁ − 59ε₋₂ + 37ε₋₃ − 9ε₋₄)/24
 * So with grid g₀ > g₁ > … > g_{n−1}, `timesteps` is [g₀, g₁, g₁, g₂, …, g_{n−1}]:
 * the UNet runs n+1 times. With img2img strength, as diffusers does, that list is cut
 * at the strength's start index (duplicate included or not) and the warm-up runs on
 * whatever the cut list starts with.
 *
 * As in diffusers, the stored estimates are the raw model outputs; a v_prediction
 * (or sample) combination is converted to ε at the step's starting point (its x and t).
 */
import type { SchedulerClassName } from "./config.js";
import {
  type NormalRng,
  type SetTimestepsOptions,
  checkNumSteps,
  checkSameLength,
  checkStepIndex,
  outBuffer,
  spacedTimesteps,
  strengthStart,
  vpAddNoise,
  vpPrediction,
} from "./common.js";
import { VpScheduler } from "./vp-scheduler.js";

export class PNDMScheduler extends VpScheduler {
  readonly className: SchedulerClassName = "PNDMScheduler";
  private ratio = 0;
  /** The Runge–Kutta warm-up's timesteps (uncut) and how many steps it takes. */
  private prk: number[] = [];
  private prkCount = 0;
  /** The warm-up's running ⅙, ⅓, ⅓ sum of outputs. */
  private rkSum: Float32Array | null = null;
  /** Stored ε estimates, oldest first (at most 4). */
  private ets: Float32Array[] = [];
  private spare: Float32Array[] = [];
  /** x at the first grid point, kept for the trapezoid correction. */
  private curSample: Float32Array | null = null;
  private nextIndex = 0;

  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void {
    const cfg = this.config;
    checkNumSteps(numInferenceSteps, cfg.numTrainTimesteps);
    const start = strengthStart(numInferenceSteps, options);
    const grid = spacedTimesteps(cfg.numTrainTimesteps, numInferenceSteps, cfg.timestepSpacing, cfg.stepsOffset, true);
    this.ratio = Math.floor(cfg.numTrainTimesteps / numInferenceSteps);
    let ts: number[];
    if (cfg.skipPrkSteps) {
      const m = grid.length;
      ts = m === 1 ? [grid[0]] : [grid[0], grid[1], ...grid.slice(1)];
      this.prkCount = 0;
    } else {
      // The warm-up: three RK4 steps over the last four grid points (ascending) at full and half
      // steps, each point of a step evaluated twice but the ends, as diffusers lays it out.
      const ascending = Array.from(grid).reverse();
      const half = Math.floor(this.ratio / 2);
      const pairs = ascending.slice(-4).flatMap((v) => [v, v + half]).slice(0, -1);
      const prk = pairs.flatMap((v) => [v, v]).slice(1, -1).reverse();
      this.prk = prk;
      this.prkCount = prk.length;
      ts = [...prk, ...ascending.slice(0, -3).reverse()];
    }
    this.timesteps = Float64Array.from(ts).slice(start);
    this.numInferenceSteps = numInferenceSteps;
    this.reset();
  }

  private reset(): void {
    for (const e of this.ets) this.spare.push(e);
    this.ets = [];
    this.curSample = null;
    this.nextIndex = 0;
  }

  private buffer(length: number): Float32Array {
    const b = this.spare.pop();
    return b !== undefined && b.length === length ? b : new Float32Array(length);
  }

  private alphaAt(t: number): number {
    if (t < 0) return this.finalAlphaCumprod;
    return this.alphasCumprod[Math.min(t, this.alphasCumprod.length - 1)];
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, _rng?: NormalRng, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample, "step");
    if (stepIndex === 0) this.reset();
    else if (stepIndex !== this.nextIndex) {
      throw new Error(`PNDMScheduler.step: expected stepIndex ${this.nextIndex} (steps must run in order), got ${stepIndex}`);
    }
    const n = sample.length;
    const t = this.timesteps[stepIndex];

    if (stepIndex < this.prkCount) return this.stepPrk(modelOutput, stepIndex, sample, out);
    const eps = this.buffer(n);
    eps.set(modelOutput);

    let from: number;
    let to: number;
    let x: Float32Array = sample;
    let w: number[];
    let terms: Float32Array[];
    if (stepIndex === 1 && this.prkCount === 0) {
      // Trapezoid correction of the first step: restart from the saved x at t₀.
      const e0 = this.ets[0];
      to = t;
      from = t + this.ratio;
      x = this.curSample as Float32Array;
      w = [0.5, 0.5];
      terms = [e0, eps];
    } else {
      from = t;
      to = t - this.ratio;
      if (this.ets.length === 4) this.spare.push(this.ets.shift() as Float32Array);
      this.ets.push(eps);
      const e = this.ets;
      const k = e.length;
      if (k === 1) w = [1];
      else if (k === 2) w = [-1 / 2, 3 / 2];
      else if (k === 3) w = [5 / 12, -16 / 12, 23 / 12];
      else w = [-9 / 24, 37 / 24, -59 / 24, 55 / 24];
      terms = e;
      if (stepIndex === 0 && this.prkCount === 0) this.curSample = Float32Array.from(sample);
    }

    const { cs, cm } = this.transfer(from, to);
    const dst = outBuffer(out, n);
    const c = terms.map((_, j) => cm * w[j]);
    if (terms.length === 1) {
      const e0 = terms[0];
      const c0 = c[0];
      for (let i = 0; i < n; i++) dst[i] = cs * x[i] + c0 * e0[i];
    } else if (terms.length === 2) {
      const [e0, e1] = terms;
      const [c0, c1] = c;
      for (let i = 0; i < n; i++) dst[i] = cs * x[i] + c0 * e0[i] + c1 * e1[i];
    } else if (terms.length === 3) {
      const [e0, e1, e2] = terms;
      const [c0, c1, c2] = c;
      for (let i = 0; i < n; i++) dst[i] = cs * x[i] + c0 * e0[i] + c1 * e1[i] + c2 * e2[i];
    } else {
      const [e0, e1, e2, e3] = terms;
      const [c0, c1, c2, c3] = c;
      for (let i = 0; i < n; i++) dst[i] = cs * x[i] + c0 * e0[i] + c1 * e1[i] + c2 * e2[i] + c3 * e3[i];
    }
    if (stepIndex === 1) {
      // The second evaluation is not stored; the saved x is no longer needed.
      this.spare.push(eps);
      this.curSample = null;
    }
    this.nextIndex = stepIndex + 1;
    return dst;
  }

  /**
   * x' = cs·x + cm·m moves x from `from` to `to` given a (combined) model output m, converted to ε at
   * `from`: x' = √(ᾱ'/ᾱ)·x − (ᾱ' − ᾱ)·ε / (ᾱ·√(1−ᾱ') + √(ᾱ(1−ᾱ)ᾱ')).
   */
  private transfer(from: number, to: number): { cs: number; cm: number } {
    const a = this.alphaAt(from);
    const ap = this.alphaAt(to);
    const p = vpPrediction(this.config.predictionType, Math.sqrt(a), Math.sqrt(1 - a));
    const ce = (ap - a) / (a * Math.sqrt(1 - ap) + Math.sqrt(a * (1 - a) * ap));
    return { cs: Math.sqrt(ap / a) - ce * p.epsx, cm: -ce * p.epsm };
  }

  /**
   * Runge–Kutta warm-up step k (diffusers' step_prk): within each block of four evaluations the
   * first three move the block's start sample by a half, half and full step with the current
   * output, the fourth with the RK4 combination (⅙, ⅓, ⅓, ⅙). The first output of a block is
   * stored for the PLMS steps that follow.
   */
  private stepPrk(modelOutput: Float32Array, k: number, sample: Float32Array, out?: Float32Array): Float32Array {
    const n = sample.length;
    const t = this.timesteps[k];
    const to = t - (k % 2 ? 0 : Math.floor(this.ratio / 2));
    const from = this.prk[Math.floor(k / 4) * 4];
    let sum = this.rkSum;
    if (sum === null || sum.length !== n) sum = this.rkSum = new Float32Array(n);
    let m: Float32Array = modelOutput;
    switch (k % 4) {
      case 0: {
        for (let i = 0; i < n; i++) sum[i] = modelOutput[i] / 6;
        const e = this.buffer(n);
        e.set(modelOutput);
        this.ets.push(e);
        this.curSample = Float32Array.from(sample);
        break;
      }
      case 1:
      case 2:
        for (let i = 0; i < n; i++) sum[i] += modelOutput[i] / 3;
        break;
      default:
        m = new Float32Array(n);
        for (let i = 0; i < n; i++) m[i] = sum[i] + modelOutput[i] / 6;
    }
    const x = this.curSample ?? sample;
    const { cs, cm } = this.transfer(from, to);
    const dst = outBuffer(out, n);
    for (let i = 0; i < n; i++) dst[i] = cs * x[i] + cm * m[i];
    this.nextIndex = k + 1;
    return dst;
  }

  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    return vpAddNoise(original, noise, this.alphaAt(this.timesteps[stepIndex]), out);
  }
}
