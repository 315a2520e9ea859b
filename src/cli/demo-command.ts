/**
 * `graphserve demo`: serves the project's own small text-to-image model
 * (trained by tools/demo-model on coloured shapes, exported with Optimum,
 * committed in models/demo) through the same graph and pipeline any user's
 * model goes through. Nothing is built or downloaded: the folder is served
 * in place.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const DEMO_MODEL_NAME = "demo";

/** The committed model folder: models/demo at the package root (this file is dist/src/cli/demo-command.js). */
export const DEMO_MODEL_DIR = fileURLToPath(new URL("../../../models/demo", import.meta.url));

/** The demo model's folder; throws with the reason when the checkout lacks it (e.g. Git LFS not fetched). */
export function demoModelDir(): string {
  if (!existsSync(join(DEMO_MODEL_DIR, "graph.pbtxt"))) {
    throw new Error(`${DEMO_MODEL_DIR}: the demo model is missing (it is part of the repository and the npm package; restore it with git checkout models/demo)`);
  }
  return DEMO_MODEL_DIR;
}
