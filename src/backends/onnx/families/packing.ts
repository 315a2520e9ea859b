/**
 * FLUX's latent packing: each 2×2 patch of a [C, h, w] latent becomes one token
 * of 4C values, [N, C, h, w] ↔ [N, (h/2)(w/2), 4C], with
 * packed[b, i·(w/2) + j, c·4 + di·2 + dj] = latents[b, c, 2i + di, 2j + dj]
 * (diffusers' FluxPipeline._pack_latents / _unpack_latents).
 */
import type { LatentLayout } from "./types.js";

/** For each NCHW index of one image, its index in the packed layout. */
function packedIndex(C: number, h: number, w: number): Uint32Array {
  const index = new Uint32Array(C * h * w);
  const ww = w / 2;
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) index[(c * h + y) * w + x] = ((y >> 1) * ww + (x >> 1)) * 4 * C + c * 4 + (y & 1) * 2 + (x & 1);
    }
  }
  return index;
}

/** [n, C, h, w] → [n, (h/2)(w/2), 4C]. */
export function packLatents(src: Float32Array, n: number, C: number, h: number, w: number): Float32Array {
  const index = packedIndex(C, h, w);
  const out = new Float32Array(src.length);
  for (let b = 0, base = 0; b < n; b++, base += index.length) for (let i = 0; i < index.length; i++) out[base + index[i]] = src[base + i];
  return out;
}

/** [n, (h/2)(w/2), 4C] → [n, C, h, w], the inverse of packLatents. */
export function unpackLatents(src: Float32Array, n: number, C: number, h: number, w: number): Float32Array {
  const index = packedIndex(C, h, w);
  const out = new Float32Array(src.length);
  for (let b = 0, base = 0; b < n; b++, base += index.length) for (let i = 0; i < index.length; i++) out[base + i] = src[base + index[i]];
  return out;
}

/** FLUX's latent layout: [n, (h/2)(w/2), 4C] tokens. */
export const PACKED_2X2_LAYOUT: LatentLayout = {
  kind: "tokens",
  fromNchw: packLatents,
  toNchw: unpackLatents,
  sampleDims: (batch, inC, C, h, w) => [batch, (C * h * w) / inC, inC],
};

/** FLUX's image position ids [(h/2)(w/2), 3]: token (i, j) has (0, i, j). */
export function imagePositionIds(h: number, w: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < h / 2; i++) for (let j = 0; j < w / 2; j++) ids.push(0, i, j);
  return ids;
}
