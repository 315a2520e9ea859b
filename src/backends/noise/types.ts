/**
 * Where a request's random numbers come from. One generator serves one
 * request: every draw (initial latents, VAE sampling, ancestral-step noise)
 * goes through it in the reference pipeline's order, so a seed names the
 * same numbers that the reference server would draw.
 */

/** The generators graphserve can reproduce. */
export type NoiseKind =
  /** OVMS / OpenVINO GenAI's `CppStdGenerator` as built on Linux (libstdc++ + glibc). */
  | "mt19937"
  /** `torch.Generator("cpu").manual_seed(seed)` with `torch.randn(..., dtype=float32)`: what a diffusers seed means. */
  | "torch-cpu";

export interface NoiseGenerator {
  /** One call = one GenAI randn_tensor / one torch.randn call of this shape, filled row-major. */
  randn(shape: readonly number[]): Float32Array;
}
