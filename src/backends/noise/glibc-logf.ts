/**
 * glibc's `logf` (2.27 and later), bit for bit: a 16-entry table lookup and a
 * degree-4 polynomial evaluated in binary64, then rounded to float. It is not
 * correctly rounded, so `Math.fround(Math.log(x))` differs from it on about
 * 0.02% of inputs, and every value of OVMS's noise passes through it.
 * The constants are glibc's (sysdeps/ieee754/flt-32/e_logf_data.c), written
 * here as the shortest decimals that round-trip to the same doubles.
 */
import { bitsOf, floatOf } from "./float32-bits.js";

/** 1/c for the 16 subintervals of the reduced argument z ∈ [0.69921875, 1.3984375) (bits OFF to OFF + 2^23). */
const INV_C = [
  1.398907162146528, 1.3403141896637998, 1.286432210124115, 1.2367150214269895,
  1.1906977166711752, 1.1479821020556429, 1.1082251448272158, 1.0711297413057381,
  1.036437278977283, 1.0, 0.9492859795739057, 0.8951049428609004,
  0.8476821620351103, 0.8050314851692001, 0.7664671008843108, 0.731428603316328,
];
/** log(c) for the same subintervals. */
const LOG_C = [
  -0.33569133332882284, -0.2929040563774074, -0.2518726580937369, -0.21245868807117255,
  -0.17453945183745634, -0.1380057072319758, -0.10275976698545139, -0.06871392447020525,
  -0.0357891387398228, 0.0, 0.05204517742929496, 0.11081431298787942,
  0.1652495223695143, 0.21687389031699977, 0.2659635028121397, 0.3127556664073557,
];
const LN2 = 0.6931471805599453;
/** log1p(r) ≈ r + A2·r² + A1·r³ + A0·r⁴, evaluated in glibc's order (A2 ≈ −1/2, A1 ≈ 1/3, A0 ≈ −1/4). */
const A0 = -0.25089342214237154;
const A1 = 0.333456765744066;
const A2 = -0.4999997485802103;
const OFF = 0x3f330000;

/** glibc logf(x) for a float32 `x`; the result is a float32 value. */
export function glibcLogf(x: number): number {
  let ix = bitsOf(x);
  if (ix === 0x3f800000) return 0;
  if (((ix - 0x00800000) >>> 0) >= 0x7f800000 - 0x00800000) {
    // Zero, subnormal, negative, infinite or NaN.
    if ((ix & 0x7fffffff) === 0) return -Infinity;
    if (ix === 0x7f800000) return Infinity;
    if (ix & 0x80000000 || ix >= 0x7f800000) return NaN;
    // Subnormal: scale into the normal range and take the exponent back.
    ix = (bitsOf(Math.fround(x * 2 ** 23)) - (23 << 23)) >>> 0;
  }
  const tmp = (ix - OFF) >>> 0;
  const i = (tmp >>> 19) & 15;
  const k = (tmp | 0) >> 23;
  const z = floatOf(ix - (tmp & 0xff800000));
  const r = z * INV_C[i]! - 1;
  const y0 = LOG_C[i]! + k * LN2;
  const r2 = r * r;
  let y = A1 * r + A2;
  y = A0 * r2 + y;
  y = y * r2 + (y0 + r);
  return Math.fround(y);
}
