/**
 * `graphserve demo`: serves a tiny Stable Diffusion model (random seeded
 * weights, built on first use, no download) behind the OVMS one-node image
 * graph, so a fresh clone answers the Images API at once. Its pictures are
 * noise; every request, option, error and stream around them is real.
 */
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { makeTinyModel } from "../backends/onnx/tiny/make-tiny-model.js";
import { tinyModelGraph } from "./tiny-model-command.js";

/** Bump when the demo model or its graph changes, so a stale cached copy is rebuilt. */
const DEMO_REVISION = 1;
export const DEMO_MODEL_NAME = "demo";

/** Where the demo model lives: $GRAPHSERVE_DEMO_DIR, else the user's cache folder. */
export function demoModelDir(): string {
  const env = process.env.GRAPHSERVE_DEMO_DIR;
  if (env !== undefined && env !== "") return env;
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "graphserve", `demo-model-r${DEMO_REVISION}`);
}

/** Builds the demo model unless it is there; built beside its final place and renamed, so a half-written model is never served. */
export async function prepareDemoModel(log: (line: string) => void): Promise<string> {
  const dir = demoModelDir();
  if (existsSync(join(dir, "graph.pbtxt"))) return dir;
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  log(`building the tiny demo model in ${dir} (once)…`);
  await makeTinyModel(partial, { family: "sd", seed: 42 });
  await writeFile(join(partial, "graph.pbtxt"), tinyModelGraph({ defaultResolution: "512x512", maxResolution: "1024x1024", defaultSteps: 4 }));
  try {
    await rename(partial, dir);
  } catch (e) {
    // Another process finished first: use its copy.
    await rm(partial, { recursive: true, force: true });
    if (!existsSync(join(dir, "graph.pbtxt"))) throw e;
  }
  return dir;
}
