/**
 * IEEE binary16 ⇄ float32 for the tensors of fp16 ONNX exports (onnxruntime-node
 * carries float16 data as Uint16Array bit patterns on Node versions without Float16Array).
 */
import * as ort from "onnxruntime-node";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits nearest to `x` (round to nearest, ties to even; overflow → ±Inf; NaN kept). */
export function float16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero) in binary16.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  let h = sign | (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is still correct
  return h;
}

/** The float value of binary16 bits `h`. */
export function float16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export type FloatType = "float32" | "float16";

/** A float tensor of the type a model input declares, from float32 data. */
export function floatTensor(type: FloatType, data: Float32Array, dims: readonly number[]): ort.Tensor {
  if (type === "float32") return new ort.Tensor("float32", data, dims);
  const bits = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) bits[i] = float16Bits(data[i]);
  return new ort.Tensor("float16", bits, dims);
}

/** A float32 or float16 output as float32 data. */
export function float32Data(t: ort.Tensor): Float32Array {
  if (t.type === "float32") return t.data as Float32Array;
  if (t.type !== "float16") throw new TypeError(`expected a float32 or float16 tensor, got ${t.type}`);
  const src = t.data as ArrayLike<number>;
  const out = new Float32Array(src.length);
  if (src instanceof Uint16Array) for (let i = 0; i < src.length; i++) out[i] = float16Value(src[i]);
  else out.set(src); // a Float16Array, where the runtime has one
  return out;
}
