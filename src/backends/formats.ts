/**
 * Which backend a model folder's files call for (OpenVINO IR
 * `openvino_model.xml`, ONNX `model.onnx`, one level down), and whether it
 * can run on this machine. Light on purpose: `--pull` checks a Hub listing
 * with it without loading either runtime.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type ComponentFormat, componentFormats, FORMAT_FILES } from "./model-index.js";
import { loadOpenVino, type OpenVinoLoader } from "./openvino/load-module.js";
import { BackendError } from "./types.js";

export type BackendKind = ComponentFormat;

/** Which model formats the folder's components hold (one level down: unet/, text_encoder/…). */
export function detectModelFormats(modelDir: string): BackendKind[] {
  let entries;
  try {
    entries = readdirSync(modelDir, { withFileTypes: true });
  } catch (e) {
    throw new BackendError(`model folder ${modelDir} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const paths = entries
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => Object.values(FORMAT_FILES).map((file) => `${entry.name}/${file}`))
    .filter((path) => existsSync(join(modelDir, path)));
  return componentFormats(paths);
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
