/**
 * Validation of rendered objects: Kubernetes kinds against the official
 * OpenAPI schemas compiled into kubernetes-models, KServe kinds against the
 * schema of test/helpers/kserve-schema.ts (ajv) plus kubernetes-models for
 * the core types they embed (Container, Volume, Toleration...).
 */
import { Ajv, type ErrorObject } from "ajv";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Container, PersistentVolumeClaim, Secret, Service, Volume } from "kubernetes-models/v1";
import { INFERENCE_SERVICE_SCHEMA, SERVING_RUNTIME_SCHEMA } from "./kserve-schema.js";

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

const KINDS: Record<string, ModelClass> = {
  "apps/v1/Deployment": Deployment as ModelClass,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler as ModelClass,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget as ModelClass,
  "v1/ConfigMap": ConfigMap as ModelClass,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim as ModelClass,
  "v1/Secret": Secret as ModelClass,
  "v1/Service": Service as ModelClass,
};

interface Typed {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly metadata?: { readonly name?: unknown };
}

/** Throws with the schema's message when `obj` is not a valid Kubernetes object of a kind the chart may render. */
export function validateKubernetes(obj: Typed): void {
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  const Model = KINDS[key];
  if (Model === undefined) throw new Error(`unexpected kind ${key}`);
  if (typeof obj.metadata?.name !== "string" || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(obj.metadata.name) || obj.metadata.name.length > 63) {
    throw new Error(`${key}: metadata.name must be a DNS label, got ${JSON.stringify(obj.metadata?.name)}`);
  }
  try {
    new Model(obj as never).validate();
  } catch (e) {
    throw new Error(`${key} ${obj.metadata.name}: ${(e as Error).message}`);
  }
}

/** A core/v1 Container (kubernetes-models' schema). */
export function validateContainer(c: unknown, where: string): void {
  try {
    new Container(c as never).validate();
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

const ajv = new Ajv({ allErrors: true, strict: true });
const servingRuntime = ajv.compile(SERVING_RUNTIME_SCHEMA);
const inferenceService = ajv.compile(INFERENCE_SERVICE_SCHEMA);

const describe = (errors: ErrorObject[] | null | undefined) => (errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`).join("; ");

/** Throws unless `obj` is a valid ServingRuntime or InferenceService, embedded core types included. */
export function validateKServe(obj: Typed): void {
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  if (key === "serving.kserve.io/v1alpha1/ServingRuntime") {
    if (!servingRuntime(obj)) throw new Error(`ServingRuntime: ${describe(servingRuntime.errors)}`);
    const spec = (obj as { spec: { containers: unknown[]; volumes?: unknown[] } }).spec;
    spec.containers.forEach((c, i) => validateContainer(c, `spec.containers[${i}]`));
    (spec.volumes ?? []).forEach((v, i) => {
      try {
        new Volume(v as never).validate();
      } catch (e) {
        throw new Error(`spec.volumes[${i}]: ${(e as Error).message}`);
      }
    });
    return;
  }
  if (key === "serving.kserve.io/v1beta1/InferenceService") {
    if (!inferenceService(obj)) throw new Error(`InferenceService: ${describe(inferenceService.errors)}`);
    // The model spec inlines a core Container (name optional there: KServe names it kserve-container).
    const model = (obj as { spec: { predictor: { model?: Record<string, unknown> } } }).spec.predictor.model;
    if (model !== undefined) {
      const { modelFormat: _f, runtime: _r, protocolVersion: _p, storageUri: _s, runtimeVersion: _v, storage: _st, ...container } = model;
      validateContainer({ name: "kserve-container", ...container }, "spec.predictor.model");
    }
    return;
  }
  throw new Error(`not a KServe kind: ${key}`);
}
