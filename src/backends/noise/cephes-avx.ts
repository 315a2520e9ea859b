/**
 * The single-precision log and sincos that PyTorch's AVX2 CPU kernels use
 * (aten/src/ATen/native/cpu/avx_mathfun.h: Cephes polynomials, one lane at
 * a time here), as GCC compiles them with -mfma: every `a·b + c` in them is
 * contracted into one fused multiply-add. That contraction is not in the
 * source; it was found by matching torch 2.15's output bit for bit (the
 * unfused reading differs in ~1% of values).
 */
import { bitsOf, floatOf } from "./float32-bits.js";
import { fmaf } from "./fmaf.js";

const fround = Math.fround;

const SQRT_HALF = fround(0.707106781186547524);
const LOG_POLY = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(fround);
/** ln 2 split in two: a short head (exact products with small exponents) and the tail. */
const LN2_HEAD = fround(0.693359375);
const LN2_TAIL = fround(-2.1219444e-4);
const MIN_NORMAL = floatOf(0x00800000);
const HALF_BITS = bitsOf(0.5);

/** log256_ps for one lane with x > 0 (the noise only asks for x ∈ (0, 1]). */
export function cephesLogf(input: number): number {
  const bits = bitsOf(Math.max(input, MIN_NORMAL));
  let e = fround((bits >>> 23) - 127 + 1);
  let x = floatOf((bits & ~0x7f800000) | HALF_BITS); // mantissa in [0.5, 1)
  // Below √½: use 2x − 1 and one less in the exponent.
  const low = x < SQRT_HALF;
  const extra = low ? x : 0;
  x = fround(x - 1);
  if (low) e = fround(e - 1);
  x = fround(x + extra);
  const z = fround(x * x);
  let y = LOG_POLY[0]!;
  for (let i = 1; i < LOG_POLY.length; i++) y = fmaf(y, x, LOG_POLY[i]!);
  y = fround(y * x);
  y = fmaf(y, z, fround(e * LN2_TAIL));
  y = fmaf(-z, 0.5, y);
  x = fround(x + y);
  return fmaf(e, LN2_HEAD, x);
}

const FOUR_OVER_PI = fround(1.27323954473516);
/** π/4 in three parts for the extended-precision argument reduction. */
const DP1 = fround(-0.78515625);
const DP2 = fround(-2.4187564849853515625e-4);
const DP3 = fround(-3.77489497744594108e-8);
const SIN_POLY = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(fround);
const COS_POLY = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(fround);

/** sincos256_ps for one lane: [sin θ, cos θ]. */
export function cephesSincosf(theta: number): [number, number] {
  let x = Math.abs(theta);
  const negative = theta < 0 || Object.is(theta, -0);
  // Octant j, rounded up to even, and x reduced to [−π/4, π/4] around j·π/4.
  let j = Math.trunc(fround(x * FOUR_OVER_PI)) | 0;
  j = (j + 1) & ~1;
  const y = fround(j);
  x = fmaf(y, DP1, x);
  x = fmaf(y, DP2, x);
  x = fmaf(y, DP3, x);
  const z = fround(x * x);
  let c = fmaf(COS_POLY[0]!, z, COS_POLY[1]!);
  c = fmaf(c, z, COS_POLY[2]!);
  c = fround(c * z);
  c = fmaf(c, z, -fround(z * 0.5));
  c = fround(c + 1);
  let s = fmaf(SIN_POLY[0]!, z, SIN_POLY[1]!);
  s = fmaf(s, z, SIN_POLY[2]!);
  s = fround(s * z);
  s = fmaf(s, x, x);
  // Octants 2, 3, 6, 7 swap the polynomials; signs follow the octant.
  const swap = (j & 2) !== 0;
  const sinValue = swap ? c : s;
  const cosValue = swap ? s : c;
  const sinNegative = negative !== ((j & 4) !== 0);
  const cosNegative = ((~(j - 2)) & 4) !== 0;
  return [sinNegative ? -sinValue : sinValue, cosNegative ? -cosValue : cosValue];
}
