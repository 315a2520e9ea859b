/**
 * OVMS's pull and configure modes, run before (or instead of) serving:
 *
 *   --source_model ORG/NAME --model_repository_path DIR [--task image_generation]
 *       download DIR/ORG/NAME (resumable, verified, atomic), write its
 *       graph.pbtxt from the export flags, add it to DIR/config.json, then
 *       serve it as --model_name (default ORG/NAME), or exit with --pull;
 *   --configure --model_path DIR [--task image_generation]
 *       only (re)write DIR/graph.pbtxt.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { checkExportedGraph, GraphExportError, imageGenerationGraph, imageGraphSettingsFromFlags, type ImageGraphSettings } from "../servables/pull/graph-export.js";
import { modelDir, PullError, pullModel, unservedTask } from "../servables/pull/pull.js";
import { ConfigError, parseConfigText } from "../servables/config.js";
import { replaceFile } from "../servables/replace-file.js";
import { addServable } from "../servables/repository-config.js";
import { FlagError } from "./flags.js";
import { PULL_FLAGS, type ServerFlagValues } from "../server/flags.js";
import { Interrupted } from "./signals.js";

const PULL_ONLY = Object.keys(PULL_FLAGS) as (keyof typeof PULL_FLAGS)[];

export const PULL_USAGE = `Pulling models (as OVMS):
  --source_model ORG/NAME             download from the Hugging Face Hub ($HF_ENDPOINT, $HF_TOKEN, $https_proxy)
                                      into --model_repository_path DIR/ORG/NAME, add it to DIR/config.json, serve it
  --pull                              download and write graph.pbtxt, then exit
  --overwrite_models                  download again even if the model is there
  --configure --model_path DIR        only (re)write DIR/graph.pbtxt
  --task image_generation             (detected from model_index.json when left out)
  --target_device, --resolution, --max_resolution, --default_resolution, --num_images_per_prompt,
  --guidance_scale, --max_num_images_per_prompt, --default_num_inference_steps,
  --max_num_inference_steps, --num_streams, --cache_dir, --source_loras   graph.pbtxt settings`;

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** What to do after the pull step: exit with a code, or serve with these flags. */
export type PullOutcome = { readonly exit: number } | { readonly serve: ServerFlagValues };

/**
 * Runs the pull or configure step when its flags are present; otherwise
 * passes the flags through. `signal` (aborted with an Interrupted reason)
 * stops a pull: transfers end, the lock is released, what was fetched stays
 * staged for the next run, and the exit code is 143 (SIGTERM) or 130 (SIGINT).
 */
export async function pullStep(values: ServerFlagValues, io: Io, checkServing?: (flags: ServerFlagValues) => void, env: NodeJS.ProcessEnv = process.env, signal?: AbortSignal): Promise<PullOutcome> {
  try {
    if (values.configure) return { exit: await configure(values, io) };
    if (values.source_model !== undefined) return await pullAndPrepare(values, io, env, checkServing, signal);
    const stray = PULL_ONLY.find((f) => values[f] !== undefined);
    if (stray !== undefined) throw new FlagError(`--${stray} applies only with --source_model or --configure`);
    return { serve: values };
  } catch (e) {
    if (e instanceof Interrupted) {
      io.err(`graphserve: ${e.signal}: pull of ${values.source_model} stopped; what was downloaded is kept and the next run resumes it`);
      return { exit: e.exitCode };
    }
    if (e instanceof FlagError || e instanceof GraphExportError) {
      io.err(`graphserve: ${e.message}`);
      return { exit: 2 };
    }
    // What the machine refuses (a bad config.json, a path that is a file, no permission) is said in one line too.
    if (e instanceof PullError || e instanceof ConfigError || typeof (e as NodeJS.ErrnoException).code === "string") {
      io.err(`graphserve: ${(e as Error).message}`);
      return { exit: 1 };
    }
    throw e;
  }
}

async function configure(values: ServerFlagValues, io: Io): Promise<number> {
  if (values.model_path === undefined) throw new FlagError("--configure needs --model_path (the model folder whose graph.pbtxt to write)");
  const pullOnly = (["source_model", "pull", "overwrite_models", "model_repository_path", "config_path"] as const).find((f) => values[f] !== undefined);
  if (pullOnly !== undefined) throw new FlagError(`--configure excludes --${pullOnly}: it only rewrites --model_path's graph.pbtxt`);
  checkTaskName(values.task);
  checkImageGenerationFolder(values.model_path, values.task);
  const written = await writeGraph(values.model_path, await exportedGraph(values));
  io.out(`${written ? "wrote" : "unchanged:"} ${join(values.model_path, "graph.pbtxt")}`);
  return 0;
}

async function pullAndPrepare(values: ServerFlagValues, io: Io, env: NodeJS.ProcessEnv, checkServing: ((flags: ServerFlagValues) => void) | undefined, signal: AbortSignal | undefined): Promise<PullOutcome> {
  const repository = values.model_repository_path ?? (env.OVMS_MODEL_REPOSITORY_PATH || undefined);
  if (repository === undefined) throw new FlagError("--source_model needs --model_repository_path (or OVMS_MODEL_REPOSITORY_PATH): where the model is stored");
  if (values.model_path !== undefined || values.config_path !== undefined) throw new FlagError("--source_model excludes --model_path and --config_path");
  // Refuse bad flags before downloading anything.
  checkTaskName(values.task);
  let dir: string;
  try {
    dir = modelDir(repository, values.source_model!);
  } catch (e) {
    throw new FlagError((e as Error).message);
  }
  const graph = await exportedGraph(values);
  const name = values.model_name ?? values.source_model!;
  const configPath = join(repository, "config.json");
  // Whatever would stop the server or the config update afterwards is found before the download.
  if (!values.pull) checkServing?.(servingFlags(values, name, dir));
  await readFile(configPath, "utf8").then((text) => parseConfigText(text, configPath), (e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
  const result = await pullModel({
    sourceModel: values.source_model!,
    repositoryPath: repository,
    overwrite: values.overwrite_models === true,
    task: values.task,
    progress: { tty: process.stderr.isTTY === true, write: (t) => process.stderr.write(t) },
    log: (line) => io.err(line),
    beforeReveal: async (staging) => void (await writeGraph(staging, graph)),
    signal,
  });
  checkImageGenerationFolder(result.dir, values.task);
  // A fresh download already has it; a model that was there gets it rewritten only if it changed.
  const graphWritten = !result.downloaded && (await writeGraph(result.dir, graph));
  const configWritten = await addServable(configPath, name, result.dir);
  if (result.downloaded || graphWritten) io.err(`wrote ${join(result.dir, "graph.pbtxt")}`);
  if (configWritten) io.err(`added "${name}" to ${configPath}`);
  if (values.pull) return { exit: 0 };
  return { serve: servingFlags(values, name, result.dir) };
}

/** The flags that serve the pulled model: single-servable mode, pull flags removed. */
function servingFlags(values: ServerFlagValues, name: string, dir: string): ServerFlagValues {
  const serve: Record<string, unknown> = { ...values, model_name: name, model_path: dir, model_repository_path: undefined };
  for (const f of PULL_ONLY) delete serve[f];
  return serve as ServerFlagValues;
}

/** The graph.pbtxt the export flags describe, read back and validated as a servable would load it. */
async function exportedGraph(values: ServerFlagValues): Promise<string> {
  const settings = imageGraphSettingsFromFlags(values);
  const text = imageGenerationGraph(settings, loraPaths(settings));
  await checkExportedGraph(text);
  return text;
}

function checkTaskName(task: string | undefined): void {
  const unserved = unservedTask(task);
  if (unserved !== undefined) throw new FlagError(unserved);
}

/** The folder holds a diffusers pipeline (model_index.json), which is how the task is detected. */
function checkImageGenerationFolder(dir: string, task: string | undefined): void {
  if (!existsSync(join(dir, "model_index.json"))) {
    throw new FlagError(`${dir} is not an image-generation model: it has no model_index.json${task === undefined ? " (the task cannot be detected)" : ""}`);
  }
}

/**
 * Where each LoRA adapter is: local files as given. Fetching adapters is left
 * out on purpose: neither backend can apply one, so a graph naming them only
 * serves OVMS, and the servable here reports that at load.
 */
function loraPaths(settings: ImageGraphSettings): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const a of settings.loras?.adapters ?? []) {
    if (a.source.kind !== "local") {
      throw new FlagError(`--source_loras: "${a.alias}" is not a local file; graphserve does not download LoRA adapters (its backends cannot apply them), so give local paths for a graph meant for OVMS`);
    }
    paths[a.alias] = a.source.path;
  }
  return paths;
}

/** Writes graph.pbtxt unless it already says exactly this (so a repeated command touches nothing); atomic. */
async function writeGraph(dir: string, text: string): Promise<boolean> {
  const file = join(dir, "graph.pbtxt");
  const current = await readFile(file, "utf8").catch(() => undefined);
  if (current === text) return false;
  await replaceFile(file, text);
  return true;
}
