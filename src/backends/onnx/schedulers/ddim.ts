/**
 * DDIM (Song et al. 2021), deterministic (η = 0):
 *   x_prev = √ᾱ_prev·x₀ + √(1−ᾱ_prev)·ε
 * with x₀, ε predicted from the model output, and prev t = t − ⌊T/n⌋
 * (ᾱ_prev = 1 or ᾱ_0 below t = 0, per set_alpha_to_one).
 */
import type { SchedulerClassName } from "./config.js";
import {
  type NormalRng,
  type SetTimestepsOptions,
  checkNumSteps,
  checkSameLength,
  checkStepIndex,
  lincomb,
  outBuffer,
  spacedTimesteps,
  strengthStart,
  vpAddNoise,
  vpPrediction,
} from "./common.js";
import { VpScheduler } from "./vp-scheduler.js";

export class DDIMScheduler extends VpScheduler {
  readonly className: SchedulerClassName = "DDIMScheduler";
  /** The timestep each step lands on (t − ⌊T/n⌋; negative = past the end). */
  prevTimesteps = new Float64Array(0);

  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void {
    const cfg = this.config;
    checkNumSteps(numInferenceSteps, cfg.numTrainTimesteps);
    const start = strengthStart(numInferenceSteps, options);
    const full = spacedTimesteps(cfg.numTrainTimesteps, numInferenceSteps, cfg.timestepSpacing, cfg.stepsOffset, true);
    const ratio = Math.floor(cfg.numTrainTimesteps / numInferenceSteps);
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = full.slice(start);
    this.prevTimesteps = this.timesteps.map((t) => t - ratio);
  }

  alphaCumprodAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, _rng?: NormalRng, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample, "step");
    const at = this.alphasCumprod[this.timesteps[stepIndex]];
    const ap = this.alphaCumprodAt(this.prevTimesteps[stepIndex]);
    const p = vpPrediction(this.config.predictionType, Math.sqrt(at), Math.sqrt(1 - at));
    const sa = Math.sqrt(ap);
    const sb = Math.sqrt(1 - ap);
    const dst = outBuffer(out, sample.length);
    if (!this.config.clipSample) {
      return lincomb(dst, sa * p.x0x + sb * p.epsx, sample, sa * p.x0m + sb * p.epsm, modelOutput);
    }
    // Clamp x₀ only; ε stays the model's prediction.
    const r = this.config.clipSampleRange;
    const n = dst.length;
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      let x0 = p.x0x * x + p.x0m * m;
      if (x0 > r) x0 = r;
      else if (x0 < -r) x0 = -r;
      dst[i] = sa * x0 + sb * (p.epsx * x + p.epsm * m);
    }
    return dst;
  }

  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    return vpAddNoise(original, noise, this.alphasCumprod[this.timesteps[stepIndex]], out);
  }
}
