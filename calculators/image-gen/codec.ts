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
 * cannot read, goes through bmp-ts after our own header checks (see decodeBmp).
 * The module is also loaded on piscina worker threads; it keeps no state.
 */
import sharp, { type Metadata } from "sharp";
import { decode as bmpDecode } from "bmp-ts";
import { HttpError } from "../../src/index.js";
import type { RgbImage } from "../../src/backends/index.js";

export type ImageType = "png" | "jpeg" | "webp" | "gif" | "bmp";

export interface DecodeLimits {
  /** Largest accepted width × height of an upload (checked from the header, before decoding). */
  readonly maxPixels: number;
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

/** Decoded pixels before conversion: `channels` is 3 (RGB) or 4 (RGBA, alpha meaningful). */
interface RawPixels {
  readonly width: number;
  readonly height: number;
  readonly channels: 3 | 4;
  readonly data: Uint8Array;
}

/** The first line of a libvips error, which is otherwise multi-line and repeats the loader's name. */
function vipsReason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = msg.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.trim().replace(/:$/, "") || "unknown error";
}

async function decodeWithSharp(
  bytes: Uint8Array,
  type: ImageType,
  param: string,
  limits: DecodeLimits,
  withAlpha: boolean,
): Promise<RawPixels> {
  const input = {
    // Refused from the header, before libvips allocates the decoded image.
    limitInputPixels: limits.maxPixels,
    // Default, but stated: a truncated/corrupt stream is an error, not a half-grey image.
    failOn: "warning" as const,
    autoOrient: true,
    // First frame of an animated GIF/WebP, like stb_image.
    pages: 1,
  };
  try {
    let pipeline = sharp(bytes, input).toColourspace("srgb");
    // stb_image (OVMS) forces 3 channels, dropping alpha without compositing; masks keep it
    // because transparency is how OpenAI's convention marks the area to repaint.
    pipeline = withAlpha ? pipeline.ensureAlpha() : pipeline.removeAlpha();
    const { data, info } = await pipeline.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    const channels = withAlpha ? 4 : 3;
    if (info.channels !== channels || data.length !== info.width * info.height * channels) {
      throw new Error(`unexpected decoded layout (${info.channels} channels, ${data.length} bytes)`);
    }
    return { width: info.width, height: info.height, channels, data };
  } catch (e) {
    const reason = vipsReason(e);
    if (/pixel limit/i.test(reason)) {
      // Only the header is read again, to name the size in the message.
      const meta = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata().catch(() => undefined);
      if (meta?.width !== undefined && meta.height !== undefined) throw tooManyPixels(param, meta.width, meta.height, limits);
      throw parseError(param, `image has more than the limit of ${limits.maxPixels} pixels`);
    }
    throw parseError(param, `invalid ${type.toUpperCase()} data (${reason})`);
  }
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
 * BMP through bmp-ts, which trusts its input: it allocates width×height×4 from
 * the header, reads pixels right after the palette rather than at the header's
 * data offset, and has known-wrong paths (RLE writes pixels at wrong offsets;
 * 4-bit images of odd width stop after the first row). So the header is
 * validated here first, the wrong paths are refused (stb_image refuses RLE too),
 * and a gap before the pixel data is spliced out.
 */
function decodeBmp(bytes: Uint8Array, param: string, limits: DecodeLimits): RawPixels {
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

  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const normalised = h.dataOffset === pixelStart ? buf : Buffer.concat([buf.subarray(0, pixelStart), buf.subarray(h.dataOffset)]);
  let abgr: Buffer;
  try {
    abgr = bmpDecode(normalised).data; // ABGR; bmp-ts already flips bottom-up files to top-down
  } catch (e) {
    throw parseError(param, `invalid BMP data (${e instanceof Error ? e.message : String(e)})`);
  }
  if (abgr.length !== width * height * 4) throw parseError(param, "invalid BMP data (unexpected decoded size)");

  // Alpha is only real in 16/32-bit files (bmp-ts gives 0 for the others, 255 without an
  // alpha mask); all-zero alpha is the common "unused" filler, so it also means opaque.
  let hasAlpha = false;
  if (h.bitsPerPixel >= 16) {
    let anyNonZero = false;
    let anyBelow255 = false;
    for (let i = 0; i < abgr.length; i += 4) {
      if (abgr[i] !== 0) anyNonZero = true;
      if (abgr[i] !== 255) anyBelow255 = true;
    }
    hasAlpha = anyNonZero && anyBelow255;
  }
  const channels = hasAlpha ? 4 : 3;
  const out = new Uint8Array(width * height * channels);
  for (let p = 0, i = 0, o = 0; p < width * height; p++, i += 4, o += channels) {
    out[o] = abgr[i + 3];
    out[o + 1] = abgr[i + 2];
    out[o + 2] = abgr[i + 1];
    if (hasAlpha) out[o + 3] = abgr[i];
  }
  return { width, height, channels, data: out };
}

function decodeRaw(bytes: Uint8Array, param: string, limits: DecodeLimits, withAlpha: boolean): Promise<RawPixels> {
  checkLimits(limits);
  const type = sniffOrThrow(bytes, param);
  if (type === "bmp") return Promise.resolve().then(() => decodeBmp(bytes, param, limits));
  return decodeWithSharp(bytes, type, param, limits, withAlpha);
}

/** Decodes an upload to RGB (alpha dropped, EXIF orientation applied, first frame). 400 on anything unreadable. */
export async function decodeImage(bytes: Uint8Array, param: string, limits: DecodeLimits): Promise<RgbImage> {
  const raw = await decodeRaw(bytes, param, limits, false);
  if (raw.channels === 3) return { width: raw.width, height: raw.height, data: raw.data };
  const rgb = new Uint8Array(raw.width * raw.height * 3);
  for (let i = 0, o = 0; o < rgb.length; i += 4, o += 3) {
    rgb[o] = raw.data[i];
    rgb[o + 1] = raw.data[i + 1];
    rgb[o + 2] = raw.data[i + 2];
  }
  return { width: raw.width, height: raw.height, data: rgb };
}

/**
 * Decodes an inpainting mask to OVMS's convention (RGB, 255 = repaint, 0 = keep),
 * accepting OpenAI's too: a mask with any non-opaque pixel is read as alpha
 * (transparent = repaint, value = 255 - alpha), otherwise as luminance.
 */
export async function decodeMask(
  bytes: Uint8Array,
  param: string,
  width: number,
  height: number,
  limits: DecodeLimits,
): Promise<RgbImage> {
  const raw = await decodeRaw(bytes, param, limits, true);
  if (raw.width !== width || raw.height !== height) {
    throw new HttpError(400, `mask size ${raw.width}x${raw.height} does not match image size ${width}x${height}`, { param });
  }
  const n = width * height;
  const c = raw.channels;
  const src = raw.data;
  let useAlpha = false;
  if (c === 4) {
    for (let i = 3; i < src.length; i += 4) {
      if (src[i] !== 255) {
        useAlpha = true;
        break;
      }
    }
  }
  const out = new Uint8Array(n * 3);
  for (let p = 0, i = 0, o = 0; p < n; p++, i += c, o += 3) {
    // BT.601 luma weights (the classic RGB→grey), so a colour mask still reads sensibly.
    const v = useAlpha ? 255 - src[i + 3] : Math.round(0.299 * src[i] + 0.587 * src[i + 1] + 0.114 * src[i + 2]);
    out[o] = v;
    out[o + 1] = v;
    out[o + 2] = v;
  }
  return { width, height, data: out };
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

/** Size and type of an encoded image from its header only (after EXIF orientation for sharp formats). */
export async function readImageSize(bytes: Uint8Array, param = "image"): Promise<{ width: number; height: number; format: string }> {
  const type = sniffOrThrow(bytes, param);
  if (type === "bmp") {
    const h = readBmpHeader(bytes, param);
    return { width: h.width, height: Math.abs(h.height), format: "bmp" };
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { pages: 1 }).metadata();
  } catch (e) {
    throw parseError(param, `invalid ${type.toUpperCase()} data (${vipsReason(e)})`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (width === undefined || height === undefined) throw parseError(param, "image size is unknown");
  return { width, height, format: type };
}
