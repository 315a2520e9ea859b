/**
 * Runs a rendered container's command line on this machine: the args and
 * env exactly as rendered, except that each volume mount path is replaced by
 * a local folder standing for it and the REST port by 0 (any free port; the
 * tests check the rendered port separately). The image's entrypoint is the
 * graphserve CLI (Dockerfile), so the args go straight to it.
 */
import { parseArgs } from "node:util";
import { SERVER_FLAGS } from "../../src/server/flags.js";

export interface ContainerSpec {
  readonly name: string;
  readonly args?: readonly string[];
  readonly command?: readonly string[];
  readonly env?: readonly { readonly name: string; readonly value?: string; readonly valueFrom?: unknown }[];
  readonly volumeMounts?: readonly { readonly name: string; readonly mountPath: string; readonly readOnly?: boolean }[];
  readonly ports?: readonly { readonly name?: string; readonly containerPort: number }[];
  readonly [field: string]: unknown;
}

/** An httpGet probe as the manifests write it. */
export interface HttpProbe {
  readonly httpGet: { readonly path: string; readonly port: string | number };
  readonly periodSeconds?: number;
  readonly failureThreshold?: number;
}

export interface LocalCommand {
  readonly args: string[];
  /** Literal env values (valueFrom entries need a cluster and are left out). */
  readonly env: Record<string, string>;
}

/** `path` with its mount prefix swapped for the local folder, when it lies under one. */
function localPath(value: string, mounts: Readonly<Record<string, string>>): string {
  for (const [mountPath, dir] of Object.entries(mounts)) {
    if (value === mountPath || value.startsWith(`${mountPath}/`)) return dir + value.slice(mountPath.length);
  }
  return value;
}

/** The container's command line and env, with mounts mapped to `mounts` (mountPath → local folder) and --rest_port 0. */
export function localCommand(c: ContainerSpec, mounts: Readonly<Record<string, string>>): LocalCommand {
  if (c.command !== undefined) throw new Error(`${c.name}: sets command; the image's entrypoint (graphserve) is expected`);
  for (const m of c.volumeMounts ?? []) {
    if (mounts[m.mountPath] === undefined) throw new Error(`${c.name}: no local folder for the mount ${m.mountPath}`);
  }
  const args = (c.args ?? []).map((a) => localPath(a, mounts));
  const port = args.indexOf("--rest_port");
  if (port >= 0) args[port + 1] = "0";
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = localPath(e.value, mounts);
  return { args, env };
}

/**
 * The args parsed by the CLI's own option table (strict, as `graphserve`
 * parses argv): throws on an unknown flag or a missing value. Positionals
 * (`demo`) are returned apart.
 */
export function parseCliArgs(args: readonly string[]): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const { values, positionals } = parseArgs({ args: [...args], options: { calculators_dir: { type: "string" }, ...SERVER_FLAGS }, strict: true, allowPositionals: true });
  return { values: values as Record<string, string | boolean | undefined>, positionals };
}
