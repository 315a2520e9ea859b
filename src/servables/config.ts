/**
 * OVMS's config.json, as far as graphserve serves it: the graph entries of
 * `model_config_list` and the deprecated `mediapipe_config_list`, plus the
 * `monitoring.metrics` settings the HTTP server needs. Validated with a
 * JSON schema (ajv); every problem is reported with its JSON path. Paths are
 * resolved here, so the rest of graphserve only sees absolute paths.
 */
import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { Ajv, type ErrorObject } from "ajv";

/** One servable the config asks for, with absolute paths. */
export interface ServableConfig {
  readonly name: string;
  /** Absolute folder of the servable (kept verbatim when it is a remote URL, which fails at load). */
  readonly basePath: string;
  /** Absolute path of the graph file. */
  readonly graphPath: string;
  /** Where the entry came from, for messages: `model_config_list[0]`, `mediapipe_config_list[2]`, `--model_path`. */
  readonly origin: string;
}

/** `monitoring.metrics` of config.json. */
export interface MetricsSettings {
  readonly enable: boolean;
  /** Only these metric families, when given. */
  readonly metricsList?: readonly string[];
}

export interface ServerConfig {
  readonly servables: readonly ServableConfig[];
  readonly metrics: MetricsSettings;
  /** Things that are accepted but ignored (e.g. DAG pipelines); worth a log line. */
  readonly warnings: readonly string[];
}

/** A config file that cannot be read, parsed or validated; the message says where and why. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export const DEFAULT_GRAPH_FILE = "graph.pbtxt";

const nonEmpty = { type: "string", minLength: 1 } as const;
// Entries allow extra properties: classic OVMS model entries (shape, nireq,
// target_device…) must pass here and fail per servable, at load.
const graphFields = { name: nonEmpty, base_path: nonEmpty, graph_path: nonEmpty, subconfig: { type: "string" } } as const;
const SCHEMA = {
  type: "object",
  properties: {
    model_config_list: {
      type: "array",
      items: {
        type: "object",
        required: ["config"],
        properties: { config: { type: "object", required: ["name", "base_path"], properties: graphFields } },
      },
    },
    mediapipe_config_list: { type: "array", items: { type: "object", required: ["name"], properties: graphFields } },
    monitoring: {
      type: "object",
      properties: {
        metrics: { type: "object", properties: { enable: { type: "boolean" }, metrics_list: { type: "array", items: { type: "string" } } } },
      },
    },
  },
} as const;

/** What the schema guarantees about a valid document. */
interface GraphEntry {
  name: string;
  base_path?: string;
  graph_path?: string;
}
interface ConfigDocument {
  model_config_list?: { config: GraphEntry }[];
  mediapipe_config_list?: GraphEntry[];
  monitoring?: { metrics?: { enable?: boolean; metrics_list?: string[] } };
}

const validate = new Ajv({ allErrors: true, strict: true }).compile<ConfigDocument>(SCHEMA);

/** Top-level keys OVMS knows but graphserve does not serve. */
const UNSUPPORTED_LISTS = ["pipeline_config_list", "custom_node_library_config_list", "custom_loader_config_list"];
const KNOWN_KEYS = new Set(["model_config_list", "mediapipe_config_list", "monitoring", ...UNSUPPORTED_LISTS]);

/** A URL such as s3://, gs:// or azure://: kept as is (resolving it would mangle it), failing at load. */
export const isRemotePath = (p: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(p);

/** Parses and validates config.json text; `configPath` resolves relative paths and prefixes messages. */
export function parseConfigText(text: string, configPath: string): ServerConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // V8 quotes the offending text, newlines included: keep the message on one line.
    const reason = (e as Error).message.replace(/\r?\n/g, "\\n");
    throw new ConfigError(`${configPath}${jsonPosition(text, reason)}: not valid JSON: ${reason}`);
  }
  if (!validate(doc)) {
    const lines = [...new Set((validate.errors ?? []).map(describeError))];
    throw new ConfigError(lines.map((l) => `${configPath}: ${l}`).join("\n"));
  }
  const dir = dirname(resolve(configPath));
  const servables: ServableConfig[] = [];
  doc.model_config_list?.forEach(({ config }, i) => servables.push(entry(config, dir, `model_config_list[${i}]`)));
  doc.mediapipe_config_list?.forEach((c, i) => servables.push(entry(c, dir, `mediapipe_config_list[${i}]`)));

  const seen = new Map<string, string>();
  for (const s of servables) {
    const first = seen.get(s.name);
    if (first !== undefined) throw new ConfigError(`${configPath}: servable name "${s.name}" is used twice, by ${first} and ${s.origin}; names must be unique`);
    seen.set(s.name, s.origin);
  }

  const warnings: string[] = [];
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (UNSUPPORTED_LISTS.includes(key)) {
      if (!Array.isArray(value) || value.length > 0) warnings.push(`${configPath}: ${key} is not supported by graphserve and is ignored`);
    } else if (!KNOWN_KEYS.has(key)) {
      warnings.push(`${configPath}: unknown key "${key}" is ignored`);
    }
  }
  const m = doc.monitoring?.metrics;
  const metrics: MetricsSettings = { enable: m?.enable ?? false, ...(m?.metrics_list ? { metricsList: m.metrics_list } : {}) };
  return { servables, metrics, warnings };
}

/** Reads a config file's text and its content hash (what polling compares); ConfigError if unreadable. */
export async function readConfigFile(configPath: string): Promise<{ text: string; hash: string }> {
  let text: string;
  try {
    text = await readFile(configPath, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config file "${configPath}": ${ioReason(e)}`);
  }
  return { text, hash: contentHash(text) };
}

/** Reads and validates a config file. */
export async function loadConfigFile(configPath: string): Promise<ServerConfig> {
  return parseConfigText((await readConfigFile(configPath)).text, configPath);
}

/**
 * The config of single-servable mode (`--model_name N --model_path P`): P is
 * a folder holding graph.pbtxt, or the graph file itself.
 */
export function singleServableConfig(name: string, modelPath: string): ServerConfig {
  if (name === "") throw new ConfigError("--model_name must not be empty");
  if (modelPath === "") throw new ConfigError("--model_path must not be empty");
  const abs = resolve(modelPath);
  const isFile = statSync(abs, { throwIfNoEntry: false })?.isFile() === true;
  const servable: ServableConfig = isFile
    ? { name, basePath: dirname(abs), graphPath: abs, origin: "--model_path" }
    : { name, basePath: abs, graphPath: join(abs, DEFAULT_GRAPH_FILE), origin: "--model_path" };
  return { servables: [servable], metrics: { enable: false }, warnings: [] };
}

export function contentHash(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex");
}

export function ioReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "it is a directory";
  if (code === "EACCES") return "permission denied";
  return (e as Error).message;
}

function entry(c: GraphEntry, dir: string, origin: string): ServableConfig {
  // OVMS: base_path is relative to config.json (legacy default <config dir>/<name>); graph_path to base_path.
  const base = c.base_path ?? c.name;
  const basePath = isRemotePath(base) ? base : resolve(dir, base);
  const graph = c.graph_path ?? DEFAULT_GRAPH_FILE;
  let graphPath: string;
  if (isAbsolute(graph) || isRemotePath(graph)) graphPath = graph;
  else if (isRemotePath(basePath)) graphPath = `${basePath.replace(/\/+$/, "")}/${graph}`;
  else graphPath = join(basePath, graph);
  return { name: c.name, basePath, graphPath, origin };
}

/** `/model_config_list/1/config/name` → `model_config_list[1].config.name`. */
function jsonPath(pointer: string): string {
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

const article = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

function describeError(e: ErrorObject): string {
  const at = jsonPath(e.instancePath);
  const subject = at === "" ? "the top level" : at;
  switch (e.keyword) {
    case "type":
      return `${subject} must be ${article(String(e.params.type))}`;
    case "required": {
      const prop = String(e.params.missingProperty);
      return `${at === "" ? prop : `${at}.${prop}`} is required`;
    }
    case "minLength":
      return `${subject} must not be empty`;
    default:
      return `${subject} ${e.message ?? "is invalid"}`;
  }
}

/** `:line:column` of a JSON.parse error that reports a position, else "". */
function jsonPosition(text: string, message: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m) return "";
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  return `:${line}:${before.length - before.lastIndexOf("\n")}`;
}
