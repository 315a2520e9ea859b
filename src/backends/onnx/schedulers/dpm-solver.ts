/**
 * DPM-Solver++ multistep (Lu et al. 2022), data-prediction form, order 1 or 2
 * ("DPM++ 2M").
 *
 * With σ_t = √((1−ᾱ_t)/ᾱ_t), the VP coefficients are α_t = 1/√(σ²+1) and
 * s_t = σ·α_t, and λ_t = ln α_t − ln s_t = −ln σ_t. For a step s → t with
 * h = λ_t − λ_s (so e^{−h} = σ_t/σ_s):
 *   first order:  x_t = (s_t/s_s)·x − α_t(e^{−h} − 1)·x₀
 *   second order: with r = h_prev/h and D1 = (x₀ − x₀_prev)/r,
 *     midpoint: additionally − ½·α_t(e^{−h} − 1)·D1
 *     heun:     additionally + α_t((e^{−h} − 1)/h + 1)·D1
 * The first step is first order (no history); the last step is first order when
 * final_sigmas_type is "zero" (σ = 0, h = ∞), when euler_at_final, or when
 * lower_order_final and fewer than 15 steps were requested.
 *
 * Timesteps follow diffusers' grid for this class: "linspace" and "leading" space
 * n+1 points and drop the last (10 steps → 999, 899, …, 100 rather than …, 0);
 * "trailing" is as elsewhere. The final σ appended after the last timestep is 0
 * ("zero") or σ at t = 0 ("sigma_min").
 * With use_karras_sigmas ("DPM++ 2M Karras") the σ values follow the Karras ρ = 7
 * ramp over the whole training range (σ at t = 0 … σ at t = T−1); each timestep is
 * the t of its σ, rounded.
 */
import type { SchedulerClassName } from "./config.js";
import {
  type NormalRng,
  type SetTimestepsOptions,
  checkNumSteps,
  checkSameLength,
  checkStepIndex,
  outBuffer,
  karrasSigmas,
  roundHalfEven,
  sigmaAt,
  spacedTimesteps,
  timestepForSigma,
  strengthStart,
  vpAddNoise,
  vpPrediction,
} from "./common.js";
import { VpScheduler } from "./vp-scheduler.js";
import type { TimestepSpacing } from "./config.js";

/** diffusers' DPMSolverMultistep grid (n+1 points, last dropped, for linspace/leading) and its σ values. */
function dpmSchedule(
  alphasCumprod: Float64Array,
  n: number,
  spacing: TimestepSpacing,
  stepsOffset: number,
  karras: boolean,
): { timesteps: Float64Array; sigmas: Float64Array } {
  const T = alphasCumprod.length;
  let grid: Float64Array;
  if (spacing === "trailing") grid = spacedTimesteps(T, n, spacing, stepsOffset, true);
  else {
    grid = new Float64Array(n);
    const ratio = Math.floor(T / (n + 1));
    for (let k = 0; k < n; k++) {
      const i = n - k; // points n … 1 of 0 … n
      grid[k] = spacing === "linspace" ? roundHalfEven(i * ((T - 1) / n)) : i * ratio + stepsOffset;
    }
    if (!(grid[0] <= T - 1)) throw new RangeError(`timestep ${grid[0]} (spacing ${spacing}, steps_offset ${stepsOffset}, ${n} steps) is outside [0, ${T - 1}]`);
  }
  if (!karras) return { timesteps: grid, sigmas: grid.map((t) => sigmaAt(alphasCumprod, t)) };
  const sigmas = karrasSigmas(sigmaAt(alphasCumprod, 0), sigmaAt(alphasCumprod, T - 1), n);
  return { timesteps: sigmas.map((s) => roundHalfEven(timestepForSigma(alphasCumprod, s))), sigmas };
}

export class DPMSolverMultistepScheduler extends VpScheduler {
  readonly className: SchedulerClassName = "DPMSolverMultistepScheduler";
  /** σ per step index, with the final σ appended (length timesteps.length + 1). */
  sigmas = new Float64Array(0);
  /** x₀ of the previous step (valid when hasPrev). */
  private prevX0: Float32Array | null = null;
  private curX0: Float32Array | null = null;
  private hasPrev = false;
  private nextIndex = 0;

  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void {
    const cfg = this.config;
    checkNumSteps(numInferenceSteps, cfg.numTrainTimesteps);
    const start = strengthStart(numInferenceSteps, options);
    const { timesteps: full, sigmas } = dpmSchedule(this.alphasCumprod, numInferenceSteps, cfg.timestepSpacing, cfg.stepsOffset, cfg.useKarrasSigmas);
    const sig = new Float64Array(numInferenceSteps + 1);
    sig.set(sigmas);
    sig[numInferenceSteps] = cfg.finalSigmasType === "zero" ? 0 : sigmaAt(this.alphasCumprod, 0);
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = full.slice(start);
    this.sigmas = sig.slice(start);
    this.hasPrev = false;
    this.nextIndex = 0;
  }

  /** Whether step `stepIndex` uses the first-order update. */
  isFirstOrderStep(stepIndex: number): boolean {
    const cfg = this.config;
    if (cfg.solverOrder === 1 || stepIndex === 0) return true;
    if (stepIndex === this.timesteps.length - 1) {
      return cfg.eulerAtFinal || cfg.finalSigmasType === "zero" || (cfg.lowerOrderFinal && this.numInferenceSteps < 15);
    }
    return false;
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, _rng?: NormalRng, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample, "step");
    if (stepIndex === 0) this.hasPrev = false;
    else if (stepIndex !== this.nextIndex) {
      throw new Error(`DPMSolverMultistepScheduler.step: expected stepIndex ${this.nextIndex} (steps must run in order), got ${stepIndex}`);
    }
    const n = sample.length;
    const sigS = this.sigmas[stepIndex];
    const sigT = this.sigmas[stepIndex + 1];
    const alphaS = 1 / Math.sqrt(sigS * sigS + 1);
    const sS = sigS * alphaS;
    const alphaT = 1 / Math.sqrt(sigT * sigT + 1);
    const sT = sigT * alphaT;

    // x₀ prediction at this step.
    let x0 = this.curX0;
    if (x0 === null || x0.length !== n) x0 = new Float32Array(n);
    const p = vpPrediction(this.config.predictionType, alphaS, sS);
    for (let i = 0; i < n; i++) x0[i] = p.x0x * sample[i] + p.x0m * modelOutput[i];

    const expNegHm1 = sigT / sigS - 1; // e^{−h} − 1
    const A = sT / sS;
    const E = alphaT * expNegHm1;
    const dst = outBuffer(out, n);
    const prev = this.prevX0;
    if (this.isFirstOrderStep(stepIndex) || !this.hasPrev || prev === null || prev.length !== n) {
      for (let i = 0; i < n; i++) dst[i] = A * sample[i] - E * x0[i];
    } else {
      const sigPrev = this.sigmas[stepIndex - 1];
      const h = Math.log(sigS) - Math.log(sigT);
      const hPrev = Math.log(sigPrev) - Math.log(sigS);
      const r = hPrev / h;
      let B: number;
      let C: number;
      if (this.config.solverType === "midpoint") {
        // −E·D0 − ½E·(D0 − D_prev)/r
        B = -E - (0.5 * E) / r;
        C = (0.5 * E) / r;
      } else {
        const F = alphaT * (expNegHm1 / h + 1);
        B = -E + F / r;
        C = -F / r;
      }
      for (let i = 0; i < n; i++) dst[i] = A * sample[i] + B * x0[i] + C * prev[i];
    }
    // Rotate: this x₀ becomes the history.
    this.curX0 = prev;
    this.prevX0 = x0;
    this.hasPrev = true;
    this.nextIndex = stepIndex + 1;
    return dst;
  }

  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    const s = this.sigmas[stepIndex];
    return vpAddNoise(original, noise, 1 / (s * s + 1), out);
  }
}
