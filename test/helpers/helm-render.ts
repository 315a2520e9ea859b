/**
 * Renders deploy/helm/graphserve with tools/helm-render (Helm's own template
 * libraries, built with Debian's Go; see that file for what it covers) and
 * parses the output. Built once per test process. Without `go` a test skips,
 * except under CI=true, where it fails: CI must install the Go packages.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { parseAllDocuments } from "yaml";
import { ROOT, tempDir } from "../server-helpers.js";
import { runProcess } from "./run-process.js";

export const CHART = join(ROOT, "deploy/helm/graphserve");
const SOURCE = join(ROOT, "tools/helm-render");
/** Where Debian's golang-*-dev packages put their sources. */
const GOPATH = "/usr/share/gocode";

export const GO_PACKAGES = "golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev golang-github-xeipuuv-gojsonschema-dev";

/** A rendered Kubernetes object. */
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly [field: string]: unknown;
}

/** One document of the output, with the template it came from. */
export interface Rendered {
  readonly source: string;
  readonly object: K8sObject;
}

export interface RenderOptions {
  /** Values files, in order (each written as JSON, which is YAML). */
  readonly values?: readonly object[];
  /** --set arguments. */
  readonly set?: readonly string[];
  readonly release?: string;
  readonly namespace?: string;
  /** Checked against Chart.yaml's kubeVersion (the renderer's default: v1.30.0). */
  readonly kubeVersion?: string;
  /** Another chart folder (default: deploy/helm/graphserve). */
  readonly chart?: string;
}

let binary: string | undefined | null;

function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GO111MODULE: "off", GOPATH, GOFLAGS: "", GOENV: "off", GOCACHE: process.env.GOCACHE ?? join(tmpdir(), "graphserve-helm-render-gocache") };
}

/** The renderer's path, or undefined when there is no Go toolchain. Throws when Go is there but the build fails. */
function build(): string | undefined {
  if (binary !== undefined) return binary ?? undefined;
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
  } catch {
    binary = null;
    return undefined;
  }
  const out = join(tempDir(), "helm-render");
  try {
    execFileSync("go", ["build", "-o", out, "."], { cwd: SOURCE, env: goEnv(), stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? "");
    throw new Error(`building tools/helm-render failed (apt-get install ${GO_PACKAGES}):\n${stderr}`);
  }
  binary = out;
  return out;
}

/**
 * The renderer, or a skip: `t.skip` when go is missing locally, an error
 * under CI=true (CI must run these).
 */
export function renderer(t: TestContext): string | undefined {
  const bin = build();
  if (bin !== undefined) return bin;
  const why = `no Go toolchain: the chart is rendered with tools/helm-render (apt-get install ${GO_PACKAGES})`;
  if (process.env.CI === "true") throw new Error(`${why}; CI=true requires it`);
  t.skip(why);
  return undefined;
}

function args(opts: RenderOptions): string[] {
  const dir = tempDir();
  const files = (opts.values ?? []).map((v, i) => {
    const f = join(dir, `values-${i}.yaml`);
    writeFileSync(f, JSON.stringify(v));
    return f;
  });
  return [
    opts.release ?? "rel",
    opts.chart ?? CHART,
    "--namespace",
    opts.namespace ?? "serving",
    ...files.flatMap((f) => ["-f", f]),
    ...(opts.set ?? []).flatMap((s) => ["--set", s]),
    ...(opts.kubeVersion !== undefined ? ["--kube-version", opts.kubeVersion] : []),
  ];
}

const run = (bin: string, argv: string[]) => runProcess(bin, argv);

/** Renders the chart (as `helm template`) and parses every document; throws with the renderer's error. */
export async function render(bin: string, opts: RenderOptions = {}): Promise<Rendered[]> {
  const r = await run(bin, args(opts));
  if (r.code !== 0) throw new Error(`render failed: ${r.stderr}`);
  return parseManifests(r.stdout);
}

/** The rendered NOTES.txt. */
export async function renderNotes(bin: string, opts: RenderOptions = {}): Promise<string> {
  const r = await run(bin, [...args(opts), "--notes"]);
  if (r.code !== 0) throw new Error(`render failed: ${r.stderr}`);
  return r.stdout;
}

/** The error of a render that must fail (throws if it succeeds). */
export async function renderError(bin: string, opts: RenderOptions): Promise<string> {
  const r = await run(bin, args(opts));
  if (r.code === 0) throw new Error(`render succeeded, expected a failure, with ${JSON.stringify(opts)}`);
  return r.stderr;
}

/** Splits `helm template` output: each document must start with its "# Source:" line and parse as one YAML object. */
export function parseManifests(text: string): Rendered[] {
  const out: Rendered[] = [];
  for (const chunk of text.split(/^---$/m)) {
    if (chunk.trim() === "") continue;
    const m = /^\n# Source: (\S+)\n/.exec(chunk);
    if (m === null) throw new Error(`a document without its # Source: line: ${chunk.slice(0, 200)}`);
    const docs = parseAllDocuments(chunk);
    if (docs.length !== 1) throw new Error(`${m[1]}: ${docs.length} YAML documents in one manifest`);
    if (docs[0].errors.length > 0) throw new Error(`${m[1]}: YAML error: ${docs[0].errors[0].message}`);
    out.push({ source: m[1], object: docs[0].toJS() as K8sObject });
  }
  return out;
}

/** The one object of `kind` (throws unless there is exactly one). */
export function one<T = K8sObject>(objects: readonly Rendered[], kind: string): T {
  const found = objects.filter((o) => o.object.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, got ${found.length}`);
  return found[0].object as T;
}

/** A folder standing for a pod's volume mount. */
export function mountDir(name: string): string {
  const d = join(tempDir(), name);
  mkdirSync(d, { recursive: true });
  return d;
}
