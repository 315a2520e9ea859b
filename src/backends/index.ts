/**
 * Picks and loads the backend for a model folder: what the folder holds
 * decides (each registered backend's model file, catalog.ts: OpenVINO IR
 * `openvino_model.xml` → OpenVINO GenAI, `model.onnx` → ONNX Runtime),
 * unless the caller names one.
 */
import { backendDescriptor, type BackendKind } from "./catalog.js";
import type { OnnxLoadOptions } from "./onnx/onnx-backend.js";
import { detectModelFormats, preferredBackend } from "./formats.js";
import type { OpenVinoLoadOptions } from "./openvino/openvino-backend.js";
import type { OpenVinoLoader } from "./openvino/load-module.js";
import { BackendError, type DiffusionBackend } from "./types.js";

/** The backend `opts.backend` names, or the one the folder's files call for (preferredBackend). */
export async function chooseBackend(modelDir: string, requested: "auto" | BackendKind = "auto", loader?: OpenVinoLoader): Promise<BackendKind> {
  if (requested !== "auto") return requested;
  const kind = await preferredBackend(detectModelFormats(modelDir), loader);
  if (kind === undefined) {
    throw new BackendError(
      `model folder ${modelDir} holds no model the server can run: expected component folders (unet/, text_encoder/…) with openvino_model.xml (OpenVINO) or model.onnx (ONNX Runtime)`,
    );
  }
  return kind;
}

export async function loadBackend(modelDir: string, opts: OnnxLoadOptions & OpenVinoLoadOptions = {}): Promise<DiffusionBackend> {
  const kind = await chooseBackend(modelDir, opts.backend ?? "auto", opts.loader);
  return backendDescriptor(kind).load(modelDir, opts);
}

export * from "./types.js";
export { backendUnavailable, detectModelFormats, type BackendKind } from "./formats.js";
export { registerBackend, type BackendDescriptor, type BackendKinds } from "./catalog.js";
