/**
 * BMP pixel decoding, run on a piscina worker thread (see codec.ts decodeBmp):
 * bmp-ts and the ABGR→RGB loop are synchronous and take ~1 s on a large file,
 * which must not stall the server's event loop.
 *
 * The header has already been validated on the calling thread (size limit,
 * truncation, unsupported compression…); this only runs the decoder. Failures
 * are returned as a plain `{ error }` (error classes do not survive the thread
 * boundary), which the caller turns into its 400.
 */
import { Piscina } from "piscina";
import { decode as bmpDecode } from "bmp-ts";

export interface BmpTask {
  /** The whole file, in its own (transferred) ArrayBuffer. */
  readonly bytes: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly bitsPerPixel: number;
  /** Where bmp-ts will start reading pixels, and where they really are (a gap between is spliced out). */
  readonly pixelStart: number;
  readonly dataOffset: number;
  /**
   * "rgb": 3 channels, alpha dropped. "mask": 1 channel in OVMS's convention
   * (255 = repaint): 255 - alpha when the file has meaningful, non-opaque
   * alpha, otherwise BT.601 luma.
   */
  readonly mode: "rgb" | "mask";
}

/**
 * The pixels, top-down, width × height × (1 for "mask", 3 for "rgb") bytes, moved
 * (not copied) back to the caller; or why bmp-ts failed.
 */
export type BmpResult = Uint8Array | { readonly error: string };

export function decodeBmpPixels(task: BmpTask): BmpResult {
  const { width, height, bitsPerPixel, pixelStart, dataOffset, mode } = task;
  const buf = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  const normalised = dataOffset === pixelStart ? buf : Buffer.concat([buf.subarray(0, pixelStart), buf.subarray(dataOffset)]);
  let abgr: Buffer;
  try {
    abgr = bmpDecode(normalised).data; // ABGR; bmp-ts already flips bottom-up files to top-down
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
  const n = width * height;
  if (abgr.length !== n * 4) return { error: "unexpected decoded size" };

  // Alpha is only real in 16/32-bit files (bmp-ts gives 0 for the others, 255 without an
  // alpha mask); all-zero alpha is the common "unused" filler, so it also means opaque.
  let hasAlpha = false;
  if (bitsPerPixel >= 16) {
    let anyNonZero = false;
    let anyBelow255 = false;
    for (let i = 0; i < abgr.length; i += 4) {
      if (abgr[i] !== 0) anyNonZero = true;
      if (abgr[i] !== 255) anyBelow255 = true;
      if (anyNonZero && anyBelow255) break;
    }
    hasAlpha = anyNonZero && anyBelow255;
  }

  if (mode === "mask") {
    const out = new Uint8Array(n);
    if (hasAlpha) {
      for (let p = 0, i = 0; p < n; p++, i += 4) out[p] = 255 - abgr[i];
    } else {
      // BT.601 luma (the classic RGB→grey), so a colour mask still reads sensibly; in integers,
      // rounding exact halves up, which is what codec.ts's libvips path gives for other formats.
      for (let p = 0, i = 0; p < n; p++, i += 4) out[p] = ((299 * abgr[i + 3] + 587 * abgr[i + 2] + 114 * abgr[i + 1] + 500) / 1000) | 0;
    }
    return Piscina.move(out) as Uint8Array;
  }
  const out = new Uint8Array(n * 3);
  for (let i = 0, o = 0; o < out.length; i += 4, o += 3) {
    out[o] = abgr[i + 3];
    out[o + 1] = abgr[i + 2];
    out[o + 2] = abgr[i + 1];
  }
  return Piscina.move(out) as Uint8Array;
}

export default decodeBmpPixels;
