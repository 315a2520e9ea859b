/**
 * Creating ORT sessions and checking them against what a model folder's configs
 * promise: input/output names, integer dtypes, static widths. Every error is a
 * BackendError naming the model file.
 */
import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import * as ort from "onnxruntime-node";
import { BackendError } from "../types.js";
import { upcastFloat16Model } from "./upcast-fp16.js";

export interface SessionLoadOptions {
  readonly intraOpNumThreads?: number;
  /** Let ORT's intra-op threads spin-wait between runs (default false: they would compete with the event loop and other workers). */
  readonly allowSpinning?: boolean;
}

export type IntDtype = "int32" | "int64";

/** An ORT session for `path`; an fp16 model is loaded from its float32 rewrite (see upcast-fp16.ts). */
export async function createSession(path: string, opts: SessionLoadOptions): Promise<ort.InferenceSession> {
  let upcast: string | undefined;
  try {
    upcast = await upcastFloat16Model(path);
  } catch (e) {
    throw new BackendError(`${path}: cannot read the ONNX model (${(e as Error).message})`, { cause: e });
  }
  try {
    return await ort.InferenceSession.create(upcast ?? path, {
      ...(opts.intraOpNumThreads !== undefined ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
      interOpNumThreads: 1,
      executionMode: "sequential",
      // ORT's memory pattern keeps a second planned block as large as a run's buffers from the second run on:
      // off, a 1024² FLUX.1-schnell (tiny fixture) run peaked at 2.7 GB instead of 5.3 GB and the demo at 231 MB
      // instead of 289 MB, with no loss of speed (3.3 s vs 4.3 s, 548 ms vs 635 ms per generation, one thread).
      enableMemPattern: false,
      graphOptimizationLevel: "all",
      extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? "1" : "0" } } },
    });
  } catch (e) {
    throw new BackendError(`${path}: cannot load the ONNX model (${(e as Error).message.split("\n")[0]})`, { cause: e });
  } finally {
    // ORT has read (or mapped) the rewrite by now.
    if (upcast) await rm(dirname(upcast), { recursive: true, force: true });
  }
}

export function tensorMeta(session: ort.InferenceSession, name: string, kind: "input" | "output"): ort.InferenceSession.TensorValueMetadata | undefined {
  const list = kind === "input" ? session.inputMetadata : session.outputMetadata;
  const m = list.find((x) => x.name === name);
  return m && m.isTensor ? m : undefined;
}

export function requireNames(session: ort.InferenceSession, path: string, inputs: readonly string[], outputs: readonly string[]): void {
  for (const n of inputs) {
    if (!session.inputNames.includes(n)) {
      throw new BackendError(`${path}: missing input "${n}" (inputs are ${session.inputNames.map((x) => `"${x}"`).join(", ")})`);
    }
  }
  for (const n of outputs) {
    if (!session.outputNames.includes(n)) {
      throw new BackendError(`${path}: missing output "${n}" (outputs are ${session.outputNames.map((x) => `"${x}"`).join(", ")})`);
    }
  }
}

/** The static size of dimension `axis` of an input/output, or undefined when symbolic/unknown. */
export function staticDim(session: ort.InferenceSession, name: string, kind: "input" | "output", axis: number): number | undefined {
  const m = tensorMeta(session, name, kind);
  if (!m) return undefined;
  const shape = m.shape as readonly (number | string)[];
  const d = shape[axis < 0 ? shape.length + axis : axis];
  return typeof d === "number" && d > 0 ? d : undefined;
}

/** Refuses a static last-axis width other than `expected` (`what` says whose width that is, `otherPath` where it comes from). */
export function checkWidth(
  s: ort.InferenceSession,
  path: string,
  name: string,
  kind: "input" | "output",
  expected: number,
  what: string,
  otherPath: string,
): number | undefined {
  const d = staticDim(s, name, kind, -1);
  if (d !== undefined && d !== expected) throw new BackendError(`${path}: ${kind} "${name}" has width ${d}, but ${what} is ${expected} (${otherPath})`);
  return d;
}

export function intDtype(session: ort.InferenceSession, name: string, path: string): IntDtype {
  const t = tensorMeta(session, name, "input")?.type;
  if (t === "int32" || t === "int64") return t;
  throw new BackendError(`${path}: input "${name}" must be int32 or int64, got ${t ?? "an unknown type"}`);
}

/** Token ids [rows, len] as the encoder's `input_ids` dtype. */
export function idsTensor(ids: readonly Int32Array[], dtype: IntDtype): ort.Tensor {
  const len = ids[0].length;
  if (dtype === "int32") {
    const data = new Int32Array(ids.length * len);
    ids.forEach((a, i) => data.set(a, i * len));
    return new ort.Tensor("int32", data, [ids.length, len]);
  }
  const data = new BigInt64Array(ids.length * len);
  ids.forEach((a, i) => a.forEach((v, j) => (data[i * len + j] = BigInt(v))));
  return new ort.Tensor("int64", data, [ids.length, len]);
}
