/**
 * Which backend a model folder's files call for (OpenVINO IR
 * `openvino_model.xml`, ONNX `model.onnx`, one level down), and whether it
 * can run on this machine. Light on purpose: `--pull` checks a Hub listing
 * with it without loading either runtime.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { backendDescriptor, backendDescriptors, type BackendKind } from "./catalog.js";
import { componentFormats } from "./model-index.js";
import type { OpenVinoLoader } from "./openvino/load-module.js";
import { BackendError } from "./types.js";

export type { BackendKind } from "./catalog.js";

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
    .flatMap((entry) => backendDescriptors().map((d) => `${entry.name}/${d.modelFile}`))
    .filter((path) => existsSync(join(modelDir, path)));
  return componentFormats(paths);
}

/**
 * The backend a folder holding `kinds` loads with: the most preferred
 * (catalog.ts) that can run here, when it holds several; else the most
 * preferred one (its load then says why it cannot run). Undefined when it
 * holds none.
 */
export async function preferredBackend(kinds: readonly BackendKind[], loader?: OpenVinoLoader): Promise<BackendKind | undefined> {
  const held = backendDescriptors().filter((d) => kinds.includes(d.kind));
  if (held.length <= 1) return held[0]?.kind;
  for (const d of held) if ((await d.unavailable(loader)) === undefined) return d.kind;
  return held[0].kind;
}

/** Why `kind` cannot run on this machine, or undefined when it can. */
export function backendUnavailable(kind: BackendKind, loader?: OpenVinoLoader): Promise<string | undefined> {
  return backendDescriptor(kind).unavailable(loader);
}
