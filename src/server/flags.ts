/**
 * OVMS's server flags, parsed into ServeOptions. Every problem is one line,
 * thrown as a FlagError (the CLI exits 2 with it).
 */
import { join } from "node:path";
import { API_KEY_SCOPES, readApiKey, type ApiKeyScope } from "./auth.js";
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_JSON_DEPTH } from "./body.js";
import { DEFAULT_SEND_TIMEOUT_SECONDS } from "./send-timeout.js";
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from "./connections.js";
import { parseList, type CorsOptions } from "./cors.js";
import { parseLogLevel, type LogLevelName } from "./logging.js";
import { unknownMetricFamilies } from "./metrics.js";
import { FlagError } from "../cli/flags.js";

/** OVMS's pull and configure modes (src/cli/pull-command.ts): they run before serving and are not serving options. */
export const PULL_FLAGS = {
  source_model: { type: "string" },
  task: { type: "string" },
  pull: { type: "boolean" },
  overwrite_models: { type: "boolean" },
  configure: { type: "boolean" },
  // What the written graph.pbtxt says.
  target_device: { type: "string" },
  resolution: { type: "string" },
  max_resolution: { type: "string" },
  default_resolution: { type: "string" },
  num_images_per_prompt: { type: "string" },
  guidance_scale: { type: "string" },
  max_num_images_per_prompt: { type: "string" },
  default_num_inference_steps: { type: "string" },
  max_num_inference_steps: { type: "string" },
  num_streams: { type: "string" },
  cache_dir: { type: "string" },
  source_loras: { type: "string" },
} as const;

/** The parseArgs option table of server mode. */
export const SERVER_FLAGS = {
  rest_port: { type: "string" },
  rest_bind_address: { type: "string" },
  model_name: { type: "string" },
  model_path: { type: "string" },
  config_path: { type: "string" },
  model_repository_path: { type: "string" },
  file_system_poll_wait_seconds: { type: "string" },
  log_level: { type: "string" },
  api_key_file: { type: "string" },
  api_key_scope: { type: "string" },
  metrics_enable: { type: "boolean" },
  metrics_list: { type: "string" },
  allowed_origins: { type: "string" },
  allowed_methods: { type: "string" },
  allowed_headers: { type: "string" },
  allow_credentials: { type: "boolean" },
  rest_workers: { type: "string" },
  max_body_size: { type: "string" },
  max_json_body_size: { type: "string" },
  max_total_body_size: { type: "string" },
  max_json_depth: { type: "string" },
  send_timeout_seconds: { type: "string" },
  shutdown_grace_seconds: { type: "string" },
  max_connections: { type: "string" },
  headers_timeout_seconds: { type: "string" },
  request_timeout_seconds: { type: "string" },
  no_ui: { type: "boolean" },
  skip_memory_check: { type: "boolean" },
  // OVMS's gRPC flags: accepted so OVMS command lines start, then ignored (REST only).
  port: { type: "string" },
  grpc_bind_address: { type: "string" },
  grpc_workers: { type: "string" },
  ...PULL_FLAGS,
} as const;

export type ServerFlagValues = { [K in keyof typeof SERVER_FLAGS]?: (typeof SERVER_FLAGS)[K]["type"] extends "boolean" ? boolean : string };

export const SERVER_USAGE = `Server (no command):
  graphserve --rest_port N (--config_path FILE | --model_name NAME --model_path DIR | --model_repository_path DIR) [options]
  --rest_port N                       HTTP port (0: any free port)
  --rest_bind_address ADDR            default 0.0.0.0
  --config_path FILE                  OVMS config.json (model_config_list / mediapipe_config_list)
  --model_name NAME --model_path DIR  serve one graph (DIR holds graph.pbtxt, or is the graph file)
  --model_repository_path DIR         default --config_path DIR/config.json (also OVMS_MODEL_REPOSITORY_PATH)
  --file_system_poll_wait_seconds S   config.json check interval, default 1, 0 off
  --log_level LEVEL                   TRACE, DEBUG, INFO (default), WARNING, ERROR
  --api_key_file FILE                 require "Authorization: Bearer <first line>" (or set API_KEY)
  --api_key_scope SCOPE               what else the key guards: admin (default: /v1/config and
                                      /v1/config/reload), all (also /metrics), inference (OVMS: nothing)
  --metrics_enable                    serve Prometheus metrics at /metrics
  --metrics_list A,B                  only these metric families
  --allowed_origins, --allowed_methods, --allowed_headers LIST   CORS, default *
  --allow_credentials                 CORS: allow credentials
  --rest_workers N                    threads of worker pools whose executor sets no num_threads
  --max_body_size BYTES               largest request body, default 64M (K/M/G suffixes)
  --max_json_body_size BYTES          largest JSON body, default 2M
  --max_total_body_size BYTES         request bodies held at once, all requests, default 256M
  --max_json_depth N                  deepest JSON nesting, default ${DEFAULT_MAX_JSON_DEPTH}
  --send_timeout_seconds S            drop a client that takes no data for S s, default ${DEFAULT_SEND_TIMEOUT_SECONDS}
  --shutdown_grace_seconds S          on SIGTERM/SIGINT, wait this long for requests, default 30
  --max_connections N                 open connections at most; one more evicts the longest idle one,
                                      default ${DEFAULT_CONNECTION_LIMITS.maxConnections}
  --headers_timeout_seconds S         a request's headers must arrive within S, default ${DEFAULT_CONNECTION_LIMITS.headersTimeoutMs / 1000}
  --request_timeout_seconds S         the whole request, body included, within S, default ${DEFAULT_CONNECTION_LIMITS.requestTimeoutMs / 1000}
  --no_ui                             do not serve the web UI at /
  --skip_memory_check                 load models without comparing what they need with the memory
                                      there is (ONNX Runtime; e.g. on a machine with swap)`;

/** What `startServer` needs. */
export interface ServeOptions {
  readonly restPort: number;
  readonly restBindAddress: string;
  readonly configPath?: string;
  readonly single?: { readonly name: string; readonly path: string };
  /** Seconds; 0 turns polling off. */
  readonly pollSeconds: number;
  readonly logLevel: LogLevelName;
  readonly apiKey?: string;
  /** What the key guards besides inference (default "admin"). */
  readonly apiKeyScope?: ApiKeyScope;
  readonly metricsEnable: boolean;
  readonly metricsList?: readonly string[];
  readonly cors: CorsOptions;
  readonly calculatorsDir?: string;
  readonly maxBodyBytes: number;
  /** Default DEFAULT_MAX_JSON_BODY_BYTES. */
  readonly maxJsonBodyBytes?: number;
  /** Default DEFAULT_MAX_TOTAL_BODY_BYTES. */
  readonly maxTotalBodyBytes?: number;
  readonly maxJsonDepth: number;
  /** A client that accepts none of its response for this long is dropped; default DEFAULT_SEND_TIMEOUT_SECONDS. */
  readonly sendTimeoutSeconds?: number;
  /** Accepted for OVMS compatibility; Node serves HTTP on one thread. */
  readonly restWorkers?: number;
  readonly shutdownGraceSeconds: number;
  /** Connection cap and request time limits; defaults DEFAULT_CONNECTION_LIMITS. */
  readonly connections?: Partial<ConnectionLimits>;
  /** Flags accepted but ignored, worth a warning at startup. */
  readonly ignored: readonly string[];
  /** Serve the web UI at `/` (default true; `--no_ui` turns it off). */
  readonly webUi?: boolean;
  /** `--skip_memory_check`: load models without the memory pre-check. */
  readonly skipMemoryCheck?: boolean;
}

function int(name: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw new FlagError(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

function seconds(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) throw new FlagError(`--${name} must be a non-negative number of seconds, got "${value}"`);
  return n;
}

/** Seconds above zero, as whole milliseconds (Node's timeouts take 0 as "none"). */
function positiveMs(name: string, value: string): number {
  const ms = Math.round(seconds(name, value) * 1000);
  if (ms < 1) throw new FlagError(`--${name} must be more than 0 seconds, got "${value}"`);
  return ms;
}

/** The connection flags given; the headers arrive within the request, so their limit cannot be the longer one. */
function connectionLimits(v: ServerFlagValues): Partial<ConnectionLimits> {
  const limits = {
    ...(v.max_connections !== undefined ? { maxConnections: int("max_connections", v.max_connections, 1, 1_000_000) } : {}),
    ...(v.headers_timeout_seconds !== undefined ? { headersTimeoutMs: positiveMs("headers_timeout_seconds", v.headers_timeout_seconds) } : {}),
    ...(v.request_timeout_seconds !== undefined ? { requestTimeoutMs: positiveMs("request_timeout_seconds", v.request_timeout_seconds) } : {}),
  };
  if (limits.headersTimeoutMs !== undefined && limits.requestTimeoutMs !== undefined && limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new FlagError(`--headers_timeout_seconds ${v.headers_timeout_seconds} is longer than --request_timeout_seconds ${v.request_timeout_seconds}: the headers are part of the request`);
  }
  return limits;
}

/** Bytes, with an optional binary K/M/G suffix (`64M`, `512K`, `1G`). */
export function parseSize(name: string, value: string): number {
  const m = /^(\d+)\s*([kmg])?i?b?$/i.exec(value.trim());
  const n = m ? Number(m[1]) * 1024 ** ({ k: 1, m: 2, g: 3 }[(m[2] ?? "").toLowerCase() as "k" | "m" | "g"] ?? 0) : NaN;
  if (!(n >= 1)) throw new FlagError(`--${name} must be a size in bytes such as 67108864 or 64M, got "${value}"`);
  return n;
}

/** Turns parsed flags (and the environment) into ServeOptions; throws FlagError on the first problem. */
export function serveOptionsFrom(v: ServerFlagValues & { readonly calculators_dir?: string }, env: NodeJS.ProcessEnv = process.env): ServeOptions {
  if (v.rest_port === undefined) throw new FlagError("--rest_port is required: graphserve serves REST only");
  const restPort = int("rest_port", v.rest_port, 0, 65535);
  if (v.model_path !== undefined && v.config_path !== undefined) throw new FlagError("--model_path and --config_path exclude each other");
  if (v.model_name !== undefined && v.config_path !== undefined) throw new FlagError("--model_name and --config_path exclude each other");
  if (v.model_name !== undefined && v.model_path === undefined) throw new FlagError("--model_name needs --model_path");
  if (v.model_path !== undefined && v.model_name === undefined) throw new FlagError("--model_path needs --model_name");
  const repository = v.model_repository_path ?? (env.OVMS_MODEL_REPOSITORY_PATH || undefined);
  const configPath = v.config_path ?? (v.model_path === undefined && repository !== undefined ? join(repository, "config.json") : undefined);
  if (configPath === undefined && v.model_path === undefined) {
    throw new FlagError("nothing to serve: give --config_path, --model_name with --model_path, or --model_repository_path");
  }
  if (v.model_name === "") throw new FlagError("--model_name must not be empty");

  const level = v.log_level === undefined ? "INFO" : parseLogLevel(v.log_level);
  if (level === undefined) throw new FlagError(`--log_level must be TRACE, DEBUG, INFO, WARNING or ERROR, got "${v.log_level}"`);

  let apiKey: string | undefined;
  try {
    apiKey = readApiKey(v.api_key_file, env);
  } catch (e) {
    throw new FlagError(`--api_key_file: ${(e as Error).message.replace(/^--api_key_file "[^"]*": /, "")}`);
  }

  let apiKeyScope: ApiKeyScope | undefined;
  if (v.api_key_scope !== undefined) {
    if (!(API_KEY_SCOPES as readonly string[]).includes(v.api_key_scope)) throw new FlagError(`--api_key_scope must be ${API_KEY_SCOPES.slice(0, -1).join(", ")} or ${API_KEY_SCOPES.at(-1)}, got "${v.api_key_scope}"`);
    if (apiKey === undefined) throw new FlagError("--api_key_scope needs a key: --api_key_file or API_KEY");
    apiKeyScope = v.api_key_scope as ApiKeyScope;
  }

  const metricsList = v.metrics_list === undefined ? undefined : parseList(v.metrics_list);
  if (metricsList !== undefined) {
    const unknown = unknownMetricFamilies(metricsList);
    if (unknown.length > 0) throw new FlagError(`--metrics_list: unknown metric famil${unknown.length === 1 ? "y" : "ies"} ${unknown.join(", ")}`);
  }

  const list = (name: "allowed_origins" | "allowed_methods" | "allowed_headers") => {
    const items = parseList(v[name] ?? "*");
    if (items.length === 0) throw new FlagError(`--${name} must not be empty`);
    return items;
  };

  const ignored = (["port", "grpc_bind_address", "grpc_workers"] as const).filter((f) => v[f] !== undefined).map((f) => `--${f}`);
  if (v.port !== undefined) int("port", v.port, 0, 65535);

  return {
    restPort,
    restBindAddress: v.rest_bind_address ?? "0.0.0.0",
    ...(configPath !== undefined ? { configPath } : { single: { name: v.model_name!, path: v.model_path! } }),
    pollSeconds: v.file_system_poll_wait_seconds === undefined ? 1 : seconds("file_system_poll_wait_seconds", v.file_system_poll_wait_seconds),
    logLevel: level,
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(apiKeyScope !== undefined ? { apiKeyScope } : {}),
    metricsEnable: v.metrics_enable === true,
    ...(metricsList !== undefined ? { metricsList } : {}),
    cors: { allowedOrigins: list("allowed_origins"), allowedMethods: list("allowed_methods"), allowedHeaders: list("allowed_headers"), allowCredentials: v.allow_credentials === true },
    ...(v.calculators_dir !== undefined ? { calculatorsDir: v.calculators_dir } : {}),
    maxBodyBytes: v.max_body_size === undefined ? DEFAULT_MAX_BODY_BYTES : parseSize("max_body_size", v.max_body_size),
    ...(v.max_json_body_size !== undefined ? { maxJsonBodyBytes: parseSize("max_json_body_size", v.max_json_body_size) } : {}),
    ...(v.max_total_body_size !== undefined ? { maxTotalBodyBytes: parseSize("max_total_body_size", v.max_total_body_size) } : {}),
    maxJsonDepth: v.max_json_depth === undefined ? DEFAULT_MAX_JSON_DEPTH : int("max_json_depth", v.max_json_depth, 1, 10_000),
    ...(v.send_timeout_seconds !== undefined ? { sendTimeoutSeconds: positiveMs("send_timeout_seconds", v.send_timeout_seconds) / 1000 } : {}),
    ...(v.rest_workers !== undefined ? { restWorkers: int("rest_workers", v.rest_workers, 1, 10_000) } : {}),
    shutdownGraceSeconds: v.shutdown_grace_seconds === undefined ? 30 : seconds("shutdown_grace_seconds", v.shutdown_grace_seconds),
    connections: connectionLimits(v),
    ignored,
    ...(v.no_ui === true ? { webUi: false } : {}),
    ...(v.skip_memory_check === true ? { skipMemoryCheck: true } : {}),
  };
}
