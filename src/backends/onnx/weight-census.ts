/**
 * What an ONNX model's weights take, read from the model file without loading it:
 * the top-level graph's initializers (element type, shape, inline or external data),
 * scanned field by field with positioned reads so a 2 GB inline model.onnx or a
 * 20 GB `model.onnx_data` is never read whole. Only tensor headers are read; the
 * data (raw_data, typed *_data, external files) is skipped by length.
 */
import { open, stat, type FileHandle } from "node:fs/promises";

export interface WeightCensus {
  /** Bytes the initializers hold as stored (inline and external data). */
  readonly storedBytes: number;
  /** Bytes they hold once loaded here: float16 is widened to float32 (upcast-fp16.ts), the rest as stored. */
  readonly loadedBytes: number;
  /** Loaded bytes of 4-D initializers (convolution kernels, which ORT re-lays out for its CPU kernels). */
  readonly convBytes: number;
  /** The part of `convBytes` in kernels under SMALL_TENSOR_BYTES each (their originals stay with the allocator). */
  readonly smallConvBytes: number;
  /** Stored bytes of initializers whose data is inside model.onnx (ORT holds the file's protobuf while it builds the session). */
  readonly inlineBytes: number;
  /** Stored bytes of float16 initializers: non-zero means the model is rewritten to float32 when it loads. */
  readonly float16Bytes: number;
  /** Loaded bytes of the largest initializer. */
  readonly largestBytes: number;
  /** Initializers counted. */
  readonly tensors: number;
  /** Size of model.onnx itself. */
  readonly fileBytes: number;
  /** External data files the initializers name (as written in the model, relative to its folder). */
  readonly externalFiles: readonly string[];
}

/** ONNX TensorProto.DataType → bytes per element as stored (sub-byte types as fractions). */
const ELEMENT_BYTES: Readonly<Record<number, number>> = {
  1: 4, // FLOAT
  2: 1, // UINT8
  3: 1, // INT8
  4: 2, // UINT16
  5: 2, // INT16
  6: 4, // INT32
  7: 8, // INT64
  9: 1, // BOOL
  10: 2, // FLOAT16
  11: 8, // DOUBLE
  12: 4, // UINT32
  13: 8, // UINT64
  14: 8, // COMPLEX64
  15: 16, // COMPLEX128
  16: 2, // BFLOAT16
  17: 1, // FLOAT8E4M3FN
  18: 1, // FLOAT8E4M3FNUZ
  19: 1, // FLOAT8E5M2
  20: 1, // FLOAT8E5M2FNUZ
  21: 0.5, // UINT4
  22: 0.5, // INT4
  23: 0.5, // FLOAT4E2M1
};
const FLOAT16 = 10;
/**
 * glibc's largest mmap threshold (32 MiB on 64-bit): a block under it may come from the heap,
 * which keeps it when freed; a larger one is mapped and given back to the system when freed.
 */
export const SMALL_TENSOR_BYTES = 32 * 2 ** 20;

// ModelProto.graph, GraphProto.initializer, TensorProto fields.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR = { dims: 1, dataType: 2, externalData: 13, dataLocation: 14 } as const;
const ENTRY = { key: 1, value: 2 } as const;

const WINDOW = 64 * 1024;

/** Positioned reads through a window, so headers cost one read per neighbourhood and skipped data none. */
class Cursor {
  private buf = Buffer.alloc(0);
  private start = 0;

  constructor(
    private readonly file: FileHandle,
    readonly size: number,
    private readonly path: string,
  ) {}

  private async ensure(pos: number, n: number): Promise<void> {
    if (pos >= this.start && pos + n <= this.start + this.buf.length) return;
    const want = Math.min(Math.max(n, WINDOW), this.size - pos);
    if (want < n) throw new Error(`${this.path}: truncated at byte ${pos}`);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await this.file.read(buf, 0, want, pos);
    if (bytesRead < n) throw new Error(`${this.path}: truncated at byte ${pos}`);
    this.buf = buf.subarray(0, bytesRead);
    this.start = pos;
  }

  async varint(pos: number): Promise<[value: number, next: number]> {
    await this.ensure(pos, Math.min(10, this.size - pos));
    let value = 0;
    let scale = 1;
    for (let p = pos; ; p++) {
      const b = this.buf[p - this.start];
      if (b === undefined) throw new Error(`${this.path}: truncated varint at byte ${pos}`);
      value += (b & 0x7f) * scale;
      if (b < 0x80) return [value, p + 1];
      scale *= 128;
    }
  }

  async bytes(pos: number, n: number): Promise<Buffer> {
    await this.ensure(pos, n);
    return this.buf.subarray(pos - this.start, pos - this.start + n);
  }
}

interface FieldHead {
  readonly field: number;
  readonly wire: number;
  /** Where the value (or a length-delimited payload) starts. */
  readonly at: number;
  /** Where the next field starts. */
  readonly end: number;
}

async function fieldAt(c: Cursor, pos: number, limit: number, path: string): Promise<FieldHead> {
  const [tag, p] = await c.varint(pos);
  const field = Math.floor(tag / 8);
  const wire = tag % 8;
  let at = p;
  let end: number;
  if (wire === 0) end = (await c.varint(p))[1];
  else if (wire === 1) end = p + 8;
  else if (wire === 5) end = p + 4;
  else if (wire === 2) {
    const [len, q] = await c.varint(p);
    at = q;
    end = q + len;
  } else throw new Error(`${path}: not an ONNX model (protobuf wire type ${wire} at byte ${pos})`);
  if (end > limit) throw new Error(`${path}: not an ONNX model (a field at byte ${pos} runs past its message)`);
  return { field, wire, at, end };
}

/** Decodes the small external_data key/value entries of a tensor. */
function entry(bytes: Buffer): [key: string, value: string] {
  let key = "";
  let value = "";
  for (let p = 0; p < bytes.length; ) {
    const tag = bytes[p++];
    let len = 0;
    let scale = 1;
    for (;;) {
      const b = bytes[p++];
      if (b === undefined) return [key, value];
      len += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
    }
    const s = bytes.subarray(p, p + len).toString("utf8");
    if (tag === ENTRY.key * 8 + 2) key = s;
    else if (tag === ENTRY.value * 8 + 2) value = s;
    p += len;
  }
  return [key, value];
}

interface TensorHead {
  readonly dims: number[];
  readonly dataType: number;
  readonly external: boolean;
  readonly location?: string;
}

async function tensorHead(c: Cursor, from: number, to: number, path: string): Promise<TensorHead> {
  const dims: number[] = [];
  let dataType = 0;
  let external = false;
  let location: string | undefined;
  for (let pos = from; pos < to; ) {
    const f = await fieldAt(c, pos, to, path);
    if (f.field === TENSOR.dims) {
      if (f.wire === 0) dims.push((await c.varint(f.at))[0]);
      else if (f.wire === 2) for (let p = f.at; p < f.end; ) {
        const [d, q] = await c.varint(p);
        dims.push(d);
        p = q;
      }
    } else if (f.field === TENSOR.dataType && f.wire === 0) dataType = (await c.varint(f.at))[0];
    else if (f.field === TENSOR.dataLocation && f.wire === 0) external = (await c.varint(f.at))[0] === 1;
    else if (f.field === TENSOR.externalData && f.wire === 2) {
      const [key, value] = entry(await c.bytes(f.at, f.end - f.at));
      if (key === "location") location = value;
    }
    pos = f.end;
  }
  return { dims, dataType, external, location };
}

/**
 * Counts the initializers of the model at `path`. Throws an Error naming the file when it is
 * not a readable ONNX model (the caller words it for its context).
 */
export async function readWeightCensus(path: string): Promise<WeightCensus> {
  const fileBytes = (await stat(path)).size;
  const file = await open(path, "r");
  try {
    const c = new Cursor(file, fileBytes, path);
    let storedBytes = 0;
    let loadedBytes = 0;
    let convBytes = 0;
    let smallConvBytes = 0;
    let inlineBytes = 0;
    let float16Bytes = 0;
    let largestBytes = 0;
    let tensors = 0;
    const externalFiles = new Set<string>();
    for (let pos = 0; pos < fileBytes; ) {
      const m = await fieldAt(c, pos, fileBytes, path);
      if (m.field === MODEL_GRAPH && m.wire === 2) {
        for (let g = m.at; g < m.end; ) {
          const f = await fieldAt(c, g, m.end, path);
          if (f.field === GRAPH_INITIALIZER && f.wire === 2) {
            const t = await tensorHead(c, f.at, f.end, path);
            const width = ELEMENT_BYTES[t.dataType] ?? 0;
            const count = t.dims.reduce((a, b) => a * b, 1);
            const stored = Math.ceil(count * width);
            const loaded = t.dataType === FLOAT16 ? count * 4 : stored;
            storedBytes += stored;
            loadedBytes += loaded;
            largestBytes = Math.max(largestBytes, loaded);
            if (t.dims.length === 4) {
              convBytes += loaded;
              if (loaded < SMALL_TENSOR_BYTES) smallConvBytes += loaded;
            }
            if (t.dataType === FLOAT16) float16Bytes += stored;
            if (t.external) {
              if (t.location !== undefined) externalFiles.add(t.location);
            } else inlineBytes += stored;
            tensors++;
          }
          g = f.end;
        }
      }
      pos = m.end;
    }
    return { storedBytes, loadedBytes, convBytes, smallConvBytes, inlineBytes, float16Bytes, largestBytes, tensors, fileBytes, externalFiles: [...externalFiles] };
  } finally {
    await file.close();
  }
}
