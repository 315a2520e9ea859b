/** The noise generators by name: a request's generator is created from its kind and seed. */
import type { Seed } from "./mersenne-twister.js";
import { Mt19937Noise } from "./mt19937.js";
import { TorchCpuNoise } from "./torch-cpu.js";
import type { NoiseGenerator, NoiseKind } from "./types.js";

export type { Seed } from "./mersenne-twister.js";
export type { NoiseGenerator, NoiseKind } from "./types.js";

const FACTORIES: Readonly<Record<NoiseKind, (seed: Seed) => NoiseGenerator>> = {
  mt19937: (seed) => new Mt19937Noise(seed),
  "torch-cpu": (seed) => new TorchCpuNoise(seed),
};

/** Every kind, for option validation and messages. */
export const NOISE_KINDS = Object.keys(FACTORIES) as NoiseKind[];

/** The default: OVMS's generator, so a seed gives OVMS's (Linux) initial noise. */
export const DEFAULT_NOISE_KIND: NoiseKind = "mt19937";

export function isNoiseKind(name: string): name is NoiseKind {
  return Object.hasOwn(FACTORIES, name);
}

/** A fresh generator for one request. */
export function createNoiseGenerator(kind: NoiseKind, seed: Seed): NoiseGenerator {
  return FACTORIES[kind](seed);
}
