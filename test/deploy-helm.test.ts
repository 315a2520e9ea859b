/**
 * The Helm chart (deploy/helm/graphserve), rendered as `helm template` does
 * (test/helpers/helm-render.ts) for the demo defaults, a source_model
 * deployment and a config.json deployment. Every object is validated against
 * the Kubernetes schemas; the containers' command lines are then run here,
 * mounts mapped to local folders: the init container's `--pull` against a
 * Hub stand-in, the server with exactly the chart's flags, its probes and
 * scrape path fetched, its HPA metric found on /metrics.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { serveOptionsFrom } from "../src/server/flags.js";
import { startHubStandIn } from "./helpers/hub-stand-in.js";
import { mountDir, one, render, renderError, renderNotes, renderer, type K8sObject, type Rendered } from "./helpers/helm-render.js";
import { validateKubernetes } from "./helpers/k8s-validate.js";
import { localCommand, parseCliArgs, type ContainerSpec, type HttpProbe } from "./helpers/pod-run.js";
import { runProcess } from "./helpers/run-process.js";
import { snapshot } from "./helpers/snapshot.js";
import { CLI, ECHO_GRAPH_DIR, ROOT, call, eventually, spawnCli, tempDir, type CliServer } from "./server-helpers.js";

for (const k of ["HF_TOKEN", "HF_ENDPOINT", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "OVMS_MODEL_REPOSITORY_PATH"]) delete process.env[k];

interface ServerContainer extends ContainerSpec {
  livenessProbe: HttpProbe;
  readinessProbe: HttpProbe;
  startupProbe: HttpProbe;
  securityContext: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface Volume {
  name: string;
  emptyDir?: object;
  persistentVolumeClaim?: { claimName: string };
  secret?: { secretName: string; items: { key: string; path: string }[] };
  configMap?: { name: string };
}
interface DeploymentObject extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: {
        securityContext: { runAsUser: number; runAsGroup: number; runAsNonRoot: boolean; fsGroup: number; fsGroupChangePolicy?: string };
        terminationGracePeriodSeconds: number;
        initContainers?: ContainerSpec[];
        containers: ServerContainer[];
        volumes: Volume[];
      };
    };
  };
}

type PdbObject = K8sObject & { spec: { maxUnavailable?: number | string; minAvailable?: number | string; selector: { matchLabels: Record<string, string> } } };
type HpaObject = K8sObject & { spec: { scaleTargetRef: { apiVersion: string; kind: string; name: string } } };

const PROBE_PATHS = { livenessProbe: "/v2/health/live", readinessProbe: "/v2/health/ready", startupProbe: "/v2/health/ready" } as const;

function validateAll(objects: readonly Rendered[]): void {
  assert.ok(objects.length > 0);
  for (const o of objects) validateKubernetes(o.object);
}

function server(d: DeploymentObject): ServerContainer {
  const c = d.spec.template.spec.containers;
  assert.equal(c.length, 1);
  return c[0];
}

function flag(args: readonly string[] | undefined, name: string): string | undefined {
  const i = (args ?? []).indexOf(name);
  return i < 0 ? undefined : args![i + 1];
}

/** What must hold for every rendering: ports, probes, user, writable paths, termination. */
function checkPod(objects: readonly Rendered[]): { deployment: DeploymentObject; container: ServerContainer } {
  const deployment = one<DeploymentObject>(objects, "Deployment");
  const pod = deployment.spec.template.spec;
  const container = server(deployment);

  // One port, named, equal to --rest_port; the Service and every probe use it by name.
  const restPort = Number(flag(container.args, "--rest_port"));
  assert.deepEqual(container.ports?.map((p) => [p.name, p.containerPort]), [["http", restPort]]);
  const service = one<K8sObject & { spec: { ports: { targetPort: string }[]; selector: Record<string, string> } }>(objects, "Service");
  assert.deepEqual(service.spec.ports.map((p) => p.targetPort), ["http"]);

  // Everything that finds the pods finds these: the Deployment's own selector
  // matches its template, and the Service, the PDB and the HPA point at them.
  const selector = deployment.spec.selector.matchLabels;
  assert.ok(Object.keys(selector).length > 0);
  for (const [k, v] of Object.entries(selector)) assert.equal(deployment.spec.template.metadata.labels[k], v, `pod template label ${k}`);
  assert.deepEqual(service.spec.selector, selector);
  const pdbs = objects.filter((o) => o.object.kind === "PodDisruptionBudget").map((o) => o.object as PdbObject);
  for (const pdb of pdbs) assert.deepEqual(pdb.spec.selector.matchLabels, selector);
  for (const o of objects.filter((x) => x.object.kind === "HorizontalPodAutoscaler")) {
    assert.deepEqual((o.object as HpaObject).spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
  }
  for (const [probe, path] of Object.entries(PROBE_PATHS)) {
    const p = container[probe as keyof typeof PROBE_PATHS];
    assert.deepEqual(p.httpGet, { path, port: "http" }, probe);
  }
  const startup = container.startupProbe;
  assert.ok((startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3) >= 600, "the startup probe allows at least 10 min of model loading");

  // The Dockerfile's user: `USER node` in the official node image, uid/gid 1000 (numeric here, so runAsNonRoot can be checked by the kubelet).
  const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  assert.match(dockerfile, /^USER node$/m);
  assert.match(dockerfile, /^ARG NODE_IMAGE=node:\S+$/m);
  assert.deepEqual([pod.securityContext.runAsUser, pod.securityContext.runAsGroup, pod.securityContext.runAsNonRoot, pod.securityContext.fsGroup], [1000, 1000, true, 1000]);
  // A big model volume is re-owned once, not walked at every pod start.
  assert.equal(pod.securityContext.fsGroupChangePolicy, "OnRootMismatch");
  for (const c of [...(pod.initContainers ?? []), container] as ServerContainer[]) {
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, c.name);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name);
  }
  // What the server writes (tmp, XDG_CACHE_HOME: the demo model) is on emptyDirs.
  const emptyDirs = new Set(pod.volumes.filter((v) => v.emptyDir !== undefined).map((v) => v.name));
  const mountOf = (path: string) => container.volumeMounts?.find((m) => m.mountPath === path);
  const cache = container.env?.find((e) => e.name === "XDG_CACHE_HOME")?.value;
  for (const path of ["/tmp", cache!]) assert.ok(emptyDirs.has(mountOf(path)?.name ?? ""), `${path} is an emptyDir mount`);
  // The models volume is read-only in the server; only the init container writes it.
  const models = mountOf("/models");
  if (models !== undefined) assert.equal(models.readOnly, true);

  // SIGKILL comes after the preStop sleep and the whole drain.
  const grace = Number(flag(container.args, "--shutdown_grace_seconds"));
  const sleep = Number(container.lifecycle?.preStop?.exec?.command[1] ?? 0);
  assert.deepEqual(container.lifecycle?.preStop?.exec?.command.slice(0, 1), ["sleep"]);
  assert.ok(grace > 0 && pod.terminationGracePeriodSeconds > grace + sleep, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > ${sleep} s preStop + ${grace} s drain`);

  // The flags parse with the CLI's own table and make valid serving options.
  const parsed = parseCliArgs(container.args ?? []);
  assert.equal(parsed.values.rest_port, String(restPort));
  return { deployment, container };
}

/** Starts the server container's command line here; `mounts` maps its mount paths to local folders. */
async function startContainer(t: TestContext, c: ContainerSpec, mounts: Record<string, string>): Promise<CliServer> {
  const { args, env } = localCommand(c, mounts);
  // Parsing as the CLI does catches a bad flag with a clear message before spawning.
  const { values, positionals } = parseCliArgs(args);
  if (positionals.length === 0) serveOptionsFrom(values as Parameters<typeof serveOptionsFrom>[0], { ...env });
  return spawnCli(t, args, env);
}

async function checkProbes(url: string, c: ServerContainer): Promise<void> {
  for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"] as const) {
    const path = c[probe].httpGet.path;
    await eventually(async () => (await call(url, "GET", path)).status === 200, `${probe} ${path} to answer 200`, 30_000);
  }
}

test("default values: the demo, valid objects, probes on real endpoints, scrape path served", async (t) => {
  const bin = renderer(t);
  if (bin === undefined) return;
  const objects = await render(bin);
  validateAll(objects);
  assert.deepEqual(objects.map((o) => o.object.kind).sort(), ["Deployment", "PodDisruptionBudget", "Service"]);
  const { deployment, container } = checkPod(objects);
  assert.deepEqual(container.args?.slice(0, 1), ["demo"]);
  assert.equal(container.args?.includes("--metrics_enable"), true);
  const annotations = deployment.spec.template.metadata.annotations ?? {};
  assert.deepEqual([annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]], ["true", flag(container.args, "--rest_port")]);
  const pdb = one<K8sObject & { spec: { maxUnavailable: number } }>(objects, "PodDisruptionBudget");
  assert.equal(pdb.spec.maxUnavailable, 1);

  const s = await startContainer(t, container, { "/tmp": mountDir("tmp"), "/var/cache/graphserve": mountDir("cache") });
  await checkProbes(s.url, container);
  const metrics = await call(s.url, "GET", annotations["prometheus.io/path"]);
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /^graphserve_image_queue_depth\{servable="demo",node="[^"]+"\} 0$/m);
  const r = await call(s.url, "POST", "/v3/images/generations", { json: { model: "demo", prompt: "a red circle on a blue background", size: "128x128", num_inference_steps: 1 } });
  assert.equal(r.status, 200, r.text);
  s.proc.kill("SIGTERM");
  assert.equal(await s.exit, 0, s.stderr());
});

test("source_model: PVC, init container --pull (run against a Hub stand-in), API key Secret, HPA on the queue-depth metric the server exports", async (t) => {
  const bin = renderer(t);
  if (bin === undefined) return;
  const values = {
    mode: "sourceModel",
    sourceModel: { repository: "org/tiny", name: "tiny", graphOptions: { default_resolution: "64x64", max_num_inference_steps: 8 }, tokenSecret: { name: "hf-token" } },
    models: { source: "pvc", pvc: { size: "5Gi", accessModes: ["ReadWriteMany"] } },
    apiKey: { value: "k8s-s3cret" },
    autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 6 },
  };
  const objects = await render(bin, { values: [values] });
  validateAll(objects);
  assert.deepEqual(objects.map((o) => o.object.kind).sort(), ["Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "PodDisruptionBudget", "Secret", "Service"]);
  const { deployment, container } = checkPod(objects);
  const pod = deployment.spec.template.spec;
  assert.equal(deployment.spec.replicas, undefined, "the HPA owns the replica count");

  // The claim, kept across uninstalls, mounted by both containers.
  const pvc = one<K8sObject & { spec: { accessModes: string[]; resources: { requests: { storage: string } } } }>(objects, "PersistentVolumeClaim");
  assert.deepEqual([pvc.spec.accessModes, pvc.spec.resources.requests.storage, pvc.metadata.annotations?.["helm.sh/resource-policy"]], [["ReadWriteMany"], "5Gi", "keep"]);
  assert.equal(pod.volumes.find((v) => v.name === "models")?.persistentVolumeClaim?.claimName, pvc.metadata.name);

  // The init container: a valid `--pull` command line, the only writer of /models.
  assert.equal(pod.initContainers?.length, 1);
  const init = pod.initContainers![0];
  assert.equal(init.image, container.image, "the same image");
  const pullFlags = parseCliArgs(init.args ?? []);
  assert.deepEqual(pullFlags.positionals, []);
  assert.deepEqual(
    [pullFlags.values.pull, pullFlags.values.source_model, pullFlags.values.model_repository_path, pullFlags.values.model_name, pullFlags.values.task],
    [true, "org/tiny", "/models", "tiny", "image_generation"],
  );
  assert.equal(init.volumeMounts?.find((m) => m.mountPath === "/models")?.readOnly, undefined);
  assert.deepEqual(init.env?.find((e) => e.name === "HF_TOKEN")?.valueFrom, { secretKeyRef: { name: "hf-token", key: "HF_TOKEN" } });

  // Run the pod here: the pull, then the server, on one models folder.
  const hub = await startHubStandIn();
  t.after(() => hub.close());
  const source = tempDir();
  await makeTinyModel(source, { family: "sd", seed: 7 });
  await hub.addRepoFromFolder("org/tiny", source);
  const modelsDir = mountDir("models");
  const tmp = mountDir("tmp");
  const pull = localCommand(init, { "/models": modelsDir, "/tmp": tmp });
  const pulled = await runProcess(process.execPath, [CLI, ...pull.args], { cwd: ROOT, env: { ...process.env, ...pull.env, HF_ENDPOINT: hub.url } });
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.ok(existsSync(join(modelsDir, "org/tiny/graph.pbtxt")), "the pull wrote graph.pbtxt");
  assert.match(readFileSync(join(modelsDir, "org/tiny/graph.pbtxt"), "utf8"), /default_resolution: "64x64"/);
  assert.equal(flag(container.args, "--model_path"), "/models/org/tiny");
  const before = snapshot(modelsDir);

  // The API key: the Secret's value, mounted where --api_key_file points; its hash on the pods rolls them when it changes.
  const secret = one<K8sObject & { data: Record<string, string> }>(objects, "Secret");
  const keyHash = (key: string) => createHash("sha256").update(key).digest("hex");
  assert.equal(deployment.spec.template.metadata.annotations?.["checksum/api-key"], keyHash("k8s-s3cret"));
  const rotated = one<DeploymentObject>(await render(bin, { values: [values], set: ["apiKey.value=rotated"] }), "Deployment");
  assert.equal(rotated.spec.template.metadata.annotations?.["checksum/api-key"], keyHash("rotated"));
  const keyVolume = pod.volumes.find((v) => v.secret?.secretName === secret.metadata.name);
  assert.ok(keyVolume?.secret);
  const keyMount = container.volumeMounts!.find((m) => m.name === keyVolume.name)!;
  assert.equal(keyMount.readOnly, true);
  const item = keyVolume.secret.items[0];
  assert.equal(flag(container.args, "--api_key_file"), `${keyMount.mountPath}/${item.path}`);
  const keyDir = mountDir("api-key");
  writeFileSync(join(keyDir, item.path), Buffer.from(secret.data[item.key], "base64"));

  const s = await startContainer(t, container, { "/models": modelsDir, "/tmp": tmp, "/var/cache/graphserve": mountDir("cache"), [keyMount.mountPath]: keyDir });
  await checkProbes(s.url, container);
  const request = { model: "tiny", prompt: "three cats", size: "64x64", num_inference_steps: 1 };
  assert.equal((await call(s.url, "POST", "/v3/images/generations", { json: request })).status, 401, "the key is required");
  const ok = await call(s.url, "POST", "/v3/images/generations", { json: request, headers: { authorization: "Bearer k8s-s3cret" } });
  assert.equal(ok.status, 200, ok.text);

  // The HPA scales on a series this server exports (per pod; the adapter sums a pod's servables).
  const hpa = one<K8sObject & { spec: { minReplicas: number; maxReplicas: number; scaleTargetRef: { kind: string; name: string }; metrics: { type: string; pods?: { metric: { name: string }; target: { type: string; averageValue: string } }; resource?: { name: string; target: { type: string; averageUtilization: number } } }[] } }>(objects, "HorizontalPodAutoscaler");
  assert.deepEqual([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name, hpa.spec.minReplicas, hpa.spec.maxReplicas], ["Deployment", deployment.metadata.name, 2, 6]);
  assert.deepEqual(hpa.spec.metrics.map((m) => m.type), ["Pods", "Resource"]);
  const metricName = hpa.spec.metrics[0].pods!.metric.name;
  assert.deepEqual(hpa.spec.metrics[0].pods!.target, { type: "AverageValue", averageValue: "2" });
  assert.deepEqual(hpa.spec.metrics[1].resource, { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } });
  const scraped = await call(s.url, "GET", deployment.spec.template.metadata.annotations!["prometheus.io/path"]);
  assert.equal(scraped.status, 200);
  assert.match(scraped.text, new RegExp(`^# TYPE ${metricName} gauge$`, "m"));
  assert.match(scraped.text, new RegExp(`^${metricName}\\{servable="tiny",node="[^"]+"\\} 0$`, "m"));

  s.proc.kill("SIGTERM");
  assert.equal(await s.exit, 0, s.stderr());
  assert.deepEqual(snapshot(modelsDir), before, "the server left the models volume as the pull wrote it");

  // NOTES.txt carries the adapter rule for that metric.
  const notes = await renderNotes(bin, { values: [values] });
  assert.match(notes, new RegExp(`seriesQuery: '${metricName}\\{namespace!="",pod!=""\\}'`));
  assert.match(notes, /metricsQuery: sum\(<<\.Series>>\{<<\.LabelMatchers>>\}\) by \(<<\.GroupBy>>\)/);
  assert.match(notes, /-c pull/);
});

test("config.json mode: the ConfigMap holds config.json, mounted where --config_path points; both servables load", async (t) => {
  const bin = renderer(t);
  if (bin === undefined) return;
  const configJson = { model_config_list: [{ config: { name: "echo-a", base_path: "/models/echo-a" } }, { config: { name: "echo-b", base_path: "/models/echo-b" } }] };
  const objects = await render(bin, { values: [{ mode: "config", configJson, models: { source: "existingClaim", existingClaim: "shared-models" }, metrics: { enabled: false } }] });
  validateAll(objects);
  assert.deepEqual(objects.map((o) => o.object.kind).sort(), ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]);
  const { deployment, container } = checkPod(objects);
  const pod = deployment.spec.template.spec;
  assert.equal(pod.volumes.find((v) => v.name === "models")?.persistentVolumeClaim?.claimName, "shared-models");
  assert.equal(deployment.spec.template.metadata.annotations, undefined, "no scrape annotations with metrics off");
  assert.equal(container.args?.includes("--metrics_enable"), false);

  const cm = one<K8sObject & { data: Record<string, string> }>(objects, "ConfigMap");
  assert.deepEqual(JSON.parse(cm.data["config.json"]), configJson);
  const configVolume = pod.volumes.find((v) => v.configMap?.name === cm.metadata.name)!;
  const configMount = container.volumeMounts!.find((m) => m.name === configVolume.name)!;
  assert.equal(flag(container.args, "--config_path"), `${configMount.mountPath}/config.json`);

  // The kubelet's view: the claim holds the servables, the ConfigMap is a folder with config.json.
  const modelsDir = mountDir("models");
  for (const name of ["echo-a", "echo-b"]) cpSync(ECHO_GRAPH_DIR, join(modelsDir, name), { recursive: true });
  const configDir = mountDir("config");
  writeFileSync(join(configDir, "config.json"), cm.data["config.json"].replaceAll('"/models/', `"${modelsDir}/`));
  const s = await startContainer(t, container, { "/models": modelsDir, [configMount.mountPath]: configDir, "/tmp": mountDir("tmp"), "/var/cache/graphserve": mountDir("cache") });
  await checkProbes(s.url, container);
  for (const name of ["echo-a", "echo-b"]) assert.equal((await call(s.url, "GET", `/v2/models/${name}/ready`)).status, 200, name);
  const echoed = await call(s.url, "POST", "/v3/echo", { json: { model: "echo-b", hello: "k8s" } });
  assert.deepEqual(echoed.body, { model: "echo-b", hello: "k8s" });
  s.proc.kill("SIGTERM");
  assert.equal(await s.exit, 0, s.stderr());
});

test("bad values are refused before anything is rendered, each with its reason", async (t) => {
  const bin = renderer(t);
  if (bin === undefined) return;
  const cases: [string[], RegExp][] = [
    [["mode=other"], /mode: mode must be one of the following: "demo", "model", "config", "sourceModel"/],
    [["replicas=3"], /Additional property replicas is not allowed/],
    [["server.restPort=http"], /server\.restPort: Invalid type\. Expected: integer, given: string/],
    [["server.restPort=70000"], /server\.restPort: Must be less than or equal to 65535/],
    [["server.logLevel=LOUD"], /server\.logLevel: server\.logLevel must be one of the following/],
    [["sourceModel.graphOptions.steps=4"], /Additional property steps is not allowed/],
    [["sourceModel.repository=../etc"], /sourceModel\.repository: Does not match pattern/],
    [["mode=model", "models.source=pvc"], /model\.name is required with mode=model/],
    [["mode=model", "model.name=x", "model.path=../../etc", "models.source=pvc"], /model\.path must stay under \/models/],
    [["mode=sourceModel", "sourceModel.repository=org/m"], /mode=sourceModel reads \/models: set models\.source/],
    [["mode=sourceModel", "models.source=pvc"], /sourceModel\.repository is required with mode=sourceModel/],
    [["models.source=emptyDir"], /models\.source=emptyDir starts empty/],
    [["models.source=existingClaim", "mode=model", "model.name=x", "model.path=x"], /models\.existingClaim is required/],
    [["mode=config"], /mode=config needs configJson/],
    [["terminationGracePeriodSeconds=30"], /terminationGracePeriodSeconds \(30\) must exceed preStopSleepSeconds \+ server\.shutdownGraceSeconds \(35\)/],
    [["autoscaling.enabled=true", "autoscaling.queueDepth.enabled=false", "autoscaling.cpu.enabled=false"], /needs autoscaling\.queueDepth\.enabled or autoscaling\.cpu\.enabled/],
    [["autoscaling.enabled=true", "metrics.enabled=false"], /autoscaling\.queueDepth needs metrics\.enabled/],
    [["autoscaling.enabled=true", "resources.requests=null"], /autoscaling\.cpu needs resources\.requests\.cpu/],
    [["autoscaling.enabled=true", "autoscaling.minReplicas=5", "autoscaling.maxReplicas=2"], /minReplicas must not exceed autoscaling\.maxReplicas/],
    // Absolute paths are the server's view: only /models and below exist there.
    [["mode=model", "model.name=x", "model.path=/srv/models/x", "models.source=pvc"], /model\.path "\/srv\/models\/x" is outside \/models/],
    [["mode=model", "model.name=x", "model.path=/modelsx", "models.source=pvc"], /model\.path "\/modelsx" is outside \/models/],
    // Re-downloading at every pod start on a shared volume swaps the folder under the serving replicas.
    [["mode=sourceModel", "sourceModel.repository=org/m", "models.source=pvc", "sourceModel.overwrite=true"], /sourceModel\.overwrite would download again at every pod start .* only with models\.source=emptyDir/],
    // A ReadWriteOnce claim on one node: pods elsewhere would stay Pending.
    [["mode=model", "model.name=x", "model.path=x", "models.source=pvc", "replicaCount=2"], /models\.pvc\.accessModes \[ReadWriteOnce\] with up to 2 pods: .*Pending/],
    [["mode=model", "model.name=x", "model.path=x", "models.source=pvc", "autoscaling.enabled=true", "autoscaling.maxReplicas=3"], /with up to 3 pods/],
    [["mode=model", "model.name=x", "model.path=x", "models.source=pvc", "replicaCount=2", "models.pvc.accessModes={ReadWriteOncePod}"], /ReadWriteOnce claim mounts on one node only/],
    // Budgets that let no pod go block every node drain.
    [["podDisruptionBudget.minAvailable=1"], /podDisruptionBudget\.minAvailable 1 with 1 pod\(s\) lets no pod be evicted/],
    [["replicaCount=3", "podDisruptionBudget.minAvailable=3"], /minAvailable 3 with 3 pod\(s\)/],
    [["replicaCount=2", "podDisruptionBudget.minAvailable=60%"], /minAvailable 60% with 2 pod\(s\)/],
    [["autoscaling.enabled=true", "autoscaling.minReplicas=2", "podDisruptionBudget.minAvailable=2"], /minAvailable 2 with 2 pod\(s\)/],
    [["podDisruptionBudget.maxUnavailable=0"], /maxUnavailable 0 lets no pod be evicted/],
    // Kubernetes quantities: binary suffixes are Ki..Ei, decimal ones n, u, m, k, M..E.
    [["models.pvc.size=512ki"], /models\.pvc\.size: Does not match pattern/],
    [["models.emptyDir.sizeLimit=5ni"], /models\.emptyDir\.sizeLimit: Does not match pattern/],
    [["scratch.tmpSizeLimit=1GB"], /scratch\.tmpSizeLimit: Does not match pattern/],
  ];
  for (const [set, reason] of cases) assert.match(await renderError(bin, { set }), reason, set.join(" "));
  // Chart.yaml's kubeVersion: autoscaling/v2 and policy/v1 need 1.23.
  assert.match(await renderError(bin, { kubeVersion: "v1.22.9" }), /chart requires kubeVersion: >=1\.23\.0-0 which is incompatible with Kubernetes v1\.22\.9/);
  validateAll(await render(bin, { kubeVersion: "v1.23.0" }));
});

test("model.path maps onto /models (relative, /models itself, or below it); quantities Kubernetes accepts; budgets that let a pod go", async (t) => {
  const bin = renderer(t);
  if (bin === undefined) return;
  const modelPath = async (path: string) => {
    const objects = await render(bin, { set: ["mode=model", "model.name=m", `model.path=${path}`, "models.source=existingClaim", "models.existingClaim=c"] });
    return flag(server(one<DeploymentObject>(objects, "Deployment")).args, "--model_path");
  };
  assert.deepEqual(
    await Promise.all(["/models", "/models/", "/models/sd", "/models/org/sd/", "sd", "org/sd"].map(modelPath)),
    ["/models", "/models", "/models/sd", "/models/org/sd", "/models/sd", "/models/org/sd"],
  );
  for (const q of ["512Ki", "1.5Gi", "100M", "500m", "1e3", "2E6", ".5Gi", "3"]) {
    validateAll(await render(bin, { set: [`scratch.tmpSizeLimit=${q}`] }));
  }
  for (const [set, want] of [
    [["replicaCount=2", "podDisruptionBudget.minAvailable=1"], { minAvailable: 1 }],
    [["replicaCount=3", "podDisruptionBudget.minAvailable=60%"], { minAvailable: "60%" }],
    [["podDisruptionBudget.maxUnavailable=50%"], { maxUnavailable: "50%" }],
  ] as const) {
    const objects = await render(bin, { set: [...set] });
    validateAll(objects);
    checkPod(objects);
    const { selector: _s, ...budget } = one<PdbObject>(objects, "PodDisruptionBudget").spec;
    assert.deepEqual(budget, want, set.join(" "));
  }
  // ReadWriteMany lets pods on any node mount the claim; one pod may use ReadWriteOnce.
  validateAll(await render(bin, { set: ["mode=model", "model.name=x", "model.path=x", "models.source=pvc", "replicaCount=3", "models.pvc.accessModes={ReadWriteMany}"] }));
  validateAll(await render(bin, { set: ["mode=model", "model.name=x", "model.path=x", "models.source=pvc"] }));
  // overwrite is allowed where each pod has its own copy.
  const perPod = one<DeploymentObject>(await render(bin, { set: ["mode=sourceModel", "sourceModel.repository=org/m", "models.source=emptyDir", "sourceModel.overwrite=true"] }), "Deployment");
  assert.ok(perPod.spec.template.spec.initContainers?.[0].args?.includes("--overwrite_models"));
  // No env entries, no empty `env:` on the init container.
  assert.equal(Object.hasOwn(perPod.spec.template.spec.initContainers![0], "env"), false);
});

test("the renderer keeps objects of one kind in template order, as Helm does, after its install order of kinds", async (t) => {
  const bin = renderer(t);
  if (bin === undefined) return;
  const chart = tempDir();
  mkdirSync(join(chart, "templates"));
  writeFileSync(join(chart, "Chart.yaml"), "apiVersion: v2\nname: order\nversion: 0.1.0\n");
  writeFileSync(join(chart, "values.yaml"), "{}\n");
  const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;
  writeFileSync(join(chart, "templates", "a.yaml"), `${cm("zeta")}---\n${cm("alpha")}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  ports: [{port: 80}]\n`);
  writeFileSync(join(chart, "templates", "b.yaml"), cm("beta"));
  const objects = await render(bin, { chart });
  assert.deepEqual(objects.map((o) => `${o.object.kind}/${o.object.metadata.name}`), ["ConfigMap/zeta", "ConfigMap/alpha", "ConfigMap/beta", "Service/svc"]);
});

test("values precedence as in Helm: -f files in order, then --set; null removes a default; CPU-only HPA when the adapter is off", async (t) => {
  const bin = renderer(t);
  if (bin === undefined) return;
  const objects = await render(bin, {
    values: [{ replicaCount: 2, resources: { limits: { memory: "16Gi" } } }, { replicaCount: 3 }],
    set: ["resources.requests=null", "image.tag=1.2.3", "autoscaling.enabled=true", "autoscaling.queueDepth.enabled=false", "autoscaling.cpu.enabled=false", "autoscaling.queueDepth.enabled=true"],
  });
  validateAll(objects);
  const d = one<DeploymentObject>(objects, "Deployment");
  assert.deepEqual(server(d).resources, { limits: { memory: "16Gi" } });
  assert.equal(server(d).image, "graphserve:1.2.3");
  const hpa = one<K8sObject & { spec: { metrics: { type: string }[] } }>(objects, "HorizontalPodAutoscaler");
  assert.deepEqual(hpa.spec.metrics.map((m) => m.type), ["Pods"]);

  const cpuOnly = await render(bin, { set: ["autoscaling.enabled=true", "autoscaling.queueDepth.enabled=false", "replicaCount=4", "podDisruptionBudget.enabled=false"] });
  validateAll(cpuOnly);
  assert.deepEqual(one<K8sObject & { spec: { metrics: { type: string; resource?: { name: string } }[] } }>(cpuOnly, "HorizontalPodAutoscaler").spec.metrics.map((m) => [m.type, m.resource?.name]), [["Resource", "cpu"]]);
  assert.equal(cpuOnly.some((o) => o.object.kind === "PodDisruptionBudget"), false);
  const notes = await renderNotes(bin, { set: ["autoscaling.enabled=true", "autoscaling.queueDepth.enabled=false"] });
  assert.doesNotMatch(notes, /seriesQuery/);
});

test("an existing API-key Secret is mounted, not created; model mode reads one folder read-only", async (t) => {
  const bin = renderer(t);
  if (bin === undefined) return;
  const objects = await render(bin, { set: ["mode=model", "model.name=sd-turbo", "model.path=sd-turbo", "models.source=hostPath", "models.hostPath.path=/srv/models", "apiKey.existingSecret=team-key", "apiKey.secretKey=token", "apiKey.value=ignored"] });
  validateAll(objects);
  assert.equal(objects.some((o) => o.object.kind === "Secret"), false);
  const { deployment, container } = checkPod(objects);
  // The chart cannot see an existing Secret's content: no checksum; NOTES.txt says a rotation there needs a rollout restart.
  assert.equal(deployment.spec.template.metadata.annotations?.["checksum/api-key"], undefined);
  assert.match(await renderNotes(bin, { set: ["apiKey.existingSecret=team-key"] }), /kubectl rollout restart -n serving deployment\/rel-graphserve/);
  const volumes = deployment.spec.template.spec.volumes;
  assert.deepEqual(volumes.find((v) => v.name === "models"), { name: "models", hostPath: { path: "/srv/models", type: "Directory" } });
  assert.deepEqual(volumes.find((v) => v.secret !== undefined)?.secret?.items, [{ key: "token", path: "api-key" }]);
  const parsed = parseCliArgs(container.args ?? []);
  assert.deepEqual([parsed.values.model_name, parsed.values.model_path, parsed.values.api_key_file], ["sd-turbo", "/models/sd-turbo", "/etc/graphserve/api-key/api-key"]);
  // The key comes from the file only: an API_KEY inherited from elsewhere is blanked.
  assert.deepEqual(container.env?.find((e) => e.name === "API_KEY"), { name: "API_KEY", value: "" });
  // The same folder served by the real server (key file and model mapped).
  const modelsDir = mountDir("models");
  cpSync(ECHO_GRAPH_DIR, join(modelsDir, "sd-turbo"), { recursive: true });
  const keyDir = mountDir("key");
  writeFileSync(join(keyDir, "api-key"), "team-secret\n");
  const s = await startContainer(t, container, { "/models": modelsDir, "/etc/graphserve/api-key": keyDir, "/tmp": mountDir("tmp"), "/var/cache/graphserve": mountDir("cache") });
  await checkProbes(s.url, container);
  assert.equal((await call(s.url, "POST", "/v3/x", { json: { model: "sd-turbo" }, headers: { authorization: "Bearer team-secret" } })).status, 200);
  s.proc.kill("SIGTERM");
  assert.equal(await s.exit, 0, s.stderr());
});
