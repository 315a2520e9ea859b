import { test } from "node:test";
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { monitorEventLoopDelay } from "node:perf_hooks";
import sharp from "sharp";
import { encode as bmpEncode } from "bmp-ts";
import { HttpError } from "../src/index.js";
import {
  decodeAlphaMask,
  decodeImage,
  decodeMask,
  encodeBatch,
  encodeImage,
  readImageSize,
  sniffImageType,
  type DecodeLimits,
} from "../calculators/image-gen/codec.js";

const LIMITS: DecodeLimits = { maxPixels: 4096 * 4096 };
const RED = [255, 0, 0] as const;
const BLUE = [0, 0, 255] as const;

/** W×H RGB, left half red, right half blue. */
function twoColour(width: number, height: number): Uint8Array {
  const d = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) d.set(x < width / 2 ? RED : BLUE, (y * width + x) * 3);
  }
  return d;
}

const rawInput = (data: Uint8Array, width: number, height: number, channels: 3 | 4 = 3) =>
  sharp(data, { raw: { width, height, channels } });

function pixel(img: { width: number; data: Uint8Array }, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

function near(actual: number[], expected: readonly number[], tolerance: number, what: string): void {
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(actual[c] - expected[c]) <= tolerance, `${what}: got ${actual}, want ≈${expected}`);
  }
}

/** RGB → ABGR, the layout bmp-ts encodes from. */
function toAbgr(rgb: Uint8Array, alpha = 0): Buffer {
  const out = Buffer.alloc((rgb.length / 3) * 4);
  for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) {
    out[o] = alpha;
    out[o + 1] = rgb[i + 2];
    out[o + 2] = rgb[i + 1];
    out[o + 3] = rgb[i];
  }
  return out;
}

/** A hand-written 24-bit BI_RGB BMP (bmp-ts only writes bottom-up files with no gap before the pixels). */
function bmp24(rgb: Uint8Array, width: number, height: number, opts: { topDown?: boolean; gap?: number } = {}): Buffer {
  const rowBytes = Math.ceil((width * 3) / 4) * 4;
  const gap = opts.gap ?? 0;
  const offset = 54 + gap;
  const buf = Buffer.alloc(offset + rowBytes * height, 0xee);
  buf.write("BM", 0, "latin1");
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(0, 6);
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(opts.topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  buf.writeUInt32LE(0, 30);
  buf.writeUInt32LE(rowBytes * height, 34);
  buf.fill(0, 38, 54);
  for (let y = 0; y < height; y++) {
    const fileRow = opts.topDown ? y : height - 1 - y;
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      const d = offset + fileRow * rowBytes + x * 3;
      buf[d] = rgb[s + 2];
      buf[d + 1] = rgb[s + 1];
      buf[d + 2] = rgb[s];
    }
  }
  return buf;
}

/** Asserts `p` rejects with a 400 HttpError and returns it. */
async function rejects400(p: Promise<unknown>, param: string, code: string | null): Promise<HttpError> {
  let err: unknown;
  await p.then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => {
      err = e;
    },
  );
  assert.ok(err instanceof HttpError, `not an HttpError: ${String(err)}`);
  assert.equal(err.status, 400);
  assert.equal(err.param, param);
  assert.equal(err.code, code);
  assert.equal(err.type, "invalid_request_error");
  return err;
}

async function encodedTwoColour(format: "png" | "jpeg" | "webp" | "gif" | "bmp", w: number, h: number): Promise<Buffer> {
  const rgb = twoColour(w, h);
  switch (format) {
    case "png":
      return rawInput(rgb, w, h).png().toBuffer();
    case "jpeg":
      return rawInput(rgb, w, h).jpeg({ quality: 95 }).toBuffer();
    case "webp":
      return rawInput(rgb, w, h).webp({ lossless: true }).toBuffer();
    case "gif":
      return rawInput(rgb, w, h).gif().toBuffer();
    case "bmp":
      return bmpEncode({ data: toAbgr(rgb), width: w, height: h, bitPP: 24 }).data;
  }
}

test("sniffImageType reads magic bytes only", async () => {
  for (const f of ["png", "jpeg", "webp", "gif", "bmp"] as const) {
    assert.equal(sniffImageType(await encodedTwoColour(f, 4, 2)), f);
  }
  assert.equal(sniffImageType(new Uint8Array(0)), undefined);
  assert.equal(sniffImageType(Buffer.from("hello, this is not an image")), undefined);
  // "BM" text is not a bitmap without a plausible header size.
  assert.equal(sniffImageType(Buffer.from("BMW is a car maker, and this line is long enough")), undefined);
  // RIFF that is not WebP (a WAV header).
  assert.equal(sniffImageType(Buffer.from("RIFF\x24\x00\x00\x00WAVEfmt ", "latin1")), undefined);
  assert.equal(sniffImageType(Buffer.from([0x89, 0x50, 0x4e])), undefined, "truncated signature");
  // A view into a larger buffer is read at its own offset.
  const png = await encodedTwoColour("png", 4, 2);
  const padded = Buffer.concat([Buffer.from("xxxx"), png]);
  assert.equal(sniffImageType(padded.subarray(4)), "png");
});

for (const format of ["png", "jpeg", "webp", "gif", "bmp"] as const) {
  test(`decodeImage ${format}: size and pixels`, async () => {
    const w = 32;
    const h = 16;
    const img = await decodeImage(await encodedTwoColour(format, w, h), "image", LIMITS);
    assert.equal(img.width, w);
    assert.equal(img.height, h);
    assert.equal(img.data.length, w * h * 3);
    const tol = format === "jpeg" ? 40 : 0;
    for (const [x, y] of [[0, 0], [5, 10], [w / 2 - 3, h - 1]]) near(pixel(img, x, y), RED, tol, `${format} (${x},${y})`);
    for (const [x, y] of [[w - 1, 0], [w / 2 + 3, 7], [w - 1, h - 1]]) near(pixel(img, x, y), BLUE, tol, `${format} (${x},${y})`);
  });
}

test("decodeImage is not fooled by a wrong file name or type: only bytes are passed and sniffed", async () => {
  // A JPEG a client labelled "mask.png" / image/png still decodes as JPEG.
  const jpeg = await encodedTwoColour("jpeg", 16, 8);
  assert.equal((await readImageSize(jpeg)).format, "jpeg");
  const img = await decodeImage(jpeg, "image", LIMITS);
  assert.deepEqual([img.width, img.height], [16, 8]);
});

test("BMP: top-down rows, odd widths with row padding, a gap before the pixel data, 32-bit and 8-bit", async () => {
  const w = 5; // 15-byte rows, padded to 16
  const h = 3;
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) & 255;
  for (const opts of [{}, { topDown: true }, { gap: 10 }, { topDown: true, gap: 3 }]) {
    const img = await decodeImage(bmp24(rgb, w, h, opts), "image", LIMITS);
    assert.deepEqual([img.width, img.height], [w, h]);
    assert.deepEqual(Array.from(img.data), Array.from(rgb), JSON.stringify(opts));
  }
  const b32 = bmpEncode({ data: toAbgr(rgb, 255), width: w, height: h, bitPP: 32 }).data;
  assert.deepEqual(Array.from((await decodeImage(b32, "image", LIMITS)).data), Array.from(rgb), "32-bit");

  const two = twoColour(4, 2);
  const palette = [
    { red: 255, green: 0, blue: 0, quad: 0 },
    { red: 0, green: 0, blue: 255, quad: 0 },
  ];
  const b8 = bmpEncode({ data: toAbgr(two), width: 4, height: 2, bitPP: 8, palette, colors: 2 }).data;
  assert.deepEqual(Array.from((await decodeImage(b8, "image", LIMITS)).data), Array.from(two), "8-bit palette");
});

test("a PNG with alpha decodes to its RGB (alpha dropped, not composited)", async () => {
  const png = await sharp({ create: { width: 6, height: 4, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.25 } } })
    .png()
    .toBuffer();
  assert.equal((await sharp(png).metadata()).hasAlpha, true);
  const img = await decodeImage(png, "image", LIMITS);
  assert.equal(img.data.length, 6 * 4 * 3);
  assert.deepEqual(pixel(img, 5, 3), [10, 200, 30]);
});

test("greyscale and 16-bit PNGs decode to 8-bit RGB", async () => {
  const grey = await sharp(new Uint8Array([0, 50, 100, 150, 200, 250]), { raw: { width: 3, height: 2, channels: 1 } }).toColourspace("b-w").png().toBuffer();
  assert.equal((await sharp(grey).metadata()).channels, 1);
  assert.deepEqual(Array.from((await decodeImage(grey, "image", LIMITS)).data), [0, 0, 0, 50, 50, 50, 100, 100, 100, 150, 150, 150, 200, 200, 200, 250, 250, 250]);

  const deep = await sharp({ create: { width: 2, height: 2, channels: 3, background: { r: 200, g: 10, b: 50 } } })
    .toColourspace("rgb16")
    .png()
    .toBuffer();
  assert.equal((await sharp(deep).metadata()).depth, "ushort");
  const img = await decodeImage(deep, "image", LIMITS);
  assert.equal(img.data.length, 12);
  assert.deepEqual(pixel(img, 1, 1), [200, 10, 50]);
});

test("EXIF orientation is applied (JPEG stored 32x16 with orientation 6 decodes as 16x32)", async () => {
  const jpeg = await rawInput(twoColour(32, 16), 32, 16).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  const meta = await sharp(jpeg).metadata();
  assert.deepEqual([meta.width, meta.height, meta.orientation], [32, 16, 6], "the file itself is landscape");
  const img = await decodeImage(jpeg, "image", LIMITS);
  assert.deepEqual([img.width, img.height], [16, 32]);
  // Orientation 6 = rotate 90° clockwise: the stored left (red) half becomes the top.
  near(pixel(img, 8, 2), RED, 40, "top");
  near(pixel(img, 8, 29), BLUE, 40, "bottom");
  assert.deepEqual(await readImageSize(jpeg), { width: 16, height: 32, format: "jpeg", hasAlpha: false });
});

test("the first frame of an animated GIF or WebP", async () => {
  const frame = (background: string) => sharp({ create: { width: 3, height: 2, channels: 3, background } }).png().toBuffer();
  const gif = await sharp([await frame("red"), await frame("blue")], { join: { animated: true } }).gif().toBuffer();
  assert.equal((await sharp(gif).metadata()).pages, 2);
  const img = await decodeImage(gif, "image", LIMITS);
  assert.deepEqual([img.width, img.height], [3, 2]);
  assert.deepEqual(pixel(img, 2, 1), [...RED]);

  const webp = await sharp([await frame("red"), await frame("blue")], { join: { animated: true } }).webp({ lossless: true }).toBuffer();
  assert.equal((await sharp(webp).metadata()).pages, 2);
  const w = await decodeImage(webp, "image", LIMITS);
  assert.deepEqual([w.width, w.height], [3, 2]);
  assert.deepEqual(pixel(w, 0, 0), [...RED]);
});

test("unreadable uploads are 400s naming the field, never crashes", async () => {
  const png = await encodedTwoColour("png", 64, 64);
  const jpeg = await encodedTwoColour("jpeg", 64, 64);

  const corrupt = Buffer.concat([png.subarray(0, 33), Buffer.from("garbage".repeat(40))]);
  let e = await rejects400(decodeImage(corrupt, "image", LIMITS), "image", "invalid_image_file");
  assert.match(e.message, /^Image parsing failed: image: invalid PNG data/);

  e = await rejects400(decodeImage(png.subarray(0, png.length - 20), "image[1]", LIMITS), "image[1]", "invalid_image_file");
  assert.match(e.message, /^Image parsing failed: image\[1\]: invalid PNG data/);

  e = await rejects400(decodeImage(jpeg.subarray(0, jpeg.length >> 1), "image", LIMITS), "image", "invalid_image_file");
  assert.match(e.message, /^Image parsing failed: image: invalid JPEG data \(.*premature end/i);

  const random = new Uint8Array(1000);
  for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
  random[0] = 0; // make sure no signature matches by chance
  e = await rejects400(decodeImage(random, "image", LIMITS), "image", "unsupported_file_mimetype");
  assert.equal(e.message, "Image parsing failed: image is not a PNG, JPEG, WebP, GIF or BMP image");

  e = await rejects400(decodeImage(Buffer.from("just some text\n"), "mask", LIMITS), "mask", "unsupported_file_mimetype");
  assert.match(e.message, /^Image parsing failed: mask is not a PNG/);

  e = await rejects400(decodeImage(new Uint8Array(0), "image", LIMITS), "image", "invalid_image_file");
  assert.equal(e.message, "Image parsing failed: image is empty");

  // Signature only: sniffed, then refused by the decoder.
  e = await rejects400(decodeImage(png.subarray(0, 8), "image", LIMITS), "image", "invalid_image_file");
  assert.match(e.message, /^Image parsing failed: /);

  const bmp = bmp24(twoColour(8, 8), 8, 8);
  e = await rejects400(decodeImage(bmp.subarray(0, bmp.length - 10), "image", LIMITS), "image", "invalid_image_file");
  assert.match(e.message, /^Image parsing failed: image: BMP pixel data is truncated/);
  e = await rejects400(decodeImage(bmp.subarray(0, 30), "image", LIMITS), "image", "invalid_image_file");
  assert.match(e.message, /^Image parsing failed: image: BMP header is truncated/);
  const rle = Buffer.from(bmp);
  rle.writeUInt32LE(1, 30);
  e = await rejects400(decodeImage(rle, "image", LIMITS), "image", "invalid_image_file");
  assert.match(e.message, /compression method 1 is not supported/);

  // Masks go through the same checks.
  await rejects400(decodeMask(corrupt, "mask", 64, 64, LIMITS), "mask", "invalid_image_file");
});

/** A valid PNG of side×side black pixels: ~1 MB on disk for 20000, 1.2 GB decoded. */
async function pngBomb(side: number): Promise<Buffer> {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  // zlib stream of side×(1+3·side) zero bytes (filter 0, black), built fast: one fully
  // flushed deflate block (history reset, so its bytes can repeat) plus the
  // checksum, which for N zero bytes is adler32 = (N mod 65521) << 16 | 1.
  const rowLen = 1 + side * 3;
  const blockRows = 1000;
  assert.equal(side % blockRows, 0);
  const block = zlib.deflateRawSync(Buffer.alloc(blockRows * rowLen), { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  const total = side * rowLen;
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((total % 65521) << 16) | 1) >>> 0);
  const idat = Buffer.concat([
    Buffer.from([0x78, 0xda]),
    ...Array.from({ length: side / blockRows }, () => block),
    zlib.deflateRawSync(Buffer.alloc(0)), // final empty block
    adler,
  ]);
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", Buffer.alloc(0))]);
}

test("decompression bombs are refused from the header, naming the limit", async () => {
  const bomb = await pngBomb(20000);
  assert.ok(bomb.length < 2_000_000, `bomb is ${bomb.length} bytes`);
  const t = performance.now();
  const e = await rejects400(decodeImage(bomb, "image", LIMITS), "image", "invalid_image_file");
  const ms = performance.now() - t;
  assert.match(e.message, /^Image parsing failed: image: image is 20000x20000 \(400000000 pixels\), more than the limit of 16777216 pixels$/);
  assert.ok(ms < 1000, `took ${ms} ms: decoded instead of refused?`);
  await rejects400(decodeMask(bomb, "mask", 20000, 20000, LIMITS), "mask", "invalid_image_file");

  // A BMP header declaring 20000x20000 in 60 bytes: refused on the limit, before bmp-ts allocates.
  const bmp = bmp24(new Uint8Array(3), 1, 1);
  bmp.writeInt32LE(20000, 18);
  bmp.writeInt32LE(-20000, 22);
  const eb = await rejects400(decodeImage(bmp, "image", LIMITS), "image", "invalid_image_file");
  assert.match(eb.message, /20000x20000 .*limit of 16777216 pixels/);
});

test("the pixel limit is exact: width×height equal to it passes, one more row fails", async () => {
  const png8x4 = await encodedTwoColour("png", 8, 4);
  const bmp8x4 = await encodedTwoColour("bmp", 8, 4);
  for (const bytes of [png8x4, bmp8x4]) {
    assert.equal((await decodeImage(bytes, "image", { maxPixels: 32 })).width, 8);
    const e = await rejects400(decodeImage(bytes, "image", { maxPixels: 31 }), "image", "invalid_image_file");
    assert.match(e.message, /8x4 \(32 pixels\), more than the limit of 31 pixels/);
  }
  await assert.rejects(decodeImage(png8x4, "image", { maxPixels: 0 }), RangeError, "0 would mean no limit to sharp");
});

// ---- masks ----

/** 4×4 RGB, white in the top-left 2×2, black elsewhere. */
function whiteCorner(): Uint8Array {
  const d = new Uint8Array(4 * 4 * 3);
  for (const [x, y] of [[0, 0], [1, 0], [0, 1], [1, 1]]) d.fill(255, (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
  return d;
}
const CORNER_MASK = Array.from({ length: 16 }, (_, p) => ((p % 4) < 2 && p < 8 ? 255 : 0)).flatMap((v) => [v, v, v]);

test("mask, OVMS convention: white-on-black RGB repaints where white (PNG, BMP, JPEG)", async () => {
  const rgb = whiteCorner();
  const png = await rawInput(rgb, 4, 4).png().toBuffer();
  const m = await decodeMask(png, "mask", 4, 4, LIMITS);
  assert.deepEqual([m.width, m.height], [4, 4]);
  assert.deepEqual(Array.from(m.data), CORNER_MASK);

  const bmp = bmpEncode({ data: toAbgr(rgb), width: 4, height: 4, bitPP: 24 }).data;
  assert.deepEqual(Array.from((await decodeMask(bmp, "mask", 4, 4, LIMITS)).data), CORNER_MASK);

  // Grey levels are luminance: (255,0,0) → 76, (0,255,0) → 150.
  const colours = await rawInput(new Uint8Array([255, 0, 0, 0, 255, 0]), 2, 1).png().toBuffer();
  assert.deepEqual(Array.from((await decodeMask(colours, "mask", 2, 1, LIMITS)).data), [76, 76, 76, 150, 150, 150]);

  const big = new Uint8Array(64 * 64 * 3);
  for (let y = 0; y < 32; y++) big.fill(255, y * 64 * 3, (y + 1) * 64 * 3);
  const jpeg = await rawInput(big, 64, 64).jpeg({ quality: 90 }).toBuffer();
  const jm = await decodeMask(jpeg, "mask", 64, 64, LIMITS);
  near(pixel(jm, 10, 5), [255, 255, 255], 10, "jpeg white");
  near(pixel(jm, 10, 60), [0, 0, 0], 10, "jpeg black");
});

test("mask, OpenAI convention: transparent areas repaint (255 - alpha)", async () => {
  // Opaque black except a transparent hole at (1,1) and a half-transparent pixel at (3,0).
  const rgba = new Uint8Array(4 * 2 * 4);
  for (let p = 0; p < 8; p++) rgba[p * 4 + 3] = 255;
  rgba[(1 * 4 + 1) * 4 + 3] = 0;
  rgba[(0 * 4 + 3) * 4 + 3] = 128;
  // Colour under the alpha must not matter: make the hole white and a kept pixel white too.
  rgba.fill(255, (1 * 4 + 1) * 4, (1 * 4 + 1) * 4 + 3);
  rgba.fill(255, 0, 3);
  const png = await rawInput(rgba, 4, 2, 4).png().toBuffer();
  const m = await decodeMask(png, "mask", 4, 2, LIMITS);
  const values = Array.from({ length: 8 }, (_, p) => m.data[p * 3]);
  assert.deepEqual(values, [0, 0, 0, 127, 0, 255, 0, 0]);
  for (let p = 0; p < 8; p++) assert.equal(m.data[p * 3 + 1], values[p], "grey: R = G = B");

  const webp = await rawInput(rgba, 4, 2, 4).webp({ lossless: true }).toBuffer();
  assert.deepEqual(Array.from((await decodeMask(webp, "mask", 4, 2, LIMITS)).data), Array.from(m.data), "webp with alpha");

  // 32-bit BMP with a real alpha channel (BITMAPV4-style alpha mask via BI_BITFIELDS is what
  // editors write; bmp-ts writes BI_RGB, whose alpha byte it ignores → opaque → luminance).
  const abgr = Buffer.alloc(8 * 4);
  for (let p = 0; p < 8; p++) abgr.set([rgba[p * 4 + 3], rgba[p * 4 + 2], rgba[p * 4 + 1], rgba[p * 4]], p * 4);
  const b32 = bmpEncode({ data: abgr, width: 4, height: 2, bitPP: 32 }).data;
  const lum = Array.from((await decodeMask(b32, "mask", 4, 2, LIMITS)).data).filter((_, i) => i % 3 === 0);
  assert.deepEqual(lum, [255, 0, 0, 0, 0, 255, 0, 0], "BI_RGB 32-bit BMP: alpha byte unused, luminance");
});

test("mask: a fully opaque RGBA mask uses the luminance convention", async () => {
  const rgb = whiteCorner();
  const rgba = new Uint8Array(16 * 4);
  for (let p = 0; p < 16; p++) rgba.set([rgb[p * 3], rgb[p * 3 + 1], rgb[p * 3 + 2], 255], p * 4);
  const png = await rawInput(rgba, 4, 4, 4).png().toBuffer();
  assert.equal((await sharp(png).metadata()).hasAlpha, true);
  assert.deepEqual(Array.from((await decodeMask(png, "mask", 4, 4, LIMITS)).data), CORNER_MASK);
});

test("mask of the wrong size is a 400 on param mask", async () => {
  const png = await rawInput(whiteCorner(), 4, 4).png().toBuffer();
  const e = await rejects400(decodeMask(png, "mask", 8, 4, LIMITS), "mask", null);
  assert.equal(e.message, "mask size 4x4 does not match image size 8x4");
  await rejects400(decodeMask(png, "mask", 4, 5, LIMITS), "mask", null);
});

test("mask of the wrong size is a 400 naming the original sizes, also when resizing", async () => {
  const png = await rawInput(whiteCorner(), 4, 4).png().toBuffer();
  const e = await rejects400(decodeMask(png, "mask", 8, 4, LIMITS, { width: 2, height: 2 }), "mask", null);
  assert.equal(e.message, "mask size 4x4 does not match image size 8x4");
  // Same-size request, different output size: accepted.
  assert.equal((await decodeMask(png, "mask", 4, 4, LIMITS, { width: 8, height: 8 })).width, 8);
  const bmp = bmpEncode({ data: toAbgr(whiteCorner()), width: 4, height: 4, bitPP: 24 }).data;
  const eb = await rejects400(decodeMask(bmp, "mask", 4, 6, LIMITS, { width: 2, height: 3 }), "mask", null);
  assert.equal(eb.message, "mask size 4x4 does not match image size 4x6");
  // Orientation counts: a JPEG stored 32x16 with orientation 6 is a 16x32 mask.
  const jpeg = await rawInput(twoColour(32, 16), 32, 16).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const ej = await rejects400(decodeMask(jpeg, "mask", 32, 16, LIMITS, { width: 8, height: 8 }), "mask", null);
  assert.equal(ej.message, "mask size 16x32 does not match image size 32x16");
  assert.equal((await decodeMask(jpeg, "mask", 16, 32, LIMITS, { width: 8, height: 8 })).data.length, 8 * 8 * 3);
});

// ---- resizing on decode ----

test("decodeImage with a size resizes inside the pipeline: exact size, colours kept (every format)", async () => {
  for (const format of ["png", "jpeg", "webp", "gif", "bmp"] as const) {
    const img = await decodeImage(await encodedTwoColour(format, 64, 32), "image", LIMITS, { width: 16, height: 24 });
    assert.deepEqual([img.width, img.height, img.data.length], [16, 24, 16 * 24 * 3], format);
    const tol = format === "jpeg" ? 40 : 2;
    for (let y = 0; y < 24; y++) {
      near(pixel(img, 0, y), RED, tol, `${format} left (0,${y})`);
      near(pixel(img, 6, y), RED, tol, `${format} left (6,${y})`);
      near(pixel(img, 9, y), BLUE, tol, `${format} right (9,${y})`);
      near(pixel(img, 15, y), BLUE, tol, `${format} right (15,${y})`);
    }
  }
  // A solid colour stays exactly that colour, up- or down-scaled.
  const solid = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 12, g: 200, b: 99 } } }).png().toBuffer();
  for (const size of [{ width: 7, height: 5 }, { width: 100, height: 3 }, { width: 40, height: 30 }]) {
    const img = await decodeImage(solid, "image", LIMITS, size);
    assert.deepEqual([img.width, img.height], [size.width, size.height]);
    for (let p = 0; p < size.width * size.height; p++) assert.deepEqual(Array.from(img.data.subarray(p * 3, p * 3 + 3)), [12, 200, 99]);
  }
  const bmp = bmp24(new Uint8Array(30 * 20 * 3).fill(77), 30, 20);
  const b = await decodeImage(bmp, "image", LIMITS, { width: 9, height: 4 });
  assert.ok(b.data.length === 9 * 4 * 3 && b.data.every((v) => v === 77), "solid BMP resized");
  // Orientation is applied before the resize: the red top of the rotated JPEG stays on top.
  const jpeg = await rawInput(twoColour(32, 16), 32, 16).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  const r = await decodeImage(jpeg, "image", LIMITS, { width: 8, height: 8 });
  near(pixel(r, 4, 1), RED, 40, "rotated top");
  near(pixel(r, 4, 6), BLUE, 40, "rotated bottom");
  await assert.rejects(decodeImage(solid, "image", LIMITS, { width: 0, height: 4 }), RangeError);
  await assert.rejects(decodeMask(solid, "mask", 40, 30, LIMITS, { width: 4, height: 1.5 }), RangeError);
});

/**
 * A resized 32x16 mask whose left half should be 255 (R = G = B asserted): flat
 * 255 / 0 away from the edge; the two columns touching it (15, 16) may blend, as
 * the linear kernel spans the edge from both sides when halving.
 */
function assertLeftHalfRepaint(m: { width: number; height: number; data: Uint8Array }, what: string): void {
  assert.deepEqual([m.width, m.height], [32, 16], what);
  const columns: number[] = [];
  for (let x = 0; x < 32; x++) {
    const column = new Set<number>();
    for (let y = 0; y < 16; y++) {
      const i = (y * 32 + x) * 3;
      assert.ok(m.data[i] === m.data[i + 1] && m.data[i] === m.data[i + 2], `${what}: grey at (${x},${y})`);
      column.add(m.data[i]);
    }
    assert.equal(column.size, 1, `${what}: column ${x} is uniform`);
    columns.push([...column][0]);
  }
  const expected = columns.map((v, x) => (x < 15 ? 255 : x > 16 ? 0 : v));
  assert.deepEqual(columns, expected, `${what}: ${columns}`);
  assert.ok(columns[15] >= 128 && columns[16] <= 127, `${what}: the edge is between columns 15 and 16 (${columns[15]}, ${columns[16]})`);
}

test("decodeMask with a size: the hole stays in place (alpha, luminance, BMP)", async () => {
  // 64x64, opaque black, left half fully transparent (OpenAI convention).
  const rgba = new Uint8Array(64 * 64 * 4);
  for (let p = 0; p < 64 * 64; p++) rgba[p * 4 + 3] = p % 64 < 32 ? 0 : 255;
  const png = await rawInput(rgba, 64, 64, 4).png().toBuffer();
  assertLeftHalfRepaint(await decodeMask(png, "mask", 64, 64, LIMITS, { width: 32, height: 16 }), "alpha png");

  // Same hole in OVMS's convention (white = repaint), PNG and BMP.
  const rgb = new Uint8Array(64 * 64 * 3);
  for (let p = 0; p < 64 * 64; p++) if (p % 64 < 32) rgb.fill(255, p * 3, p * 3 + 3);
  const lum = await rawInput(rgb, 64, 64).png().toBuffer();
  assertLeftHalfRepaint(await decodeMask(lum, "mask", 64, 64, LIMITS, { width: 32, height: 16 }), "luminance png");
  assertLeftHalfRepaint(await decodeMask(bmp24(rgb, 64, 64), "mask", 64, 64, LIMITS, { width: 32, height: 16 }), "luminance bmp");

  // Without a size the values are exact, and an RGBA mask with alpha 255 everywhere is luminance.
  const full = await decodeMask(png, "mask", 64, 64, LIMITS);
  assert.deepEqual([pixel(full, 31, 40), pixel(full, 32, 40)], [[255, 255, 255], [0, 0, 0]]);
});

// ---- BMP off the main thread ----

test("a large BMP decodes on a worker: the event loop is not stalled", async () => {
  const side = 4096;
  const rgb = new Uint8Array(side * side * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 7) & 255;
  const bmp = bmp24(rgb, side, side);
  // Warm the pool up (thread start, module load) on a tiny file, as a server would be after its first BMP.
  await decodeImage(bmp24(new Uint8Array(3), 1, 1), "image", LIMITS);

  const h = monitorEventLoopDelay({ resolution: 1 });
  let maxGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  h.enable();
  const t = performance.now();
  let img: Awaited<ReturnType<typeof decodeImage>>;
  try {
    img = await decodeImage(bmp, "image", LIMITS);
  } finally {
    h.disable();
    clearInterval(timer);
  }
  const decodeMs = performance.now() - t;
  const maxDelayMs = h.max / 1e6;
  console.log(`4096x4096 24-bit BMP: decode ${decodeMs.toFixed(0)} ms, max event-loop delay ${maxDelayMs.toFixed(1)} ms, max 1 ms-timer gap ${maxGap.toFixed(1)} ms`);
  assert.deepEqual([img.width, img.height], [side, side]);
  assert.ok(Buffer.from(img.data).equals(Buffer.from(rgb)), "pixels");
  assert.ok(decodeMs > 100, `decode took only ${decodeMs} ms: the measurement means nothing`);
  // On the main thread the decode would stall the loop for about all of decodeMs; on a worker only
  // scheduling noise remains, which a loaded machine stretches but never to a quarter of the decode.
  assert.ok(maxGap < decodeMs / 4, `event loop stalled ${maxGap} ms during a ${decodeMs} ms decode`);
  assert.ok(maxDelayMs < decodeMs / 4, `event loop delay ${maxDelayMs} ms during a ${decodeMs} ms decode`);
});

test("a BMP bomb is refused on the calling thread, before any dispatch", async () => {
  const bmp = bmp24(new Uint8Array(3), 1, 1);
  bmp.writeInt32LE(8192, 18);
  bmp.writeInt32LE(8192, 22);
  const t = performance.now();
  const e = await rejects400(decodeImage(bmp, "image", LIMITS), "image", "invalid_image_file");
  assert.match(e.message, /8192x8192 .*limit of 16777216 pixels/);
  // Within the limit but truncated: also refused from the header (the worker would allocate 256 MB).
  const e2 = await rejects400(decodeImage(bmp, "image", { maxPixels: 8192 * 8192 }), "image", "invalid_image_file");
  assert.match(e2.message, /BMP pixel data is truncated/);
  assert.ok(performance.now() - t < 50, "instant");
});

test("a process that decoded a BMP exits promptly (the idle pool does not keep it alive)", async () => {
  const codec = new URL("../calculators/image-gen/codec.js", import.meta.url).href;
  const script = `
    import { decodeImage, decodeMask } from ${JSON.stringify(codec)};
    const bmp = Buffer.alloc(54 + 4 * 2);
    bmp.write("BM", 0, "latin1"); bmp.writeUInt32LE(bmp.length, 2); bmp.writeUInt32LE(54, 10); bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(1, 18); bmp.writeInt32LE(2, 22); bmp.writeUInt16LE(1, 26); bmp.writeUInt16LE(24, 28);
    const img = await decodeImage(bmp, "image", { maxPixels: 100 });
    const mask = await decodeMask(bmp, "mask", 1, 2, { maxPixels: 100 }, { width: 3, height: 3 });
    console.log(img.width + "x" + img.height, mask.width + "x" + mask.height);
  `;
  const t = performance.now();
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: fileURLToPath(new URL(".", import.meta.url)) });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const killer = setTimeout(() => child.kill(), 10_000);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  clearTimeout(killer);
  const ms = performance.now() - t;
  console.log(`child decoded a BMP and exited in ${ms.toFixed(0)} ms`);
  assert.equal(code, 0, err);
  assert.equal(out.trim(), "1x2 3x3");
  assert.ok(ms < 3000, `exited after ${ms} ms: kept alive by the pool's idle timeout?`);
});

test("readImageSize with limits refuses oversized images from the header", async () => {
  const png = await encodedTwoColour("png", 8, 4);
  assert.deepEqual(await readImageSize(png, "image[2]", { maxPixels: 32 }), { width: 8, height: 4, format: "png", hasAlpha: false });
  const e = await rejects400(readImageSize(png, "image[2]", { maxPixels: 31 }), "image[2]", "invalid_image_file");
  assert.match(e.message, /8x4 \(32 pixels\), more than the limit of 31 pixels/);
  const bmp = await encodedTwoColour("bmp", 8, 4);
  await rejects400(readImageSize(bmp, "image", { maxPixels: 31 }), "image", "invalid_image_file");
});

// ---- encoding ----

/** A deterministic, busy RGB image (so lossy sizes depend on quality). */
function noise(width: number, height: number, seed: number): Uint8Array {
  const d = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < d.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    d[i] = ((i / 3) % width) + (s >>> 27);
  }
  return d;
}

test("encodeImage round trips png (lossless), jpeg and webp", async () => {
  const w = 48;
  const h = 32;
  const data = noise(w, h, 1);
  for (const format of ["png", "jpeg", "webp"] as const) {
    const buf = await encodeImage({ width: w, height: h, data }, { format });
    assert.ok(Buffer.isBuffer(buf));
    const meta = await sharp(buf).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], [format, w, h]);
    assert.equal(sniffImageType(buf), format);
    const back = await decodeImage(buf, "image", LIMITS);
    assert.deepEqual([back.width, back.height], [w, h]);
    if (format === "png") {
      assert.ok(Buffer.from(back.data).equals(Buffer.from(data)), "png is exact");
    } else {
      let err = 0;
      for (let i = 0; i < data.length; i++) err += Math.abs(back.data[i] - data[i]);
      assert.ok(err / data.length < 12, `${format} mean error ${err / data.length}`);
    }
  }
  await assert.rejects(encodeImage({ width: w, height: h, data: data.subarray(1) }, { format: "png" }), RangeError);
  await assert.rejects(encodeImage({ width: w, height: h, data }, { format: "jpeg", compression: 101 }), RangeError);
});

test("compression lowers jpeg and webp size; png ignores it", async () => {
  const image = { width: 64, height: 64, data: noise(64, 64, 7) };
  for (const format of ["jpeg", "webp"] as const) {
    const low = await encodeImage(image, { format, compression: 10 });
    const high = await encodeImage(image, { format, compression: 100 });
    const dflt = await encodeImage(image, { format });
    assert.ok(low.length < high.length, `${format}: ${low.length} !< ${high.length}`);
    assert.ok(dflt.equals(high), `${format}: default is 100`);
  }
  const jpeg0 = await encodeImage(image, { format: "jpeg", compression: 0 });
  assert.equal((await sharp(jpeg0).metadata()).format, "jpeg", "0 is clamped, not refused");
  const a = await encodeImage(image, { format: "png", compression: 10 });
  const b = await encodeImage(image, { format: "png", compression: 100 });
  assert.ok(a.equals(b));
});

test("encodeBatch encodes NHWC images back to back, from views", async () => {
  const w = 16;
  const h = 8;
  const size = w * h * 3;
  // Offset inside a larger buffer, as a tensor slice would be.
  const backing = new Uint8Array(7 + 3 * size);
  const batch = backing.subarray(7);
  for (let i = 0; i < 3; i++) batch.set(noise(w, h, 100 + i), i * size);
  const out = await encodeBatch(batch, 3, w, h, { format: "png" });
  assert.equal(out.length, 3);
  assert.equal(new Set(out.map((b) => b.toString("base64"))).size, 3, "distinct contents");
  for (let i = 0; i < 3; i++) {
    const back = await decodeImage(out[i], `image[${i}]`, LIMITS);
    assert.ok(Buffer.from(back.data).equals(Buffer.from(batch.subarray(i * size, (i + 1) * size))), `image ${i}`);
  }
  const jpegs = await encodeBatch(batch, 3, w, h, { format: "jpeg", compression: 50 });
  assert.deepEqual(jpegs.map((b) => sniffImageType(b)), ["jpeg", "jpeg", "jpeg"]);
  assert.deepEqual(await encodeBatch(new Uint8Array(0), 0, w, h, { format: "png" }), []);
  await assert.rejects(encodeBatch(batch, 2, w, h, { format: "png" }), RangeError);
});

test("readImageSize reads headers of every format", async () => {
  for (const format of ["png", "jpeg", "webp", "gif", "bmp"] as const) {
    // libvips reads every GIF with an alpha band (a GIF may have a transparent colour).
    assert.deepEqual(await readImageSize(await encodedTwoColour(format, 10, 6)), { width: 10, height: 6, format, hasAlpha: format === "gif" });
  }
  const rgba = await rawInput(new Uint8Array(10 * 6 * 4).fill(255), 10, 6, 4).png().toBuffer();
  assert.deepEqual(await readImageSize(rgba), { width: 10, height: 6, format: "png", hasAlpha: true });
  await rejects400(readImageSize(Buffer.from("nope")), "image", "unsupported_file_mimetype");
});

test("the bomb builder makes a valid PNG (checked small: it decodes when under the limit)", async () => {
  const img = await decodeImage(await pngBomb(2000), "image", LIMITS);
  assert.deepEqual([img.width, img.height], [2000, 2000]);
  assert.ok(img.data.every((v) => v === 0));
});

// ---- an image's own transparency as the mask (OpenAI's edit rule without a mask) ----

/** W×H grey+alpha (2-band) or RGBA PNG: opaque, alpha `hole` in the left column. */
async function holePng(width: number, height: number, bands: 2 | 4, hole: number): Promise<Buffer> {
  const d = new Uint8Array(width * height * bands).fill(200);
  for (let p = 0; p < width * height; p++) d[p * bands + bands - 1] = p % width === 0 ? hole : 255;
  const img = sharp(d, { raw: { width, height, channels: bands } });
  return (bands === 2 ? img.toColourspace("b-w") : img).png().toBuffer();
}

test("decodeAlphaMask: transparent pixels are repainted (255 - alpha), for RGBA and grey+alpha PNGs; none when opaque or without alpha", async () => {
  for (const bands of [4, 2] as const) {
    const png = await holePng(4, 2, bands, 0);
    assert.equal((await sharp(png).metadata()).channels, bands);
    const mask = await decodeAlphaMask(png, "image", LIMITS);
    assert.ok(mask !== undefined, `${bands} bands`);
    assert.deepEqual([mask.width, mask.height], [4, 2]);
    assert.deepEqual([pixel(mask, 0, 0), pixel(mask, 0, 1), pixel(mask, 1, 0), pixel(mask, 3, 1)], [[255, 255, 255], [255, 255, 255], [0, 0, 0], [0, 0, 0]], `${bands} bands`);
    // The same mask as that file sent as the mask part.
    assert.deepEqual(mask, await decodeMask(png, "mask", 4, 2, LIMITS), `${bands} bands`);
    // Resized like a mask.
    const resized = await decodeAlphaMask(png, "image", LIMITS, { width: 8, height: 4 });
    assert.deepEqual([resized?.width, resized?.height], [8, 4]);
  }
  assert.equal(await decodeAlphaMask(await holePng(4, 2, 4, 255), "image", LIMITS), undefined, "an alpha channel, every pixel opaque");
  // Alpha that only fades (nothing the backends would repaint: mask 255 - alpha below 127.5) is no
  // mask: the edit is of the whole image. The same file sent as the mask part is a mask that keeps all.
  assert.equal(await decodeAlphaMask(await holePng(4, 2, 4, 128), "image", LIMITS), undefined, "alpha 128 and 255");
  assert.ok(await decodeMask(await holePng(4, 2, 4, 128), "mask", 4, 2, LIMITS));
  assert.ok(await decodeAlphaMask(await holePng(4, 2, 4, 127), "image", LIMITS), "alpha 127 is repainted");
  assert.equal(await decodeAlphaMask(await encodedTwoColour("png", 4, 2), "image", LIMITS), undefined, "no alpha channel");
  assert.equal(await decodeAlphaMask(await encodedTwoColour("jpeg", 4, 2), "image", LIMITS), undefined, "a JPEG");
  assert.equal(await decodeAlphaMask(await encodedTwoColour("gif", 4, 2), "image", LIMITS), undefined, "a GIF without a transparent colour");
  await rejects400(decodeAlphaMask(await holePng(8, 4, 4, 0), "image[0]", { maxPixels: 31 }), "image[0]", "invalid_image_file");
});
