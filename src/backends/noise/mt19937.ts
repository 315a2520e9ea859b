/**
 * OVMS's noise: OpenVINO GenAI's `CppStdGenerator` as built on Linux, i.e.
 * `std::normal_distribution<float>` over `std::mt19937` from libstdc++
 * (GCC ≤ 15), with glibc's logf. Every request in OVMS gets a fresh one
 * seeded with `rng_seed`, and each `randn_tensor` call fills its tensor
 * row-major with one normal per element.
 *
 * libstdc++'s normal_distribution is Marsaglia's polar method in float:
 * each accepted pair returns the second coordinate's value first and keeps
 * the first one for the next call (across randn calls, too). Every float
 * operation is mirrored with Math.fround: float operands never double-round
 * through binary64 for + − × ÷ and sqrt, so this is exact.
 */
import { glibcLogf } from "./glibc-logf.js";
import { MersenneTwister, type Seed } from "./mersenne-twister.js";
import type { NoiseGenerator } from "./types.js";
import { elementCount } from "./shape.js";

const fround = Math.fround;
/** The largest float below 1: libstdc++'s generate_canonical clamps to it. */
const BELOW_ONE = 1 - 2 ** -24;

export class Mt19937Noise implements NoiseGenerator {
  private readonly engine: MersenneTwister;
  /** The polar method's second value, waiting for the next call. */
  private saved: number | undefined;

  constructor(seed: Seed) {
    this.engine = new MersenneTwister(seed);
  }

  randn(shape: readonly number[]): Float32Array {
    const out = new Float32Array(elementCount(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.next();
    return out;
  }

  /** One `std::normal_distribution<float>(0, 1)` draw. */
  next(): number {
    if (this.saved !== undefined) {
      const value = this.saved;
      this.saved = undefined;
      return value;
    }
    let x: number, y: number, r2: number;
    do {
      x = fround(2 * this.canonical() - 1);
      y = fround(2 * this.canonical() - 1);
      r2 = fround(fround(x * x) + fround(y * y));
    } while (r2 > 1 || r2 === 0);
    const mult = fround(Math.sqrt(fround(fround(-2 * glibcLogf(r2)) / r2)));
    // `ret * stddev + mean` with (1, 0): the + 0 turns −0 into +0.
    this.saved = fround(x * mult) + 0;
    return fround(y * mult) + 0;
  }

  /** `std::generate_canonical<float, 24>`: one engine output, rounded to float, over 2^32. */
  private canonical(): number {
    const c = fround(this.engine.next()) / 2 ** 32;
    return c >= 1 ? BELOW_ONE : c;
  }
}
