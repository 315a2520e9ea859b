/**
 * The KServe manifests (deploy/kserve/): every object valid against the
 * KServe API schema (test/helpers/kserve-schema.ts, ajv) with its embedded
 * core types checked by kubernetes-models; each InferenceService resolvable
 * to a runtime; and each runtime's command line run here as KServe would run
 * it ({{.Name}} replaced, the InferenceService's args appended, /mnt/models
 * mapped to a model folder), its probes and metric fetched from the real server.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { serveOptionsFrom } from "../src/server/flags.js";
import { mountDir } from "./helpers/helm-render.js";
import { validateKServe } from "./helpers/k8s-validate.js";
import { localCommand, parseCliArgs, type ContainerSpec, type HttpProbe } from "./helpers/pod-run.js";
import { imageServable } from "./image-server.js";
import { ROOT, call, eventually, spawnCli } from "./server-helpers.js";

const DIR = join(ROOT, "deploy/kserve");

interface RuntimeContainer extends ContainerSpec {
  readinessProbe: HttpProbe;
  livenessProbe: HttpProbe;
  startupProbe?: HttpProbe;
}
interface ServingRuntime {
  kind: "ServingRuntime";
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { annotations?: Record<string, string>; supportedModelFormats: { name: string; version?: string; autoSelect?: boolean }[]; protocolVersions: string[]; containers: RuntimeContainer[]; volumes: { name: string; emptyDir?: object }[] };
}
interface InferenceService {
  kind: "InferenceService";
  metadata: { name: string };
  spec: { predictor: { minReplicas?: number; maxReplicas?: number; timeout?: number; terminationGracePeriodSeconds?: number; model: { modelFormat: { name: string; version?: string }; runtime?: string; protocolVersion?: string; storageUri?: string; args?: string[] } } };
}

function load(file: string): unknown[] {
  return parseAllDocuments(readFileSync(join(DIR, file), "utf8")).map((d) => {
    assert.deepEqual(d.errors, [], file);
    return d.toJS() as unknown;
  });
}

const runtimes = load("servingruntime.yaml") as ServingRuntime[];
const services = [...load("inferenceservice-demo.yaml"), ...load("inferenceservice-pvc.yaml")] as InferenceService[];

/** The runtime KServe picks for an InferenceService: the named one, else one auto-selecting its format; it must support the protocol. */
function runtimeFor(isvc: InferenceService): ServingRuntime {
  const m = isvc.spec.predictor.model;
  const fits = (r: ServingRuntime) =>
    r.spec.supportedModelFormats.some((f) => f.name === m.modelFormat.name && (m.modelFormat.version === undefined || f.version === m.modelFormat.version) && (m.runtime !== undefined || f.autoSelect === true)) &&
    r.spec.protocolVersions.includes(m.protocolVersion ?? "v1");
  const found = runtimes.filter((r) => (m.runtime === undefined || r.metadata.name === m.runtime) && fits(r));
  assert.equal(found.length, 1, `one runtime serves ${isvc.metadata.name}`);
  return found[0];
}

/** The kserve-container as KServe runs it for `isvc`: {{.Name}} replaced, the InferenceService's args appended. */
function podContainer(isvc: InferenceService): RuntimeContainer {
  const c = runtimeFor(isvc).spec.containers.find((x) => x.name === "kserve-container")!;
  return { ...c, args: [...(c.args ?? []).map((a) => a.replaceAll("{{.Name}}", isvc.metadata.name)), ...(isvc.spec.predictor.model.args ?? [])] };
}

async function runAndProbe(t: TestContext, c: RuntimeContainer, mounts: Record<string, string>, modelName: string): Promise<void> {
  // KServe's conventions: the model at /mnt/models, HTTP on 8080, probes on that port.
  assert.equal(c.ports?.[0]?.containerPort, 8080);
  const args = c.args ?? [];
  assert.equal(args[args.indexOf("--rest_port") + 1], "8080");
  for (const p of [c.readinessProbe, c.livenessProbe, c.startupProbe]) if (p !== undefined) assert.equal(p.httpGet.port, 8080);
  const local = localCommand(c, mounts);
  const parsed = parseCliArgs(local.args);
  if (parsed.positionals.length === 0) serveOptionsFrom(parsed.values as Parameters<typeof serveOptionsFrom>[0], local.env);
  const s = await spawnCli(t, local.args, local.env);
  for (const p of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
    if (p === undefined) continue;
    await eventually(async () => (await call(s.url, "GET", p.httpGet.path)).status === 200, `${p.httpGet.path} to answer 200`, 30_000);
  }
  assert.equal((await call(s.url, "GET", `/v2/models/${modelName}/ready`)).status, 200);
  const r = await call(s.url, "POST", "/v3/images/generations", { json: { model: modelName, prompt: "three cats", size: "128x128", num_inference_steps: 1 } });
  assert.equal(r.status, 200, r.text);
  const metrics = await call(s.url, "GET", "/metrics");
  assert.match(metrics.text, new RegExp(`^graphserve_image_queue_depth\\{servable="${modelName}",node="[^"]+"\\} 0$`, "m"));
  s.proc.kill("SIGTERM");
  assert.equal(await s.exit, 0, s.stderr());
}

test("every KServe object is valid: ServingRuntimes and InferenceServices against KServe's API schema, containers and volumes against Kubernetes'", () => {
  assert.deepEqual(runtimes.map((r) => r.metadata.name), ["graphserve", "graphserve-demo"]);
  assert.deepEqual(services.map((s) => s.metadata.name), ["graphserve-demo", "sd-turbo"]);
  for (const o of [...runtimes, ...services]) validateKServe(o as Parameters<typeof validateKServe>[0]);
  for (const r of runtimes) {
    // Scrape annotations are pod annotations (spec.annotations), not the ServingRuntime object's.
    assert.deepEqual([r.spec.annotations?.["prometheus.kserve.io/port"], r.spec.annotations?.["prometheus.kserve.io/path"]], ["8080", "/metrics"]);
    assert.equal(Object.keys(r.metadata.annotations ?? {}).filter((k) => k.startsWith("prometheus.")).length, 0);
    const c = r.spec.containers[0];
    assert.ok(c.args?.includes("--metrics_enable"), "metrics on for the scrape annotations");
    // Writable scratch on a read-only root: every mount is one of the runtime's emptyDirs.
    const emptyDirs = new Set(r.spec.volumes.filter((v) => v.emptyDir !== undefined).map((v) => v.name));
    assert.deepEqual(c.volumeMounts?.map((m) => [m.mountPath, emptyDirs.has(m.name)]), [["/tmp", true], ["/var/cache/graphserve", true]]);
    assert.equal(c.env?.find((e) => e.name === "XDG_CACHE_HOME")?.value, "/var/cache/graphserve");
  }
});

test("the schema refuses what KServe refuses: a wrong protocol, an unknown field, a bad name, a missing container", () => {
  const isvc = services[1];
  const bad: [unknown, RegExp][] = [
    [{ ...isvc, spec: { predictor: { ...isvc.spec.predictor, model: { ...isvc.spec.predictor.model, protocolVersion: "v3" } } } }, /protocolVersion must be equal to one of the allowed values/],
    [{ ...isvc, spec: { predictor: { ...isvc.spec.predictor, model: { ...isvc.spec.predictor.model, storageURI: "pvc://x" } } } }, /must NOT have additional properties \(storageURI\)/],
    [{ ...isvc, spec: { predictor: { ...isvc.spec.predictor, model: { runtime: "graphserve" } } } }, /must have required property 'modelFormat'/],
    [{ ...isvc, spec: { predictor: { ...isvc.spec.predictor, scaleMetric: "queue" } } }, /scaleMetric must be equal to one of the allowed values/],
    [{ ...isvc, metadata: { name: "1-model" } }, /\/metadata\/name must match pattern/],
    [{ ...isvc, spec: { predictor: { ...isvc.spec.predictor, model: { ...isvc.spec.predictor.model, args: "--log_level" } } } }, /spec\.predictor\.model: .*args must be array/],
    [{ ...runtimes[0], spec: { ...runtimes[0].spec, containers: [] } }, /containers must NOT have fewer than 1 items/],
    [{ ...runtimes[0], spec: { ...runtimes[0].spec, containers: [{ ...runtimes[0].spec.containers[0], name: "server" }] } }, /containers must contain at least 1 valid item/],
    [{ ...runtimes[0], spec: { ...runtimes[0].spec, containers: [{ ...runtimes[0].spec.containers[0], ports: [{ containerPort: "8080" }] }] } }, /containerPort must be integer/],
    [{ ...runtimes[0], spec: { ...runtimes[0].spec, supportedModelFormats: [{ name: "graphserve", priority: 0 }] } }, /priority must be >= 1/],
  ];
  for (const [obj, reason] of bad) assert.throws(() => validateKServe(obj as Parameters<typeof validateKServe>[0]), reason);
});

test("the schema accepts what KServe accepts: scaleMetricType, autoScaling, workerSpec, file:// and local storageUris, generateName and other ObjectMeta", () => {
  const isvc = services[1];
  const p = isvc.spec.predictor;
  const good: unknown[] = [
    { ...isvc, spec: { predictor: { ...p, scaleMetricType: "AverageValue" } } },
    { ...isvc, spec: { predictor: { ...p, autoScaling: { metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } } }] } } } },
    { ...isvc, spec: { predictor: { ...p, workerSpec: { containers: [{ name: "worker-container", image: "x" }] } } } },
    ...["file:///mnt/models/sd", "/mnt/data/sd", "models/sd", "https://example.blob.core.windows.net/c/sd"].map((storageUri) => ({ ...isvc, spec: { predictor: { ...p, model: { ...p.model, storageUri } } } })),
    { ...isvc, metadata: { generateName: "sd-", labels: { team: "a" }, finalizers: ["x/y"] } },
    { ...runtimes[0], metadata: { name: "graphserve", namespace: "serving", resourceVersion: "1", uid: "u" } },
  ];
  for (const obj of good) validateKServe(obj as Parameters<typeof validateKServe>[0]);
  assert.throws(() => validateKServe({ ...isvc, spec: { predictor: { ...p, model: { ...p.model, storageUri: "ftp://host/sd" } } } } as Parameters<typeof validateKServe>[0]), /storageUri must match pattern/);
  assert.throws(() => validateKServe({ ...isvc, spec: { predictor: { ...p, scaleMetricType: "Average" } } } as Parameters<typeof validateKServe>[0]), /scaleMetricType must be equal to one of the allowed values/);
  assert.throws(() => validateKServe({ ...isvc, metadata: { labels: {} } } as Parameters<typeof validateKServe>[0]), /must have required property 'name'/);
});

test("draining fits the request timeout: each InferenceService's drain is shorter than its pod's grace period and long enough for most of a request", () => {
  for (const isvc of services) {
    const c = podContainer(isvc);
    const drain = Number(parseCliArgs(c.args!).values.shutdown_grace_seconds);
    const timeout = isvc.spec.predictor.timeout!;
    // Knative's pod grace period is the timeout; RawDeployment uses terminationGracePeriodSeconds when set.
    const grace = isvc.spec.predictor.terminationGracePeriodSeconds ?? timeout;
    assert.ok(drain < grace - 30, `${isvc.metadata.name}: drain ${drain} s leaves room for the queue-proxy's drain within ${grace} s`);
    assert.ok(drain >= timeout * 0.9, `${isvc.metadata.name}: drain ${drain} s covers most of the ${timeout} s timeout`);
  }
});

test("the InferenceServices resolve to their runtimes, with protocol v2 and the formats the runtimes declare", () => {
  const [demo, pvc] = services;
  assert.equal(runtimeFor(demo).metadata.name, "graphserve-demo");
  assert.equal(runtimeFor(pvc).metadata.name, "graphserve", "auto-selected by its model format");
  assert.match(pvc.spec.predictor.model.storageUri!, /^pvc:\/\/[a-z0-9-]+\/.+/);
  for (const s of services) assert.ok((s.spec.predictor.minReplicas ?? 1) <= (s.spec.predictor.maxReplicas ?? Infinity));
});

test("the graphserve runtime serves a model folder from /mnt/models under the InferenceService's name", async (t) => {
  const isvc = services[1];
  const c = podContainer(isvc);
  assert.deepEqual(parseCliArgs(c.args!).values.model_path, "/mnt/models");
  assert.equal(parseCliArgs(c.args!).values.log_level, "INFO", "the InferenceService's args are appended");
  // What the storage initializer leaves in /mnt/models: a folder with graph.pbtxt beside the model.
  const model = await imageServable();
  await runAndProbe(t, c, { "/mnt/models": model, "/tmp": mountDir("tmp"), "/var/cache/graphserve": mountDir("cache") }, isvc.metadata.name);
});

test("the demo runtime builds and serves the demo model under the InferenceService's name, with no storage", async (t) => {
  const isvc = services[0];
  assert.equal(isvc.spec.predictor.model.storageUri, undefined);
  const c = podContainer(isvc);
  assert.deepEqual(parseCliArgs(c.args!).positionals, ["demo"]);
  await runAndProbe(t, c, { "/tmp": mountDir("tmp"), "/var/cache/graphserve": mountDir("cache") }, isvc.metadata.name);
});
