/**
 * The image-generation backends by kind. Adding one: a descriptor module
 * (a BackendDescriptor, plus a `declare module` adding its kind to
 * BackendKinds) and one registration line below. Light on purpose: a
 * descriptor imports its runtime only when it loads a model, so `--pull`
 * can check a Hub listing without loading any runtime.
 */
import type { OpenVinoLoader } from "./openvino/load-module.js";
import type { BackendLoadOptions, DiffusionBackend } from "./types.js";
import { onnxRuntimeBackend } from "./onnx/descriptor.js";
import { openVinoBackend } from "./openvino/descriptor.js";

/** The backend kinds, as keys (a backend's descriptor module adds its own by declaration merging). */
export interface BackendKinds {
  onnxruntime: true;
  openvino: true;
}

export type BackendKind = keyof BackendKinds & string;

export interface BackendDescriptor {
  readonly kind: BackendKind;
  /** The model file this backend's components keep in their folder (unet/model.onnx…). */
  readonly modelFile: string;
  /** When a folder holds several formats, the lowest preference that can run here loads it. */
  readonly preference: number;
  /** Why this backend cannot run on this machine, or undefined when it can. */
  unavailable(loader?: OpenVinoLoader): Promise<string | undefined>;
  /** `opts` carries every backend's options (loadBackend's); each backend reads its own. */
  load(modelDir: string, opts: BackendLoadOptions): Promise<DiffusionBackend>;
}

const backends = new Map<BackendKind, BackendDescriptor>();

export function registerBackend(descriptor: BackendDescriptor): void {
  if (backends.has(descriptor.kind)) throw new Error(`A backend of kind "${descriptor.kind}" is already registered.`);
  backends.set(descriptor.kind, descriptor);
}

registerBackend(openVinoBackend);
registerBackend(onnxRuntimeBackend);

/** The registered backends, most preferred first. */
export function backendDescriptors(): BackendDescriptor[] {
  return [...backends.values()].sort((a, b) => a.preference - b.preference);
}

export function backendDescriptor(kind: BackendKind): BackendDescriptor {
  const d = backends.get(kind);
  if (d === undefined) throw new Error(`No backend of kind "${kind}" is registered (known: ${[...backends.keys()].join(", ")}).`);
  return d;
}
