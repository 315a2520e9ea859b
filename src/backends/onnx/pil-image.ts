/**
 * The two PIL operations diffusers' VaeImageProcessor applies to input images and
 * masks, reproduced on u8 pixels: `Image.resize(..., LANCZOS)` (Pillow's separable
 * resampling with 22-bit fixed-point coefficients, horizontal pass first) and
 * `convert("L")` (ITU-R 601-2 luma in 16-bit fixed point).
 */
import type { RgbImage } from "../types.js";

/** u8 pixels with `channels` interleaved values each. */
interface Pixels {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: Uint8Array;
}

const PRECISION_BITS = 32 - 8 - 2;
const LANCZOS_SUPPORT = 3;

function sinc(x: number): number {
  if (x === 0) return 1;
  const a = x * Math.PI;
  return Math.sin(a) / a;
}

function lanczos(x: number): number {
  return x >= -LANCZOS_SUPPORT && x < LANCZOS_SUPPORT ? sinc(x) * sinc(x / LANCZOS_SUPPORT) : 0;
}

/** Per output position: the first input index and the fixed-point weights. */
function coefficients(inSize: number, outSize: number): { start: Int32Array; weights: Int32Array[] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = LANCZOS_SUPPORT * filterScale;
  const start = new Int32Array(outSize);
  const weights: Int32Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w = new Float64Array(hi - lo);
    let sum = 0;
    for (let x = lo; x < hi; x++) sum += w[x - lo] = lanczos((x - center + 0.5) / filterScale);
    const fixed = new Int32Array(w.length);
    for (let j = 0; j < w.length; j++) {
      const k = sum !== 0 ? w[j] / sum : w[j];
      fixed[j] = Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
    }
    start[o] = lo;
    weights.push(fixed);
  }
  return { start, weights };
}

function clip8(acc: number): number {
  const v = Math.floor(acc / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One resampling pass along x (horizontal) or y. */
function pass(src: Pixels, outSize: number, horizontal: boolean): Pixels {
  const { width, height, channels: ch, data } = src;
  const { start, weights } = coefficients(horizontal ? width : height, outSize);
  const ow = horizontal ? outSize : width;
  const oh = horizontal ? height : outSize;
  const out = new Uint8Array(ow * oh * ch);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const o = horizontal ? x : y;
      const w = weights[o];
      for (let c = 0; c < ch; c++) {
        // Integer accumulation stays below 2^53, so float64 sums are exact.
        let acc = 1 << (PRECISION_BITS - 1);
        for (let j = 0; j < w.length; j++) {
          const i = start[o] + j;
          acc += data[((horizontal ? y : i) * width + (horizontal ? i : x)) * ch + c] * w[j];
        }
        out[(y * ow + x) * ch + c] = clip8(acc);
      }
    }
  }
  return { width: ow, height: oh, channels: ch, data: out };
}

/** Pillow's `resize((width, height), Image.LANCZOS)` (the input itself when the size matches). */
export function resizeLanczos<T extends Pixels>(img: T, width: number, height: number): Pixels {
  let out: Pixels = img;
  if (width !== img.width) out = pass(out, width, true);
  if (height !== img.height) out = pass(out, height, false);
  return out;
}

/** RGB → Pillow's "L": (R·19595 + G·38470 + B·7471 + 2^15) >> 16. */
export function grayscaleL(img: RgbImage): Pixels {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) out[i] = (d[i * 3] * 19595 + d[i * 3 + 1] * 38470 + d[i * 3 + 2] * 7471 + 0x8000) >>> 16;
  return { width: img.width, height: img.height, channels: 1, data: out };
}

/** An RGB image resized as diffusers' image processor resizes it. */
export function resizeRgbLanczos(img: RgbImage, width: number, height: number): RgbImage {
  const { data } = resizeLanczos({ ...img, channels: 3 }, width, height);
  return { width, height, data };
}
