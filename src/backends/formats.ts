/**
 * Which backend a model folder's files call for (OpenVINO IR
 * `openvino_model.xml`, ONNX `model.onnx`, one level down), and whether it
 * can run on this machine. Light on purpose: `--pull` checks a Hub listing
 * with it without loading either runtime.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadOpenVino, type OpenVinoLoader } from "./openvino/load-module.js";
import { BackendError } from "./types.js";

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

/** Which model formats a folder of these files (paths relative to it, e.g. a Hub listing) holds. */
export function formatsOfFiles(paths: readonly string[]): BackendKind[] {
  const kinds = new Set<BackendKind>();
  for (const path of paths) {
    if (/^[^/]+\/openvino_model\.xml$/.test(path)) kinds.add("openvino");
    if (/^[^/]+\/model\.onnx$/.test(path)) kinds.add("onnxruntime");
  }
  return [...kinds];
}

/**
 * The backend a folder holding `kinds` loads with: OpenVINO, the format OVMS
 * users export for Intel hardware, unless the folder has ONNX files too and
 * OpenVINO cannot run here. Undefined when it holds neither.
 */
export async function preferredBackend(kinds: readonly BackendKind[], loader?: OpenVinoLoader): Promise<BackendKind | undefined> {
  if (!kinds.includes("openvino")) return kinds.includes("onnxruntime") ? "onnxruntime" : undefined;
  if (kinds.includes("onnxruntime") && (await backendUnavailable("openvino", loader)) !== undefined) return "onnxruntime";
  return "openvino";
}

/**
 * Why `kind` cannot run on this machine, or undefined when it can: ONNX
 * Runtime always can; OpenVINO needs its optional package (Node ≥ 21, its
 * runtime downloaded at install), tried here by importing it.
 */
export async function backendUnavailable(kind: BackendKind, loader?: OpenVinoLoader): Promise<string | undefined> {
  if (kind === "onnxruntime") return undefined;
  try {
    await loadOpenVino(loader);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
