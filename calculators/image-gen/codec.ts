/**
 * Image decoding (request `image`/`mask` uploads) and encoding (responses).
 *
 * Uploads are untrusted: the type is taken from magic bytes only (clients send
 * `application/octet-stream`), the pixel count is checked against the
 * servable's limit from the header before any pixel buffer is allocated, and
 * every decode failure becomes an `HttpError(400)` whose message starts with
 * OVMS's "Image parsing failed: " (clients match on that prefix).
 *
 * PNG/JPEG/WebP/GIF go through sharp (libvips); BMP, which the prebuilt libvips
 * cannot read, goes through bmp-ts after our own header checks (see decodeBmp),
 * on a worker thread (bmp-worker.ts) so a large file does not stall the event loop.
 *
 * Callers pass the size they need (`size`): the resize happens inside libvips,
 * so a large upload never exists in JS at full size (16 uploads of 8192² would
 * otherwise be 3.6 GB of RGB held while the request queues).
 *
 * Decoding is CPU- and memory-heavy (a 16-bit PNG of 8192² is 400 MB inside
 * libvips while it decodes), so callers bound how many run at once.
 *
 * The module is also loaded on piscina worker threads; its only state is the
 * lazily created BMP pool.
 */
import sharp, { type Metadata, type Sharp } from "sharp";
import type { Piscina } from "piscina";
import { onDemandPool } from "../../src/threads/index.js";
import type { BmpResult, BmpTask } from "./bmp-worker.js";
import { HttpError } from "../../src/index.js";
import type { RgbImage } from "../../src/backends/index.js";

export type ImageType = "png" | "jpeg" | "webp" | "gif" | "bmp";

export interface DecodeLimits {
  /** Largest accepted width × height of an upload (checked from the header, before decoding). */
  readonly maxPixels: number;
}

/** A size to resize a decoded image to (stretched: aspect ratio not kept). */
export interface OutputSize {
  readonly width: number;
  readonly height: number;
}

export interface EncodeOptions {
  readonly format: "png" | "jpeg" | "webp";
  /**
   * OpenAI's `output_compression`, 0-100, default 100. Despite the name it acts
   * as a quality (100 = best, largest), so jpeg/webp quality = this value
   * (jpeg clamps 0 to 1). Ignored for png, which is lossless.
   */
  readonly compression?: number;
}

const PARSE_FAILED = "Image parsing failed: ";
/** OpenAI's code for an image it could not read. */
const INVALID_IMAGE = "invalid_image_file";

/** BMP info-header sizes we know (core, v1-v5 and OS/2 v2); anything else is not a BMP. */
const BMP_HEADER_SIZES = new Set([12, 40, 52, 56, 64, 108, 124]);

function startsWith(bytes: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (bytes.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (bytes[at + i] !== sig[i]) return false;
  return true;
}

const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));

/** The image type from magic bytes alone. */
export function sniffImageType(bytes: Uint8Array): ImageType | undefined {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "jpeg";
  if (startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8)) return "webp";
  if (startsWith(bytes, ascii("GIF87a")) || startsWith(bytes, ascii("GIF89a"))) return "gif";
  // "BM" alone is too weak (a text file may start with it): also require a known info-header size.
  if (startsWith(bytes, ascii("BM")) && bytes.length >= 18) {
    const headerSize = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(14, true);
    if (BMP_HEADER_SIZES.has(headerSize)) return "bmp";
  }
  return undefined;
}

function parseError(param: string, reason: string): HttpError {
  return new HttpError(400, `${PARSE_FAILED}${param}: ${reason}`, { param, code: INVALID_IMAGE });
}

function tooManyPixels(param: string, width: number, height: number, limits: DecodeLimits): HttpError {
  return parseError(
    param,
    `image is ${width}x${height} (${width * height} pixels), more than the limit of ${limits.maxPixels} pixels`,
  );
}

function checkLimits(limits: DecodeLimits): void {
  // sharp treats 0 as "no limit", so a bad value must never reach it.
  if (!Number.isSafeInteger(limits.maxPixels) || limits.maxPixels <= 0) {
    throw new RangeError(`maxPixels must be a positive integer, got ${limits.maxPixels}`);
  }
}

function checkSize(size: OutputSize | undefined): void {
  if (size === undefined) return;
  const ok = (v: number) => Number.isSafeInteger(v) && v > 0;
  if (!ok(size.width) || !ok(size.height)) throw new RangeError(`size must be positive integers, got ${size.width}x${size.height}`);
}

/** Sniffs and refuses empty or unknown uploads (400). */
function sniffOrThrow(bytes: Uint8Array, param: string): ImageType {
  if (bytes.length === 0) throw new HttpError(400, `${PARSE_FAILED}${param} is empty`, { param, code: INVALID_IMAGE });
  const type = sniffImageType(bytes);
  if (type === undefined) {
    throw new HttpError(400, `${PARSE_FAILED}${param} is not a PNG, JPEG, WebP, GIF or BMP image`, {
      param,
      code: "unsupported_file_mimetype",
    });
  }
  return type;
}

/** The first line of a libvips error, which is otherwise multi-line and repeats the loader's name. */
function vipsReason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = msg.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.trim().replace(/:$/, "") || "unknown error";
}

/** Input options for every decoding pipeline. */
function sharpInput(limits: DecodeLimits) {
  return {
    // Refused from the header, before libvips allocates the decoded image.
    limitInputPixels: limits.maxPixels,
    // Default, but stated: a truncated/corrupt stream is an error, not a half-grey image.
    failOn: "warning" as const,
    autoOrient: true,
    // First frame of an animated GIF/WebP, like stb_image.
    pages: 1,
  };
}

/** A libvips failure as our 400 (naming the size when it was the pixel limit). */
async function sharpError(e: unknown, bytes: Uint8Array, type: ImageType, param: string, limits: DecodeLimits): Promise<HttpError> {
  const reason = vipsReason(e);
  if (/pixel limit/i.test(reason)) {
    // Only the header is read again, to name the size in the message.
    const meta = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata().catch(() => undefined);
    if (meta?.width !== undefined && meta.height !== undefined) return tooManyPixels(param, meta.width, meta.height, limits);
    return parseError(param, `image has more than the limit of ${limits.maxPixels} pixels`);
  }
  return parseError(param, `invalid ${type.toUpperCase()} data (${reason})`);
}

/** Runs a pipeline to raw 8-bit pixels of `channels` channels; libvips errors become 400s. */
async function runToRaw(
  pipeline: Sharp,
  channels: 1 | 3,
  bytes: Uint8Array,
  type: ImageType,
  param: string,
  limits: DecodeLimits,
): Promise<{ width: number; height: number; data: Uint8Array }> {
  try {
    const { data, info } = await pipeline.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    if (info.channels !== channels || data.length !== info.width * info.height * channels) {
      throw new Error(`unexpected decoded layout (${info.channels} channels, ${data.length} bytes)`);
    }
    return { width: info.width, height: info.height, data };
  } catch (e) {
    throw await sharpError(e, bytes, type, param, limits);
  }
}

/**
 * Resampling kernel: sharp's default (lanczos3) for images; for masks a linear
 * one, as lanczos rings (a 255/0 edge leaves 254s and 1s a few pixels away) and
 * a mask should stay flat away from its edges.
 */
type Kernel = "lanczos3" | "linear";
const IMAGE_KERNEL: Kernel = "lanczos3";
const MASK_KERNEL: Kernel = "linear";

/** Stretches to `size` inside libvips (after orientation, which sharp applies first). */
function resized(pipeline: Sharp, size: OutputSize | undefined, kernel: Kernel): Sharp {
  return size === undefined ? pipeline : pipeline.resize(size.width, size.height, { fit: "fill", kernel });
}

interface BmpHeader {
  readonly dataOffset: number;
  readonly headerSize: number;
  readonly width: number;
  readonly height: number;
  readonly bitsPerPixel: number;
  readonly compression: number;
  readonly colors: number;
}

function readBmpHeader(bytes: Uint8Array, param: string): BmpHeader {
  if (bytes.length < 54) throw parseError(param, "BMP header is truncated");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerSize = v.getUint32(14, true);
  // bmp-ts reads only BITMAPINFOHEADER and its v2-v5 extensions.
  if (headerSize < 40 || headerSize === 64) throw parseError(param, `BMP header of ${headerSize} bytes is not supported`);
  return {
    dataOffset: v.getUint32(10, true),
    headerSize,
    width: v.getInt32(18, true),
    height: v.getInt32(22, true),
    bitsPerPixel: v.getUint16(28, true),
    compression: v.getUint32(30, true),
    colors: v.getUint32(46, true),
  };
}

/**
 * Lazily created: most processes never see a BMP. One thread (BMP uploads are
 * rare and this only has to keep the decode off the event loop); an idle worker
 * is unref'd by piscina and exits after `idleTimeout`, so it never keeps a
 * process alive.
 */
let bmpPool: Piscina<BmpTask, BmpResult> | undefined;

function getBmpPool(): Piscina<BmpTask, BmpResult> {
  bmpPool ??= onDemandPool<BmpTask, BmpResult>(new URL("./bmp-worker.js", import.meta.url).href, 1, 5000);
  return bmpPool;
}

/**
 * BMP through bmp-ts, which trusts its input: it allocates width×height×4 from
 * the header, reads pixels right after the palette rather than at the header's
 * data offset, and has known-wrong paths (RLE writes pixels at wrong offsets;
 * 4-bit images of odd width stop after the first row). So the header is
 * validated here first, on the calling thread (a bomb is refused at once), the
 * wrong paths are refused (stb_image refuses RLE too), and the worker splices
 * out a gap before the pixel data. Returns top-down pixels of 3 channels
 * ("rgb") or 1 ("mask", see BmpTask), and checks a mask's size before decoding.
 */
async function decodeBmp(
  bytes: Uint8Array,
  param: string,
  limits: DecodeLimits,
  mode: "rgb" | "mask",
  expect?: { width: number; height: number },
): Promise<{ width: number; height: number; data: Uint8Array }> {
  const h = readBmpHeader(bytes, param);
  const width = h.width;
  const height = Math.abs(h.height);
  if (width <= 0 || height === 0) throw parseError(param, `BMP declares an invalid size ${h.width}x${h.height}`);
  if (width * height > limits.maxPixels) throw tooManyPixels(param, width, height, limits);
  if (![1, 4, 8, 16, 24, 32].includes(h.bitsPerPixel)) throw parseError(param, `BMP with ${h.bitsPerPixel} bits per pixel is not supported`);
  // 0 = BI_RGB, 3 = BI_BITFIELDS, 6 = BI_ALPHABITFIELDS; RLE (1, 2) and embedded JPEG/PNG (4, 5) are refused.
  if (![0, 3, 6].includes(h.compression)) throw parseError(param, `BMP compression method ${h.compression} is not supported`);
  if (h.bitsPerPixel === 4 && width % 2 === 1) throw parseError(param, "4-bit BMP of odd width is not supported");
  if (h.bitsPerPixel <= 8 && h.colors > 1 << h.bitsPerPixel) throw parseError(param, `BMP palette of ${h.colors} colours is too large`);

  // Where bmp-ts will start reading pixels: after the info header, the bit masks
  // that follow a v1 header when compression says so, and the palette.
  const masks = h.headerSize === 40 ? (h.compression === 3 ? 12 : h.compression === 6 ? 16 : 0) : 0;
  const paletteEntries = h.bitsPerPixel <= 8 || h.colors > 0 ? (h.colors === 0 ? 1 << h.bitsPerPixel : h.colors) : 0;
  const pixelStart = 14 + h.headerSize + masks + paletteEntries * 4;
  const rowBytes = Math.ceil((width * h.bitsPerPixel) / 32) * 4;
  if (h.dataOffset < pixelStart) throw parseError(param, "BMP pixel data overlaps its header");
  // Checked before bmp-ts allocates: a short file would otherwise cost a full-size buffer, then throw.
  if (h.dataOffset + rowBytes * height > bytes.length) throw parseError(param, "BMP pixel data is truncated");
  if (expect !== undefined) checkMaskSize(param, width, height, expect.width, expect.height);

  // A copy of exactly these bytes, moved to the worker: `bytes` may be a view into a larger
  // buffer (which structured cloning would copy whole) and stays the caller's.
  const copy = new Uint8Array(bytes);
  const task: BmpTask = { bytes: copy, width, height, bitsPerPixel: h.bitsPerPixel, pixelStart, dataOffset: h.dataOffset, mode };
  const result = await getBmpPool().run(task, { transferList: [copy.buffer] });
  if (!(result instanceof Uint8Array)) throw parseError(param, `invalid BMP data (${result.error})`);
  const channels = mode === "mask" ? 1 : 3;
  if (result.length !== width * height * channels) throw parseError(param, "invalid BMP data (unexpected decoded size)");
  return { width, height, data: result };
}

/** A 400 unless a mask of `actualWidth`×`actualHeight` fits an image of `width`×`height`. */
export function checkMaskSize(param: string, actualWidth: number, actualHeight: number, width: number, height: number): void {
  if (actualWidth !== width || actualHeight !== height) {
    throw new HttpError(400, `mask size ${actualWidth}x${actualHeight} does not match image size ${width}x${height}`, { param });
  }
}

/** Resizes raw 1- or 3-channel pixels in libvips (and inverts them: 255 - v). */
async function resizeRaw(
  raw: { width: number; height: number; data: Uint8Array },
  channels: 1 | 3,
  size: OutputSize | undefined,
  kernel: Kernel,
  negate = false,
): Promise<{ width: number; height: number; data: Uint8Array }> {
  if (!negate && (size === undefined || (size.width === raw.width && size.height === raw.height))) return raw;
  const { width, height } = size ?? raw;
  const { data, info } = await sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels } })
    .resize(width, height, { fit: "fill", kernel })
    .negate(negate)
    // One band is read as b-w, which sharp would otherwise output as sRGB.
    .toColourspace(channels === 1 ? "b-w" : "srgb")
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== channels || data.length !== info.width * info.height * channels) {
    throw new Error(`unexpected resized layout (${info.channels} channels, ${data.length} bytes)`);
  }
  return { width: info.width, height: info.height, data };
}

/** Whether every byte is 255 (a word at a time: 64M bytes take ~15 ms). */
function allOpaque(a: Uint8Array): boolean {
  const head = Math.min(a.length, (4 - (a.byteOffset % 4)) % 4);
  const words = (a.length - head) >>> 2;
  for (let i = 0; i < head; i++) if (a[i] !== 255) return false;
  const w = new Uint32Array(a.buffer, a.byteOffset + head, words);
  for (let i = 0; i < words; i++) if (w[i] !== 0xffffffff) return false;
  for (let i = head + words * 4; i < a.length; i++) if (a[i] !== 255) return false;
  return true;
}

/** One grey channel → RGB (R = G = B). */
function greyToRgb(width: number, height: number, grey: Uint8Array): RgbImage {
  const out = new Uint8Array(grey.length * 3);
  for (let p = 0, o = 0; p < grey.length; p++, o += 3) {
    const v = grey[p];
    out[o] = v;
    out[o + 1] = v;
    out[o + 2] = v;
  }
  return { width, height, data: out };
}

/**
 * Decodes an upload to RGB (alpha dropped, EXIF orientation applied, first frame),
 * resized to `size` when given (stretched; the full-size image is never held in JS).
 * 400 on anything unreadable.
 */
export async function decodeImage(bytes: Uint8Array, param: string, limits: DecodeLimits, size?: OutputSize): Promise<RgbImage> {
  checkLimits(limits);
  checkSize(size);
  const type = sniffOrThrow(bytes, param);
  if (type === "bmp") return resizeRaw(await decodeBmp(bytes, param, limits, "rgb"), 3, size, IMAGE_KERNEL);
  // stb_image (OVMS) forces 3 channels, dropping alpha without compositing.
  const pipeline = resized(sharp(bytes, sharpInput(limits)).toColourspace("srgb").removeAlpha(), size, IMAGE_KERNEL);
  return runToRaw(pipeline, 3, bytes, type, param, limits);
}

/** BT.601 luma weights (the classic RGB→grey), in every output channel. */
const LUMA_ROW: [number, number, number] = [0.299, 0.587, 0.114];
const LUMA: [typeof LUMA_ROW, typeof LUMA_ROW, typeof LUMA_ROW] = [LUMA_ROW, LUMA_ROW, LUMA_ROW];

/**
 * Decodes an inpainting mask to OVMS's convention (RGB, 255 = repaint, 0 = keep),
 * accepting OpenAI's too: a mask with any non-opaque pixel is read as alpha
 * (transparent = repaint, value = 255 - alpha), otherwise as BT.601 luminance.
 * `width`×`height` is the size the mask must have (the image's, after
 * orientation, e.g. from readImageSize; a 400 naming both sizes otherwise,
 * checked from the header), `size` the size to resize it to (linear kernel).
 * In JS only the output-size RGB is built, plus, for a mask with an alpha
 * channel, its alpha plane at full size (1 byte/pixel) while it is checked for
 * transparency and resized.
 */
export async function decodeMask(
  bytes: Uint8Array,
  param: string,
  width: number,
  height: number,
  limits: DecodeLimits,
  size?: OutputSize,
): Promise<RgbImage> {
  checkLimits(limits);
  checkSize(size);
  const type = sniffOrThrow(bytes, param);
  if (type === "bmp") {
    const grey = await resizeRaw(await decodeBmp(bytes, param, limits, "mask", { width, height }), 1, size, MASK_KERNEL);
    return greyToRgb(grey.width, grey.height, grey.data);
  }

  // The header first: the limit and the size are checked before any pixel is decoded.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata();
  } catch (e) {
    throw parseError(param, `invalid ${type.toUpperCase()} data (${vipsReason(e)})`);
  }
  const mw = meta.autoOrient?.width ?? meta.width;
  const mh = meta.autoOrient?.height ?? meta.height;
  if (mw === undefined || mh === undefined) throw parseError(param, "image size is unknown");
  if (mw * mh > limits.maxPixels) throw tooManyPixels(param, mw, mh, limits);
  checkMaskSize(param, mw, mh, width, height);

  if (meta.hasAlpha) {
    const fromAlpha = await alphaMask(bytes, type, param, limits, size, (alpha) => !allOpaque(alpha));
    if (fromAlpha !== undefined) return fromAlpha;
  }

  const base = resized(sharp(bytes, sharpInput(limits)), size, MASK_KERNEL);
  // Luminance in libvips: recomb gives float luma in all three channels, + 0.5 so the
  // cast to 8 bits (which truncates) rounds. Checked on all 2^24 colours: equal to
  // (299R + 587G + 114B + 500) / 1000 in integers; the earlier JS float formula
  // differed by 1 on 3464 of them, all exact halves it happened to round down.
  const pipeline = base.toColourspace("srgb").recomb(LUMA).linear(1, 0.5).removeAlpha();
  return runToRaw(pipeline, 3, bytes, type, param, limits);
}

/**
 * The mask an image's transparency makes, in OVMS's convention (255 - alpha:
 * transparent = repaint), resized to `size`; undefined when `isMask` says its
 * alpha makes no mask.
 *
 * The alpha is decoded alone, to a one-byte-per-pixel buffer, and scanned in JS: sharp's
 * stats().isOpaque would answer without a JS buffer but also computes entropy, sharpness
 * and more: 3.7 s on an 8192² RGBA PNG, against 0.2 s to decode that PNG's alpha alone (a
 * quarter of the RGBA it replaces, and dropped once resized) and scan it. sRGB first, so
 * grey + alpha files have their alpha as the fourth band too.
 */
async function alphaMask(
  bytes: Uint8Array,
  type: ImageType,
  param: string,
  limits: DecodeLimits,
  size: OutputSize | undefined,
  isMask: (alpha: Uint8Array) => boolean,
): Promise<RgbImage | undefined> {
  const alpha = await runToRaw(sharp(bytes, sharpInput(limits)).toColourspace("srgb").extractChannel(3), 1, bytes, type, param, limits);
  if (!isMask(alpha.data)) return undefined;
  // Resized by libvips from that buffer.
  const grey = await resizeRaw(alpha, 1, size, MASK_KERNEL, true);
  return greyToRgb(grey.width, grey.height, grey.data);
}

/**
 * Alpha below this repaints: the backends repaint where the mask (255 - alpha)
 * is at least 127.5, as diffusers binarises at 0.5.
 */
const REPAINT_BELOW_ALPHA = 128;

/** Whether some pixel of an alpha plane is transparent enough to be repainted. */
function repaintsSome(alpha: Uint8Array): boolean {
  for (let i = 0; i < alpha.length; i++) if (alpha[i] < REPAINT_BELOW_ALPHA) return true;
  return false;
}

/**
 * OpenAI's edit rule without a mask: the image's own transparency is the mask.
 * Returns that mask (as decodeMask would from the same file, resized to
 * `size`), or undefined when the image has no alpha channel or no pixel is
 * transparent enough to be repainted (alpha below 128): an image whose alpha
 * only fades a little (a lossy WebP's 254s, soft shadows) is an edit of all of
 * it, not an inpainting that repaints nothing. BMP alpha is not read here
 * (OpenAI's rule is about PNGs): undefined.
 */
export async function decodeAlphaMask(bytes: Uint8Array, param: string, limits: DecodeLimits, size?: OutputSize): Promise<RgbImage | undefined> {
  checkLimits(limits);
  checkSize(size);
  const type = sniffOrThrow(bytes, param);
  if (type === "bmp") return undefined;
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata();
  } catch (e) {
    throw parseError(param, `invalid ${type.toUpperCase()} data (${vipsReason(e)})`);
  }
  return meta.hasAlpha ? alphaMask(bytes, type, param, limits, size, repaintsSome) : undefined;
}

/**
 * zlib level for PNG output (with adaptive row filtering, without which photos
 * barely compress). Measured with sharp 0.35 on a 1024×1024 photo-like RGB
 * image, 2 cores: level 1 44 ms / 2.06 MB, 3 60 ms / 1.28 MB, 6 (sharp's
 * default) 82 ms / 1.26 MB, 9 231 ms / 1.27 MB. Level 3 costs ~2% in size for
 * ~25% less time; responses are base64 JSON, so latency wins over a few KB.
 */
const PNG_COMPRESSION_LEVEL = 3;

function quality(opts: EncodeOptions, min: number): number {
  const c = opts.compression ?? 100;
  if (!Number.isFinite(c) || c < 0 || c > 100) throw new RangeError(`compression must be within 0-100, got ${c}`);
  return Math.max(min, Math.round(c));
}

/** Encodes one RGB image. `image.data` is passed to libvips without a copy. */
export async function encodeImage(image: RgbImage, opts: EncodeOptions): Promise<Buffer> {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || data.length !== width * height * 3) {
    throw new RangeError(`not an RGB image: ${width}x${height} with ${data.length} bytes`);
  }
  const s = sharp(data, { raw: { width, height, channels: 3 } });
  switch (opts.format) {
    case "png":
      return s.png({ compressionLevel: PNG_COMPRESSION_LEVEL, adaptiveFiltering: true }).toBuffer();
    case "jpeg":
      return s.jpeg({ quality: quality(opts, 1) }).toBuffer();
    case "webp":
      return s.webp({ quality: quality(opts, 0) }).toBuffer();
    default: {
      const never: never = opts.format;
      throw new RangeError(`unsupported output format ${String(never)}`);
    }
  }
}

/** Encodes `count` images stored back to back as NHWC u8 (views, no copies). */
export function encodeBatch(data: Uint8Array, count: number, width: number, height: number, opts: EncodeOptions): Promise<Buffer[]> {
  const size = width * height * 3;
  if (!Number.isInteger(count) || count < 0 || data.length !== count * size) {
    return Promise.reject(new RangeError(`batch of ${count} ${width}x${height} RGB images needs ${count * size} bytes, got ${data.length}`));
  }
  const jobs: Promise<Buffer>[] = [];
  for (let i = 0; i < count; i++) {
    jobs.push(encodeImage({ width, height, data: data.subarray(i * size, (i + 1) * size) }, opts));
  }
  return Promise.all(jobs);
}

/**
 * Size, type and whether there is an alpha channel (not whether it is used),
 * from an encoded image's header only (after EXIF orientation for sharp
 * formats): the size `decodeImage` gives without `size`, and what a mask must
 * match. With `limits`, an image over the pixel limit is a 400 here too.
 */
export async function readImageSize(
  bytes: Uint8Array,
  param = "image",
  limits?: DecodeLimits,
): Promise<{ width: number; height: number; format: ImageType; hasAlpha: boolean }> {
  if (limits !== undefined) checkLimits(limits);
  const type = sniffOrThrow(bytes, param);
  const checked = (width: number, height: number, hasAlpha: boolean) => {
    if (limits !== undefined && width * height > limits.maxPixels) throw tooManyPixels(param, width, height, limits);
    return { width, height, format: type, hasAlpha };
  };
  if (type === "bmp") {
    const h = readBmpHeader(bytes, param);
    if (h.width <= 0 || h.height === 0) throw parseError(param, `BMP declares an invalid size ${h.width}x${h.height}`);
    // Whether a 16/32-bit BMP's alpha is used shows only in its pixels (see bmp-worker.ts).
    return checked(h.width, Math.abs(h.height), false);
  }
  let meta: Metadata;
  try {
    // Header only: no pixels are decoded, so the limit is checked below with a message that names the size.
    meta = await sharp(bytes, { pages: 1, limitInputPixels: false }).metadata();
  } catch (e) {
    throw parseError(param, `invalid ${type.toUpperCase()} data (${vipsReason(e)})`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (width === undefined || height === undefined) throw parseError(param, "image size is unknown");
  return checked(width, height, meta.hasAlpha === true);
}
