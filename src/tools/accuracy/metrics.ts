/**
 * Full-reference image similarity metrics, dependency-free:
 *
 * - PSNR over all RGB samples of two 8-bit images (peak 255):
 *   10·log10(255² / MSE); `Infinity` when the images are identical.
 * - SSIM as defined by Wang, Bovik, Sheikh and Simoncelli (2004), "Image
 *   quality assessment: from error visibility to structural similarity",
 *   with the parameters of their reference implementation: computed on
 *   luminance Y = 0.299R + 0.587G + 0.114B, an 11×11 Gaussian window with
 *   σ = 1.5 (normalised to sum 1), K1 = 0.01, K2 = 0.03, L = 255, and the mean
 *   of the SSIM map over the "valid" windows (those lying entirely inside the
 *   image, i.e. no padding), as MATLAB's `ssim_index` does with
 *   `filter2(..., 'valid')`. No downsampling is applied.
 *
 * Images are interleaved 8-bit samples (`channels` per pixel, row-major), as
 * sharp's `.raw()` gives them.
 */

/** An interleaved 8-bit image. */
export interface RawImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

function checkSameShape(a: RawImage, b: RawImage): void {
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) {
    throw new Error(`images differ in shape: ${a.width}x${a.height}x${a.channels} vs ${b.width}x${b.height}x${b.channels}`);
  }
  const n = a.width * a.height * a.channels;
  if (a.data.length !== n || b.data.length !== n) throw new Error(`image data length does not match ${a.width}x${a.height}x${a.channels}`);
}

/** Mean squared error over every sample of two same-shaped images. */
export function mse(a: RawImage, b: RawImage): number {
  checkSameShape(a, b);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i] - b.data[i];
    sum += d * d;
  }
  return sum / a.data.length;
}

/** Peak signal-to-noise ratio in dB (peak 255); `Infinity` for identical images. */
export function psnr(a: RawImage, b: RawImage, peak = 255): number {
  const e = mse(a, b);
  return e === 0 ? Infinity : 10 * Math.log10((peak * peak) / e);
}

/** ITU-R BT.601 luma of an RGB(A) image as float64 (a 1-channel image is returned as is). */
export function luminance(img: RawImage): Float64Array {
  const n = img.width * img.height;
  const out = new Float64Array(n);
  if (img.channels === 1 || img.channels === 2) {
    for (let i = 0; i < n; i++) out[i] = img.data[i * img.channels];
    return out;
  }
  for (let i = 0, j = 0; i < n; i++, j += img.channels) out[i] = 0.299 * img.data[j] + 0.587 * img.data[j + 1] + 0.114 * img.data[j + 2];
  return out;
}

/** The normalised 1-D Gaussian of `size` taps (the 2-D window is its outer product). */
export function gaussianKernel1d(size = 11, sigma = 1.5): Float64Array {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) sum += k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

export interface SsimOptions {
  readonly windowSize?: number;
  readonly sigma?: number;
  readonly k1?: number;
  readonly k2?: number;
  /** Dynamic range L (255 for 8-bit). */
  readonly dynamicRange?: number;
}

/** Separable "valid" filtering: out has (w−s+1)×(h−s+1) values. */
function filterValid(x: Float64Array, w: number, h: number, k: Float64Array): Float64Array {
  const s = k.length;
  const ow = w - s + 1;
  const oh = h - s + 1;
  const rows = new Float64Array(ow * h);
  for (let y = 0; y < h; y++) {
    for (let ox = 0; ox < ow; ox++) {
      let acc = 0;
      const base = y * w + ox;
      for (let i = 0; i < s; i++) acc += k[i] * x[base + i];
      rows[y * ow + ox] = acc;
    }
  }
  const out = new Float64Array(ow * oh);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      let acc = 0;
      for (let i = 0; i < s; i++) acc += k[i] * rows[(oy + i) * ow + ox];
      out[oy * ow + ox] = acc;
    }
  }
  return out;
}

/**
 * SSIM of two single-channel float images of the same size (e.g. from `luminance`):
 * the mean of the SSIM map over every valid window position.
 */
export function ssimGray(x: Float64Array, y: Float64Array, width: number, height: number, opts: SsimOptions = {}): number {
  const size = opts.windowSize ?? 11;
  const L = opts.dynamicRange ?? 255;
  const c1 = ((opts.k1 ?? 0.01) * L) ** 2;
  const c2 = ((opts.k2 ?? 0.03) * L) ** 2;
  if (x.length !== width * height || y.length !== width * height) throw new Error("ssim: data length does not match the size");
  if (width < size || height < size) throw new Error(`ssim: images must be at least ${size}x${size} (got ${width}x${height})`);
  const k = gaussianKernel1d(size, opts.sigma ?? 1.5);
  const n = width * height;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  const mx = filterValid(x, width, height, k);
  const my = filterValid(y, width, height, k);
  const exx = filterValid(xx, width, height, k);
  const eyy = filterValid(yy, width, height, k);
  const exy = filterValid(xy, width, height, k);
  let sum = 0;
  for (let i = 0; i < mx.length; i++) {
    const mx2 = mx[i] * mx[i];
    const my2 = my[i] * my[i];
    const mxy = mx[i] * my[i];
    const vx = exx[i] - mx2;
    const vy = eyy[i] - my2;
    const cxy = exy[i] - mxy;
    sum += ((2 * mxy + c1) * (2 * cxy + c2)) / ((mx2 + my2 + c1) * (vx + vy + c2));
  }
  return sum / mx.length;
}

/** SSIM (Wang et al. 2004) of two same-shaped 8-bit images, on their luminance. */
export function ssim(a: RawImage, b: RawImage, opts: SsimOptions = {}): number {
  checkSameShape(a, b);
  return ssimGray(luminance(a), luminance(b), a.width, a.height, opts);
}
