/**
 * Euler and Euler-ancestral samplers in the k-diffusion parameterisation
 * (Karras et al. 2022): the state is x = x₀ + σ·ε with σ_t = √((1−ᾱ_t)/ᾱ_t),
 * the UNet sees x/√(σ²+1), and one step is x ← x + (σ_next − σ)·d with
 * d = (x − x₀)/σ. The ancestral variant splits σ_next into a deterministic part
 * σ_down and fresh noise σ_up (σ_down² + σ_up² = σ_next²).
 * With use_karras_sigmas the σ values follow the Karras ρ = 7 ramp between the
 * schedule's end points and the timesteps become the (fractional) t of each σ.
 */
import type { ResolvedSchedulerConfig, SchedulerClassName } from "./config.js";
import {
  type NormalRng,
  type SetTimestepsOptions,
  checkNumSteps,
  checkSameLength,
  checkStepIndex,
  lincomb,
  lincombNoise,
  makeAlphasCumprod,
  outBuffer,
  requireRng,
  scale,
  sigmaAt,
  sigmaSchedule,
  spacedTimesteps,
  strengthStart,
} from "./common.js";
import type { BetaScheduler } from "./types.js";

export class EulerDiscreteScheduler implements BetaScheduler {
  readonly className: SchedulerClassName;
  readonly alphasCumprod: Float64Array;
  numInferenceSteps = 0;
  timesteps = new Float64Array(0);
  /** σ for each step index, with the final σ appended (length timesteps.length + 1). */
  sigmas = new Float64Array(0);
  initNoiseSigma = 1;

  constructor(
    readonly config: ResolvedSchedulerConfig,
    readonly ancestral = config.className === "EulerAncestralDiscreteScheduler",
  ) {
    this.className = config.className;
    this.alphasCumprod = makeAlphasCumprod(config);
  }

  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void {
    const cfg = this.config;
    checkNumSteps(numInferenceSteps, cfg.numTrainTimesteps);
    const start = strengthStart(numInferenceSteps, options);
    // linspace timesteps are left fractional; σ is interpolated linearly in t.
    const grid = spacedTimesteps(cfg.numTrainTimesteps, numInferenceSteps, cfg.timestepSpacing, cfg.stepsOffset, false);
    const { timesteps: full, sigmas } = sigmaSchedule(this.alphasCumprod, grid, cfg.useKarrasSigmas);
    const sig = new Float64Array(numInferenceSteps + 1);
    sig.set(sigmas);
    // EulerDiscrete ends at final_sigmas_type's σ; EulerAncestral always at 0.
    sig[numInferenceSteps] = !this.ancestral && cfg.finalSigmasType === "sigma_min" ? sigmaAt(this.alphasCumprod, 0) : 0;
    let maxSigma = 0;
    for (let k = 0; k < numInferenceSteps; k++) if (sig[k] > maxSigma) maxSigma = sig[k];
    this.initNoiseSigma = cfg.timestepSpacing === "leading" ? Math.sqrt(maxSigma * maxSigma + 1) : maxSigma;
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = full.slice(start);
    this.sigmas = sig.slice(start);
  }

  scaleModelInput(sample: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    const s = this.sigmas[stepIndex];
    return scale(outBuffer(out, sample.length), 1 / Math.sqrt(s * s + 1), sample);
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, rng?: NormalRng, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample, "step");
    const sigma = this.sigmas[stepIndex];
    const sigmaNext = this.sigmas[stepIndex + 1];
    // Predicted x₀ = cx·x + cm·m in k-diffusion space (x unscaled, UNet saw x/√(σ²+1)).
    let cx: number;
    let cm: number;
    switch (this.config.predictionType) {
      case "epsilon":
        cx = 1;
        cm = -sigma;
        break;
      case "v_prediction":
        cx = 1 / (sigma * sigma + 1);
        cm = -sigma / Math.sqrt(sigma * sigma + 1);
        break;
      case "sample":
        cx = 0;
        cm = 1;
        break;
    }
    let target = sigmaNext;
    let sigmaUp = 0;
    if (this.ancestral) {
      sigmaUp = Math.sqrt((sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext)) / (sigma * sigma));
      target = Math.sqrt(sigmaNext * sigmaNext - sigmaUp * sigmaUp); // σ_down
    }
    // x + dt·d with d = (x − x₀)/σ = ((1 − cx)·x − cm·m)/σ.
    const dt = target - sigma;
    const a = 1 + (dt * (1 - cx)) / sigma;
    const b = (-dt * cm) / sigma;
    const dst = outBuffer(out, sample.length);
    // The ancestral step draws its noise on every step, the last (σ_up = 0) included, as diffusers does.
    if (this.ancestral) return lincombNoise(dst, a, sample, b, modelOutput, sigmaUp, requireRng(rng, this.className));
    return lincomb(dst, a, sample, b, modelOutput);
  }

  /** x₀ + σ·ε at the step's σ. */
  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(original, noise, "addNoise");
    return lincomb(outBuffer(out, original.length), 1, original, this.sigmas[stepIndex], noise);
  }
}
