/**
 * MT19937, the 32-bit Mersenne Twister, as std::mt19937 and PyTorch's
 * at::mt19937 define it. Both generators graphserve reproduces are built on
 * it; both seed it with the seed reduced mod 2^32.
 */

const N = 624;
const M = 397;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;
const MATRIX_A = 0x9908b0df;

/** A seed as requests carry it: an integer in [0, 2^64). */
export type Seed = number | bigint;

const SEED_END = 2n ** 64n;

/** `seed mod 2^32`, what std::mt19937::seed and at::mt19937 keep of a 64-bit seed. */
export function low32(seed: Seed): number {
  const exact = Number.isInteger(seed) || typeof seed === "bigint" ? BigInt(seed) : -1n;
  if (exact < 0n || exact >= SEED_END) throw new RangeError(`seed must be an integer in [0, 2^64), got ${seed}`);
  return Number(BigInt.asUintN(32, exact));
}

export class MersenneTwister {
  private readonly state = new Uint32Array(N);
  private index = N;

  constructor(seed: Seed) {
    const s = this.state;
    s[0] = low32(seed);
    for (let i = 1; i < N; i++) {
      const prev = s[i - 1]!;
      s[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
  }

  /** The next 32-bit output, in [0, 2^32). */
  next(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < N; i++) {
      const y = (s[i]! & UPPER) | (s[(i + 1) % N]! & LOWER);
      s[i] = s[(i + M) % N]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }
}
