/**
 * A small typed ONNX graph builder and ModelProto encoder/decoder, used to
 * build tiny test models (random seeded weights, real tensor names) without
 * Python. The schema is our own subset of onnx.proto (proto/onnx/onnx.proto),
 * loaded with protobufjs at runtime.
 *
 * Output is deterministic: the same calls (and the same seed) give the same bytes.
 */
import { join } from "node:path";
import protobuf from "protobufjs";
import { BUILTIN_PROTO_DIR } from "../../../graph/schema.js";

// 64-bit fields as plain numbers, as in src/graph/schema.ts: dims and
// attribute ints of tiny models never approach 2^53.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

/** ONNX IR version written into every model (ONNX 1.10+; onnxruntime 1.30 reads it). */
export const ONNX_IR_VERSION = 8;
/** Default-domain opset written into every model. */
export const ONNX_OPSET = 17;

/** Tensor element types the builder knows. */
export type DType = "float32" | "int32" | "int64" | "bool";

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = { float32: 1, int32: 6, int64: 7, bool: 9 };

/** A dimension: a fixed size or a symbolic name (`batch_size`, `height`, ...). */
export type Dim = number | string;

/** Attribute values: number → INT (or FLOAT when not an integer; wrap with `float()` to force FLOAT). */
export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

/** Forces a float attribute (e.g. `{ epsilon: float(1e-5) }`, `{ alpha: float(1) }`). */
export function float(value: number): { float: number } {
  return { float: value };
}
/** Forces a float-list attribute. */
export function floats(values: number[]): { floats: number[] } {
  return { floats: values };
}

let schemaRoot: protobuf.Root | undefined;

/** The protobufjs Root holding our onnx.proto subset (loaded once, with keepCase). */
export function onnxSchema(): protobuf.Root {
  if (!schemaRoot) {
    const root = new protobuf.Root();
    root.loadSync(join(BUILTIN_PROTO_DIR, "onnx", "onnx.proto"), { keepCase: true });
    root.resolveAll();
    schemaRoot = root;
  }
  return schemaRoot;
}

function modelType(): protobuf.Type {
  return onnxSchema().lookupType("onnx.ModelProto");
}

/** mulberry32: a tiny seeded PRNG with uniform floats in [0, 1). */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform in [-scale, scale). */
  uniform(scale: number): number {
    return (this.next() * 2 - 1) * scale;
  }
  /** `n` uniform floats in [-scale, scale). */
  floats(n: number, scale: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(scale);
    return out;
  }
}

interface TensorInit {
  name: string;
  dtype: DType;
  dims: number[];
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

interface ValueInfo {
  name: string;
  dtype: DType;
  dims: Dim[];
}

interface NodeSpec {
  op_type: string;
  name: string;
  input: string[];
  output: string[];
  attrs: Record<string, AttrValue>;
}

function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Little-endian bytes of a typed array (explicit, so output does not depend on host byte order). */
function rawBytes(t: TensorInit): Uint8Array {
  const n = t.data.length;
  if (t.dtype === "bool") return new Uint8Array(t.data as Uint8Array);
  const width = t.dtype === "int64" ? 8 : 4;
  const out = new Uint8Array(n * width);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    if (t.dtype === "float32") view.setFloat32(i * 4, (t.data as Float32Array)[i], true);
    else if (t.dtype === "int32") view.setInt32(i * 4, (t.data as Int32Array)[i], true);
    else view.setBigInt64(i * 8, (t.data as BigInt64Array)[i], true);
  }
  return out;
}

function tensorProto(t: TensorInit): Record<string, unknown> {
  return { name: t.name, dims: t.dims, data_type: ONNX_DTYPE[t.dtype], raw_data: rawBytes(t) };
}

function attributeProto(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === "string") return { name, type: 3, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: 7, ints: v };
  if (typeof v === "number") return Number.isInteger(v) ? { name, type: 2, i: v } : { name, type: 1, f: v };
  if ("float" in v) return { name, type: 1, f: v.float };
  return { name, type: 6, floats: v.floats };
}

function valueInfoProto(v: ValueInfo): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: ONNX_DTYPE[v.dtype],
        shape: { dim: v.dims.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/**
 * Builds one ONNX graph. Tensors are referred to by name; op helpers return
 * the name of their output, and take an optional explicit output name (use it
 * for graph outputs such as `last_hidden_state`).
 */
export class GraphBuilder {
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly inits: TensorInit[] = [];
  private readonly nodes: NodeSpec[] = [];
  private readonly names = new Set<string>();
  private counter = 0;
  readonly rng: Rng;

  constructor(
    readonly name: string,
    seed = 0,
  ) {
    this.rng = new Rng(seed);
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`tensor name already used: ${name}`);
    this.names.add(name);
    return name;
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, dims: Dim[]): string {
    this.inputs.push({ name: this.claim(name), dtype, dims });
    return name;
  }

  /** Declares an existing tensor as a graph output, with its declared type and (possibly symbolic) shape. */
  output(name: string, dtype: DType, dims: Dim[]): string {
    if (!this.names.has(name)) throw new Error(`unknown tensor for output: ${name}`);
    this.outputs.push({ name, dtype, dims });
    return name;
  }

  /** Adds an initializer from explicit data. */
  initializer(name: string | undefined, dtype: DType, dims: number[], data: ArrayLike<number> | ArrayLike<bigint>): string {
    const n = size(dims);
    if (data.length !== n) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims}]`);
    const nm = this.claim(name ?? this.fresh("const"));
    let typed: TensorInit["data"];
    if (dtype === "float32") typed = Float32Array.from(data as ArrayLike<number>);
    else if (dtype === "int32") typed = Int32Array.from(data as ArrayLike<number>);
    else if (dtype === "bool") typed = Uint8Array.from(data as ArrayLike<number>);
    else typed = BigInt64Array.from(Array.from(data as ArrayLike<number | bigint>, (v) => BigInt(v)));
    this.inits.push({ name: nm, dtype, dims: [...dims], data: typed });
    return nm;
  }

  /** A float32 initializer of seeded uniform values in [-scale, scale). */
  weight(name: string, dims: number[], scale: number): string {
    return this.initializer(name, "float32", dims, this.rng.floats(size(dims), scale));
  }

  /** A float32 constant (initializer); a bare number gives a scalar. */
  constFloat(values: number | number[], dims?: number[]): string {
    const arr = typeof values === "number" ? [values] : values;
    return this.initializer(undefined, "float32", dims ?? (typeof values === "number" ? [] : [arr.length]), arr);
  }

  /** An int64 constant (initializer), 1-D unless dims are given. */
  constInt64(values: number[], dims?: number[]): string {
    return this.initializer(undefined, "int64", dims ?? [values.length], values);
  }

  /** Adds a node with any number of outputs; returns the output names. */
  nodeN(opType: string, inputs: string[], outputs: number | string[], attrs: Record<string, AttrValue> = {}): string[] {
    for (const i of inputs) if (i !== "" && !this.names.has(i)) throw new Error(`${opType}: unknown input tensor ${i}`);
    const outs = typeof outputs === "number" ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : outputs;
    for (const o of outs) this.claim(o);
    this.nodes.push({ op_type: opType, name: `${opType}_${this.nodes.length}`, input: inputs, output: outs, attrs });
    return outs;
  }

  /** Adds a single-output node; returns its output name. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, out?: string): string {
    return this.nodeN(opType, inputs, out === undefined ? 1 : [out], attrs)[0];
  }

  // --- op helpers (opset 17 signatures) ---
  add(a: string, b: string, out?: string): string { return this.node("Add", [a, b], {}, out); }
  sub(a: string, b: string, out?: string): string { return this.node("Sub", [a, b], {}, out); }
  mul(a: string, b: string, out?: string): string { return this.node("Mul", [a, b], {}, out); }
  div(a: string, b: string, out?: string): string { return this.node("Div", [a, b], {}, out); }
  /** CumSum along a constant axis. */
  cumSum(x: string, axis: number, out?: string): string { return this.node("CumSum", [x, this.constInt64([axis], [])], {}, out); }
  matMul(a: string, b: string, out?: string): string { return this.node("MatMul", [a, b], {}, out); }
  tanh(x: string, out?: string): string { return this.node("Tanh", [x], {}, out); }
  sigmoid(x: string, out?: string): string { return this.node("Sigmoid", [x], {}, out); }
  sin(x: string, out?: string): string { return this.node("Sin", [x], {}, out); }
  identity(x: string, out?: string): string { return this.node("Identity", [x], {}, out); }
  shape(x: string, out?: string): string { return this.node("Shape", [x], {}, out); }
  cast(x: string, to: DType, out?: string): string { return this.node("Cast", [x], { to: ONNX_DTYPE[to] }, out); }
  gather(data: string, indices: string, axis = 0, out?: string): string { return this.node("Gather", [data, indices], { axis }, out); }
  reshape(x: string, shape: number[], out?: string): string { return this.node("Reshape", [x, this.constInt64(shape)], {}, out); }
  transpose(x: string, perm: number[], out?: string): string { return this.node("Transpose", [x], { perm }, out); }
  unsqueeze(x: string, axes: number[], out?: string): string { return this.node("Unsqueeze", [x, this.constInt64(axes)], {}, out); }
  concat(xs: string[], axis: number, out?: string): string { return this.node("Concat", xs, { axis }, out); }
  /** ReduceMean (opset 17: axes is an attribute). */
  reduceMean(x: string, axes: number[], keepdims = true, out?: string): string {
    return this.node("ReduceMean", [x], { axes, keepdims: keepdims ? 1 : 0 }, out);
  }
  /** Slice with tensor-name starts/ends (int64 1-D) and constant axes. */
  slice(x: string, starts: string, ends: string, axes: number[], out?: string): string {
    return this.node("Slice", [x, starts, ends, this.constInt64(axes)], {}, out);
  }
  conv(x: string, w: string, b: string | undefined, attrs: { kernel_shape: number[]; pads?: number[]; strides?: number[] }, out?: string): string {
    const a: Record<string, AttrValue> = { kernel_shape: attrs.kernel_shape };
    if (attrs.pads) a.pads = attrs.pads;
    if (attrs.strides) a.strides = attrs.strides;
    return this.node("Conv", b === undefined ? [x, w] : [x, w, b], a, out);
  }
  /** Resize by constant scales (nearest). */
  resizeNearest(x: string, scales: number[], out?: string): string {
    return this.node("Resize", [x, "", this.constFloat(scales)], { mode: "nearest" }, out);
  }
  layerNorm(x: string, scale: string, bias: string, epsilon = 1e-5, out?: string): string {
    return this.node("LayerNormalization", [x, scale, bias], { axis: -1, epsilon: float(epsilon) }, out);
  }

  /** The ModelProto as a plain object (for protobufjs `fromObject`). */
  toModelObject(opts: { producer?: string; docString?: string } = {}): Record<string, unknown> {
    if (this.outputs.length === 0) throw new Error(`graph ${this.name} has no outputs`);
    return {
      ir_version: ONNX_IR_VERSION,
      opset_import: [{ domain: "", version: ONNX_OPSET }],
      producer_name: opts.producer ?? "graphserve-tiny",
      producer_version: "1",
      doc_string: opts.docString ?? "",
      graph: {
        name: this.name,
        node: this.nodes.map((n) => ({
          input: n.input,
          output: n.output,
          name: n.name,
          op_type: n.op_type,
          attribute: Object.entries(n.attrs).map(([k, v]) => attributeProto(k, v)),
        })),
        initializer: this.inits.map(tensorProto),
        input: this.inputs.map(valueInfoProto),
        output: this.outputs.map(valueInfoProto),
      },
    };
  }

  /** Encodes the model as ONNX bytes. */
  encode(opts: { producer?: string; docString?: string } = {}): Uint8Array {
    const type = modelType();
    return type.encode(type.fromObject(this.toModelObject(opts))).finish();
  }
}

/** A graph input/output as decoded from a model. */
export interface DecodedValueInfo {
  name: string;
  dtype: DType | `onnx:${number}`;
  dims: Dim[];
}

/** The parts of a decoded model that tests and loaders look at. */
export interface DecodedModel {
  irVersion: number;
  opset: number;
  producer: string;
  inputs: DecodedValueInfo[];
  outputs: DecodedValueInfo[];
  initializers: { name: string; dtype: DType | `onnx:${number}`; dims: number[] }[];
  opTypes: string[];
  /** The full decoded ModelProto as a plain object (keepCase field names). */
  raw: Record<string, unknown>;
}

const DTYPE_BY_CODE = new Map(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DType]));

function dtypeName(code: number): DType | `onnx:${number}` {
  return DTYPE_BY_CODE.get(code) ?? `onnx:${code}`;
}

/** Decodes ONNX bytes through our schema subset. */
export function decodeModel(bytes: Uint8Array): DecodedModel {
  const type = modelType();
  const m = type.toObject(type.decode(bytes), { defaults: false, arrays: true, longs: Number }) as any;
  const vi = (v: any): DecodedValueInfo => ({
    name: v.name,
    dtype: dtypeName(v.type?.tensor_type?.elem_type ?? 0),
      dims: (v.type?.tensor_type?.shape?.dim ?? []).map((d: any) => (d.dim_param !== undefined ? d.dim_param : Number(d.dim_value ?? 0))),
  });
  const opset = (m.opset_import ?? []).find((o: { domain?: string }) => !o.domain);
  return {
    irVersion: Number(m.ir_version ?? 0),
    opset: Number(opset?.version ?? 0),
    producer: m.producer_name ?? "",
    inputs: (m.graph?.input ?? []).map(vi),
    outputs: (m.graph?.output ?? []).map(vi),
      initializers: (m.graph?.initializer ?? []).map((t: any) => ({ name: t.name, dtype: dtypeName(t.data_type ?? 0), dims: (t.dims ?? []).map(Number) })),
    opTypes: (m.graph?.node ?? []).map((n: { op_type: string }) => n.op_type),
    raw: m,
  };
}
