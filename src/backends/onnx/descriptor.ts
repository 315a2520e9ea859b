/** ONNX Runtime as a registered backend (catalog.ts): model.onnx components, runs everywhere. */
import type { BackendDescriptor } from "../catalog.js";
import type { OnnxLoadOptions } from "./onnx-backend.js";

export const onnxRuntimeBackend: BackendDescriptor = {
  kind: "onnxruntime",
  modelFile: "model.onnx",
  preference: 1,
  unavailable: () => Promise.resolve(undefined),
  async load(modelDir, opts) {
    const { OnnxBackend } = await import("./onnx-backend.js");
    return OnnxBackend.load(modelDir, opts as OnnxLoadOptions);
  },
};
