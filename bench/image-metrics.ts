/** Image comparisons for benches: PSNR, SSIM and box downscaling on RGB u8 NHWC images. */

/** PSNR in dB of two same-sized u8 buffers (Infinity when equal). */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / se);
}

/** RGB u8 [h, w, 3] → luma Y′ (BT.601 weights) as floats. */
function luma(img: Uint8Array, pixels: number): Float64Array {
  const y = new Float64Array(pixels);
  for (let i = 0; i < pixels; i++) y[i] = 0.299 * img[i * 3] + 0.587 * img[i * 3 + 1] + 0.114 * img[i * 3 + 2];
  return y;
}

/** Separable Gaussian blur (σ 1.5, 11 taps), edges clamped. */
function blur(src: Float64Array, w: number, h: number): Float64Array {
  const k = Array.from({ length: 11 }, (_, i) => Math.exp(-((i - 5) ** 2) / (2 * 1.5 * 1.5)));
  const sum = k.reduce((a, b) => a + b, 0);
  const kn = k.map((v) => v / sum);
  const tmp = new Float64Array(src.length);
  const out = new Float64Array(src.length);
  const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let s = 0;
    for (let i = 0; i < 11; i++) s += kn[i] * src[y * w + clamp(x + i - 5, w)];
    tmp[y * w + x] = s;
  }
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let s = 0;
    for (let i = 0; i < 11; i++) s += kn[i] * tmp[clamp(y + i - 5, h) * w + x];
    out[y * w + x] = s;
  }
  return out;
}

/** Mean SSIM (Wang et al. 2004: Gaussian window σ 1.5, K1 0.01, K2 0.03) of the luma of two RGB images. */
export function ssim(a: Uint8Array, b: Uint8Array, w: number, h: number): number {
  const x = luma(a, w * h);
  const y = luma(b, w * h);
  const mul = (p: Float64Array, q: Float64Array) => p.map((v, i) => v * q[i]);
  const mx = blur(x, w, h);
  const my = blur(y, w, h);
  const sxx = blur(mul(x, x), w, h);
  const syy = blur(mul(y, y), w, h);
  const sxy = blur(mul(x, y), w, h);
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  let total = 0;
  for (let i = 0; i < w * h; i++) {
    const vx = sxx[i] - mx[i] * mx[i];
    const vy = syy[i] - my[i] * my[i];
    const cxy = sxy[i] - mx[i] * my[i];
    total += ((2 * mx[i] * my[i] + c1) * (2 * cxy + c2)) / ((mx[i] ** 2 + my[i] ** 2 + c1) * (vx + vy + c2));
  }
  return total / (w * h);
}

/** Box-filtered downscale of an RGB u8 [h, w, 3] image by an integer factor. */
export function downscale(img: Uint8Array, w: number, h: number, k: number): Uint8Array {
  const ow = w / k;
  const oh = h / k;
  const out = new Uint8Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) s += img[((y * k + dy) * w + x * k + dx) * 3 + c];
    out[(y * ow + x) * 3 + c] = Math.round(s / (k * k));
  }
  return out;
}
