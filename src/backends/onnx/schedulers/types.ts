/**
 * The scheduler interfaces used by the ONNX diffusion pipeline.
 *
 * Usage (txt2img):
 *   s.setTimesteps(n);
 *   latents = noise × s.initNoiseSigma;
 *   for (let i = 0; i < s.timesteps.length; i++) {
 *     const input = s.scaleModelInput(latents, i);
 *     const out = unet(input, s.timesteps[i]);        // + CFG
 *     latents = s.step(out, i, latents, rng);
 *   }
 * img2img: s.setTimesteps(n, { strength }); latents = s.addNoise(encoded, noise, 0); then the same loop.
 *
 * Step indices are positions in `timesteps` (after any strength cut). Multistep
 * schedulers (PNDM, DPM++ 2M) keep history, so `step` must be called with
 * 0, 1, 2, ... in order; calling with 0 restarts the history.
 */
import type { ResolvedSchedulerConfig, SchedulerClassName } from "./config.js";
import type { NormalRng, SetTimestepsOptions } from "./common.js";

/**
 * What the pipeline's loop needs of any scheduler: the variance-preserving family
 * (BetaScheduler below) and flow matching are peers under it.
 */
export interface Scheduler {
  /** scheduler_config.json `_class_name` of the class that runs. */
  readonly className: string;
  /** The n passed to the last setTimesteps (before any strength cut). */
  readonly numInferenceSteps: number;
  /** The denoiser timestep for each step index (float64; may be fractional). */
  readonly timesteps: Float64Array;
  /** Multiply unit-variance initial noise by this for txt2img. */
  readonly initNoiseSigma: number;

  /** (Re)build the schedule for n steps; `strength` < 1 starts part-way (img2img). Resets history. */
  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void;
  /** The denoiser input for step `stepIndex`. May return `sample` itself when no scaling applies and no `out` is given. */
  scaleModelInput(sample: Float32Array, stepIndex: number, out?: Float32Array): Float32Array;
  /**
   * One denoising update: returns the sample for the next step (a new array, or `out`,
   * which may alias `sample`). `rng` (standard normal) is required by the ancestral
   * schedulers (Euler ancestral, LCM) and ignored by the others.
   */
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, rng?: NormalRng, out?: Float32Array): Float32Array;
  /** Noise a clean latent to the noise level of step `stepIndex` (img2img uses 0). */
  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number, out?: Float32Array): Float32Array;
}

/**
 * The schedulers built on a discrete training β schedule (DDIM, PNDM, LCM, DPM++,
 * Euler): their noise levels come from the ᾱ table.
 */
export interface BetaScheduler extends Scheduler {
  readonly className: SchedulerClassName;
  readonly config: ResolvedSchedulerConfig;
  /** ᾱ_t for t = 0..numTrainTimesteps−1 (float64). */
  readonly alphasCumprod: Float64Array;
}
