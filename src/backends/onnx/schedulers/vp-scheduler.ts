/**
 * What the variance-preserving schedulers (DDIM, PNDM, LCM, DPM++) share:
 * the ᾱ table, unit initial noise, and a UNet input that is the sample itself.
 */
import type { ResolvedSchedulerConfig, SchedulerClassName } from "./config.js";
import { type NormalRng, type SetTimestepsOptions, makeAlphasCumprod, unscaledModelInput } from "./common.js";
import type { BetaScheduler } from "./types.js";

export abstract class VpScheduler implements BetaScheduler {
  abstract readonly className: SchedulerClassName;
  readonly alphasCumprod: Float64Array;
  /** ᾱ used past the end of the schedule (1 with set_alpha_to_one, else ᾱ_0). */
  readonly finalAlphaCumprod: number;
  readonly initNoiseSigma = 1;
  numInferenceSteps = 0;
  timesteps = new Float64Array(0);

  constructor(readonly config: ResolvedSchedulerConfig) {
    this.alphasCumprod = makeAlphasCumprod(config);
    this.finalAlphaCumprod = config.setAlphaToOne ? 1 : this.alphasCumprod[0];
  }

  scaleModelInput(sample: Float32Array, stepIndex: number, out?: Float32Array): Float32Array {
    return unscaledModelInput(sample, stepIndex, this.timesteps.length, out);
  }

  abstract setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void;
  abstract step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, rng?: NormalRng, out?: Float32Array): Float32Array;
  abstract addNoise(original: Float32Array, noise: Float32Array, stepIndex: number, out?: Float32Array): Float32Array;
}
