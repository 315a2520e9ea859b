/**
 * Single-precision fused multiply-add, fmaf(a, b, c) = round32(a·b + c) with
 * one rounding, for float32 operands. The product is exact in binary64
 * (24 + 24 bits); the sum is rounded to binary64 first, and its exact error
 * (TwoSum) decides the one case where that double rounding could go wrong:
 * a binary64 sum lying exactly halfway between two floats.
 */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = Math.fround(s);
  if (r === s) return r;
  const bv = s - p;
  const err = p - (s - bv) + (c - bv);
  if (err === 0) return r;
  const other = 2 * s - r; // the float on the other side of s, if s is a midpoint
  if (Math.fround(other) !== other) return r;
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}
