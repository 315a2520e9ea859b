/**
 * Registering a pulled servable in a model repository's config.json, as
 * OVMS's pull mode does: the entry goes into `model_config_list` as
 * `{"config":{"name","base_path"}}`, a legacy `mediapipe_config_list` entry of
 * the same name is moved there, and everything else in the file is kept.
 * The file is replaced atomically (temp file + rename in the same folder), so
 * a server polling it never reads half a file.
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { ConfigError, ioReason, isRemotePath } from "./config.js";
import { replaceFile } from "./replace-file.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Calls on the same file run one after another, so two in one process never lose an update. */
const queues = new Map<string, Promise<unknown>>();

/**
 * Adds `name` → `basePath` to the config.json at `configPath`, creating the
 * file (and its folder) when missing, or updates the entry's base_path.
 * base_path is written relative to the config's folder (forward slashes) when
 * it lies inside it, else absolute; a remote URL is kept verbatim. Every
 * other key and entry, and the entry's other fields (graph_path, …), stay as
 * they were. Only the matching legacy `mediapipe_config_list` entry is
 * migrated; the legacy list is removed once empty. Returns whether the file
 * was written: nothing is written when the JSON content would not change
 * (formatting of an unchanged file is left alone). A file that is not a JSON
 * object is refused with a ConfigError naming it, and left untouched.
 */
export async function addServable(configPath: string, name: string, basePath: string): Promise<boolean> {
  const key = resolve(configPath);
  const previous = queues.get(key) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => addServableNow(configPath, name, basePath));
  queues.set(key, run);
  try {
    return await run;
  } finally {
    if (queues.get(key) === run) queues.delete(key);
  }
}

async function addServableNow(configPath: string, name: string, basePath: string): Promise<boolean> {
  if (name === "") throw new ConfigError(`cannot add a servable to "${configPath}": the name is empty`);
  if (basePath === "") throw new ConfigError(`cannot add servable "${name}" to "${configPath}": the base path is empty`);
  const configDir = dirname(resolve(configPath));

  let text: string | undefined;
  try {
    text = await readFile(configPath, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new ConfigError(`cannot read config file "${configPath}": ${ioReason(e)}`);
  }

  let doc: JsonObject;
  if (text === undefined) {
    doc = {};
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      const reason = (e as Error).message.replace(/\r?\n/g, "\\n");
      throw new ConfigError(`config file "${configPath}" is not valid JSON (${reason}); it was left unchanged`);
    }
    if (!isObject(parsed)) {
      throw new ConfigError(`config file "${configPath}" must hold a JSON object, found ${Array.isArray(parsed) ? "an array" : parsed === null ? "null" : typeof parsed}; it was left unchanged`);
    }
    doc = parsed;
  }
  const before = JSON.stringify(doc);

  for (const list of ["model_config_list", "mediapipe_config_list"]) {
    if (Object.hasOwn(doc, list) && !Array.isArray(doc[list])) {
      throw new ConfigError(`config file "${configPath}": ${list} must be an array; it was left unchanged`);
    }
  }
  const written = basePathFor(basePath, configDir);
  const models = (doc.model_config_list ??= []) as Json[];
  const legacy = Object.hasOwn(doc, "mediapipe_config_list") ? (doc.mediapipe_config_list as Json[]) : undefined;

  const current = models.find((e): e is { config: JsonObject } => isObject(e) && isObject(e.config) && e.config.name === name);
  const legacyIndex = legacy?.findIndex((e) => isObject(e) && e.name === name) ?? -1;
  if (current) {
    current.config.base_path = written;
  } else if (legacy && legacyIndex >= 0) {
    const old = legacy[legacyIndex] as JsonObject;
    models.push({ config: { ...old, name, base_path: written } });
  } else {
    models.push({ config: { name, base_path: written } });
  }
  // The same name in the legacy list would now be a duplicate: it moved.
  if (legacy && legacyIndex >= 0) {
    legacy.splice(legacyIndex, 1);
    if (legacy.length === 0) delete doc.mediapipe_config_list;
  }

  if (text !== undefined && JSON.stringify(doc) === before) return false;
  await writeAtomically(configPath, JSON.stringify(doc, null, 2) + "\n");
  return true;
}

/** base_path as config.json should hold it. */
function basePathFor(basePath: string, configDir: string): string {
  if (isRemotePath(basePath)) return basePath;
  const abs = resolve(basePath);
  const rel = relative(configDir, abs);
  const inside = rel === "" || (rel !== ".." && !rel.startsWith(".." + sep) && !isAbsolute(rel));
  if (!inside) return abs;
  return rel === "" ? "." : rel.split(sep).join("/");
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const dir = dirname(resolve(path));
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new ConfigError(`cannot create the folder of config file "${path}": ${ioReason(e)}`);
  }
  try {
    await replaceFile(path, content);
  } catch (e) {
    throw new ConfigError(`cannot write config file "${path}": ${ioReason(e)}`);
  }
}
