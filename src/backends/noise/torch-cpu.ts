/**
 * PyTorch's CPU generator: `torch.Generator("cpu").manual_seed(seed)` and
 * `torch.randn(shape, generator=g, dtype=torch.float32)`, what a seed means
 * to diffusers users. Reproduced bit for bit as torch 2.x runs it on x86-64
 * with AVX2 (or AVX-512, which dispatches the same kernel):
 *
 * - numel ≥ 16: every slot first gets a uniform `(u32 & 0xffffff)·2^-24`;
 *   then each block of 16 becomes 8 Box–Muller pairs in float (Cephes
 *   log/sincos, see cephes-avx.ts). If numel % 16 ≠ 0 the last 16 slots are
 *   refilled with fresh uniforms and transformed again.
 * - numel < 16: one double-precision Box–Muller normal per element, each pair
 *   giving r·cos θ now and keeping r·sin θ in the generator for the next one.
 *
 * Torch's scalar kernel (ARM, x86 without AVX2) rounds differently in the
 * last bits for about 40% of the values; that one is not reproduced.
 */
import { cephesLogf, cephesSincosf } from "./cephes-avx.js";
import { MersenneTwister, type Seed } from "./mersenne-twister.js";
import { elementCount } from "./shape.js";
import type { NoiseGenerator } from "./types.js";

const fround = Math.fround;
/** `2.0f * c10::pi<double>` as a float. */
const TWO_PI_F = fround(2 * Math.PI);

export class TorchCpuNoise implements NoiseGenerator {
  private readonly engine: MersenneTwister;
  /** The second value of the last double Box–Muller pair (at::CPUGeneratorImpl's next_double_normal_sample). */
  private savedNormal: number | undefined;

  constructor(seed: Seed) {
    this.engine = new MersenneTwister(seed);
  }

  randn(shape: readonly number[]): Float32Array {
    const n = elementCount(shape);
    const out = new Float32Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) out[i] = this.normalDouble();
      return out;
    }
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= n; i += 16) boxMuller16(out, i);
    if (n % 16 !== 0) {
      for (let i = n - 16; i < n; i++) out[i] = this.uniformFloat();
      boxMuller16(out, n - 16);
    }
    return out;
  }

  /** at::uniform_real_distribution<float>(0, 1): the low 24 bits of one output. */
  private uniformFloat(): number {
    return (this.engine.next() & 0xffffff) * 2 ** -24;
  }

  /** at::uniform_real_distribution<double>(0, 1): 53 bits of a 64-bit draw (first output high). */
  private uniformDouble(): number {
    const high = this.engine.next() & 0x1fffff;
    const low = this.engine.next();
    return (high * 2 ** 32 + low) * 2 ** -53;
  }

  /** at::normal_distribution<double>(0, 1), as the scalar kernel draws it. */
  private normalDouble(): number {
    if (this.savedNormal !== undefined) {
      const value = this.savedNormal;
      this.savedNormal = undefined;
      return value + 0;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.savedNormal = r * Math.sin(theta);
    return r * Math.cos(theta) + 0;
  }
}

/** Eight Box–Muller pairs in place: slots j and j+8 of the block at `offset` hold uniforms u1' and u2. */
export function boxMuller16(data: Float32Array, offset: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = fround(1 - data[offset + j]!); // (0, 1] for the log
    const u2 = data[offset + j + 8]!;
    const radius = fround(Math.sqrt(fround(-2 * cephesLogf(u1))));
    const [sin, cos] = cephesSincosf(fround(TWO_PI_F * u2));
    // `fmadd(n, std, mean)` with (1, 0): the + 0 turns −0 into +0.
    data[offset + j] = fround(radius * cos) + 0;
    data[offset + j + 8] = fround(radius * sin) + 0;
  }
}
