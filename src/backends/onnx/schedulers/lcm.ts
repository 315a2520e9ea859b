/**
 * Latent Consistency Model multistep sampling (Luo et al. 2023).
 *
 * Timesteps come from an "origin" grid of `original_inference_steps` points
 * (k = ⌊T/orig⌋; grid = k·i − 1 for i = 1..orig). n of them are picked, descending,
 * at indices ⌊j·L/n⌋ (j = 0..n−1) of the reversed grid of length L.
 * With img2img strength, the grid is first cut to its first L = ⌊orig·strength⌋
 * points, and n steps are still taken from it.
 *
 * timestep_spacing and steps_offset do not apply to this class.
 *
 * Step, with s = timestep_scaling·t and σ_data = 0.5:
 *   c_skip = σ_data²/(s² + σ_data²),  c_out = s/√(s² + σ_data²)
 *   denoised = c_out·x₀ + c_skip·x
 *   x_prev = √ᾱ_prev·denoised + √(1−ᾱ_prev)·z   (z fresh noise; the last step returns denoised)
 */
import type { SchedulerClassName } from "./config.js";
import {
  type NormalRng,
  type SetTimestepsOptions,
  checkNumSteps,
  checkSameLength,
  checkStepIndex,
  lincomb,
  lincombNoise,
  outBuffer,
  requireRng,
  vpAddNoise,
  vpPrediction,
} from "./common.js";
import { VpScheduler } from "./vp-scheduler.js";

const SIGMA_DATA = 0.5;

export class LCMScheduler extends VpScheduler {
  readonly className: SchedulerClassName = "LCMScheduler";

  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void {
    const cfg = this.config;
    const orig = cfg.originalInferenceSteps;
    checkNumSteps(numInferenceSteps, orig, "original_inference_steps");
    const strength = options?.strength ?? 1;
    if (typeof strength !== "number" || !(strength > 0 && strength <= 1)) {
      throw new RangeError(`strength must be a number in (0, 1]; got ${strength}`);
    }
    const k = Math.floor(cfg.numTrainTimesteps / orig);
    const L = Math.floor(orig * strength);
    if (numInferenceSteps > L) {
      throw new RangeError(
        `LCMScheduler: ${numInferenceSteps} steps exceed the ${L} origin timesteps left by strength ${strength} (original_inference_steps ${orig})`,
      );
    }
    const ts = new Float64Array(numInferenceSteps);
    for (let j = 0; j < numInferenceSteps; j++) {
      const idx = Math.floor((j * L) / numInferenceSteps); // index into the descending origin grid
      ts[j] = (L - idx) * k - 1;
    }
    this.timesteps = ts;
    this.numInferenceSteps = numInferenceSteps;
  }

  /** The (c_skip, c_out) boundary-condition scalings at timestep t. */
  boundaryScalings(t: number): { cSkip: number; cOut: number } {
    const s = t * this.config.timestepScaling;
    const d2 = SIGMA_DATA * SIGMA_DATA;
    return { cSkip: d2 / (s * s + d2), cOut: s / Math.sqrt(s * s + d2) };
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, rng?: NormalRng, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample, "step");
    const last = stepIndex === this.timesteps.length - 1;
    const t = this.timesteps[stepIndex];
    const prevT = last ? t : this.timesteps[stepIndex + 1];
    const at = this.alphasCumprod[t];
    const ap = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const p = vpPrediction(this.config.predictionType, Math.sqrt(at), Math.sqrt(1 - at));
    const { cSkip, cOut } = this.boundaryScalings(t);
    const sa = last ? 1 : Math.sqrt(ap);
    const sn = last ? 0 : Math.sqrt(1 - ap);
    const noiseRng = last ? undefined : requireRng(rng, this.className);
    const dst = outBuffer(out, sample.length);
    if (!this.config.clipSample) {
      const a = sa * (cOut * p.x0x + cSkip);
      const b = sa * cOut * p.x0m;
      return noiseRng ? lincombNoise(dst, a, sample, b, modelOutput, sn, noiseRng) : lincomb(dst, a, sample, b, modelOutput);
    }
    const r = this.config.clipSampleRange;
    const n = dst.length;
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      let x0 = p.x0x * x + p.x0m * modelOutput[i];
      if (x0 > r) x0 = r;
      else if (x0 < -r) x0 = -r;
      const den = cOut * x0 + cSkip * x;
      dst[i] = noiseRng ? sa * den + sn * noiseRng() : den;
    }
    return dst;
  }

  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    return vpAddNoise(original, noise, this.alphasCumprod[this.timesteps[stepIndex]], out);
  }
}
