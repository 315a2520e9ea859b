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

/** Bump when the demo model or its graph changes, so a stale cached copy is rebuilt (3: the UNet's timestep became a scalar, as in optimum >= 1.24). */
export const DEMO_REVISION = 3;
/** Enough steps for a run in the web UI to last long enough to watch and cancel (the schedule has 1000 timesteps). */
const DEMO_MAX_STEPS = 500;
export const DEMO_MODEL_NAME = "demo";

/** Where the demo model lives: $GRAPHSERVE_DEMO_DIR, else the user's cache folder. */
export function demoModelDir(): string {
  const env = process.env.GRAPHSERVE_DEMO_DIR;
  if (env !== undefined && env !== "") return env;
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "graphserve", `demo-model-r${DEMO_REVISION}`);
}

/**
 * Builds the demo model unless it is there; built beside its final place and
 * renamed, so a half-written model is never served. When `signal` aborts
 * (SIGTERM while building) the build stops after the step in progress (it
 * takes well under a second), removes its partial folder and rejects with the signal's reason.
 */
export async function prepareDemoModel(log: (line: string) => void, signal?: AbortSignal): Promise<string> {
  const dir = demoModelDir();
  if (existsSync(join(dir, "graph.pbtxt"))) return dir;
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  log(`building the tiny demo model in ${dir} (once)…`);
  await makeTinyModel(partial, { family: "sd", seed: 42 });
  await writeFile(join(partial, "graph.pbtxt"), tinyModelGraph({ defaultResolution: "512x512", maxResolution: "1024x1024", defaultSteps: 4, maxSteps: DEMO_MAX_STEPS }));
  if (signal?.aborted) {
    await rm(partial, { recursive: true, force: true });
    throw signal.reason;
  }
  try {
    await rename(partial, dir);
  } catch (e) {
    // Another process finished first: use its copy.
    await rm(partial, { recursive: true, force: true });
    if (!existsSync(join(dir, "graph.pbtxt"))) throw e;
  }
  return dir;
}
