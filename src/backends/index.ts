/**
 * Picks and loads the backend for a model folder: what the folder holds
 * decides (OpenVINO IR `openvino_model.xml` → OpenVINO GenAI, `model.onnx` →
 * ONNX Runtime), unless the caller names one.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { OnnxBackend, type OnnxLoadOptions } from "./onnx/onnx-backend.js";
import { OpenVinoBackend, type OpenVinoLoadOptions } from "./openvino/openvino-backend.js";
import { BackendError, type DiffusionBackend } from "./types.js";

export type BackendKind = "onnxruntime" | "openvino";

/** Which model formats the folder's components hold (one level down: unet/, text_encoder/…). */
export function detectModelFormats(modelDir: string): BackendKind[] {
  let entries;
  try {
    entries = readdirSync(modelDir, { withFileTypes: true });
  } catch (e) {
    throw new BackendError(`model folder ${modelDir} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const kinds = new Set<BackendKind>();
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    if (existsSync(join(modelDir, entry.name, "openvino_model.xml"))) kinds.add("openvino");
    if (existsSync(join(modelDir, entry.name, "model.onnx"))) kinds.add("onnxruntime");
  }
  return [...kinds];
}

/** The backend `opts.backend` names, or the one the folder's files call for. */
export function chooseBackend(modelDir: string, requested: "auto" | BackendKind = "auto"): BackendKind {
  if (requested !== "auto") return requested;
  const kinds = detectModelFormats(modelDir);
  if (kinds.length === 0) {
    throw new BackendError(
      `model folder ${modelDir} holds no model the server can run: expected component folders (unet/, text_encoder/…) with openvino_model.xml (OpenVINO) or model.onnx (ONNX Runtime)`,
    );
  }
  // A folder with both formats goes to OpenVINO, the format OVMS users export for Intel hardware.
  return kinds.includes("openvino") ? "openvino" : "onnxruntime";
}

export async function loadBackend(modelDir: string, opts: OnnxLoadOptions & OpenVinoLoadOptions = {}): Promise<DiffusionBackend> {
  const kind = chooseBackend(modelDir, opts.backend ?? "auto");
  return kind === "openvino" ? OpenVinoBackend.load(modelDir, opts) : OnnxBackend.load(modelDir, opts);
}

export * from "./types.js";
