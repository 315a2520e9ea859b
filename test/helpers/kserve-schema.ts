/**
 * JSON Schemas (draft-07, for ajv) of the KServe objects deploy/kserve/
 * uses: serving.kserve.io/v1alpha1 ServingRuntime and v1beta1
 * InferenceService. KServe's CRD files cannot be fetched here, so these are
 * written from its API types (field names, types, enums, bounds): each level
 * lists its fields and refuses unknown ones, so a misspelt field fails.
 * Embedded core types (Container, Volume) are validated separately against
 * kubernetes-models' schemas; here they are only objects.
 */
const stringMap = { type: "object", additionalProperties: { type: "string" } } as const;
const object = { type: "object" } as const;
const objects = { type: "array", items: { type: "object" } } as const;
/** KServe's InferenceServiceProtocol values. */
const protocol = { type: "string", enum: ["v1", "v2", "grpc-v1", "grpc-v2"] } as const;

/** metav1.ObjectMeta as written in a manifest: a name, or a generateName prefix the API server completes. */
const metadata = (namePattern: string) =>
  ({
    type: "object",
    anyOf: [
      { required: ["name"], properties: { name: true } },
      { required: ["generateName"], properties: { generateName: true } },
    ],
    properties: {
      name: { type: "string", pattern: namePattern, maxLength: 63 },
      generateName: { type: "string", pattern: "^[a-z]([-a-z0-9]*)?$", maxLength: 58 },
      namespace: { type: "string" },
      labels: stringMap,
      annotations: stringMap,
      finalizers: { type: "array", items: { type: "string" } },
      ownerReferences: objects,
      uid: { type: "string" },
      resourceVersion: { type: "string" },
      generation: { type: "integer" },
      creationTimestamp: { type: ["string", "null"] },
      deletionTimestamp: { type: "string" },
      deletionGracePeriodSeconds: { type: "integer" },
      managedFields: objects,
    },
    additionalProperties: false,
  }) as const;

/** core/v1 PodSpec fields a ServingRuntime or predictor may carry (ServingRuntimePodSpec is a subset). */
const RUNTIME_POD_FIELDS = {
  containers: { type: "array", minItems: 1, items: { type: "object", required: ["name"], properties: { name: { type: "string", minLength: 1 } } } },
  volumes: objects,
  nodeSelector: stringMap,
  affinity: object,
  tolerations: objects,
  labels: stringMap,
  annotations: stringMap,
  imagePullSecrets: { type: "array", items: { type: "object", required: ["name"], properties: { name: { type: "string" } }, additionalProperties: false } },
  hostIPC: { type: "boolean" },
} as const;

export const SERVING_RUNTIME_SCHEMA = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  additionalProperties: false,
  properties: {
    apiVersion: { type: "string", const: "serving.kserve.io/v1alpha1" },
    kind: { type: "string", const: "ServingRuntime" },
    metadata: metadata("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
    spec: {
      type: "object",
      required: ["containers"],
      additionalProperties: false,
      properties: {
        supportedModelFormats: {
          type: "array",
          items: {
            type: "object",
            required: ["name"],
            additionalProperties: false,
            properties: {
              name: { type: "string", minLength: 1 },
              // "major", "major.minor" or "major.minor.patch".
              version: { type: "string", pattern: "^\\d+(\\.\\d+){0,2}$" },
              autoSelect: { type: "boolean" },
              priority: { type: "integer", minimum: 1, maximum: 2147483647 },
            },
          },
        },
        multiModel: { type: "boolean" },
        disabled: { type: "boolean" },
        protocolVersions: { type: "array", items: protocol, uniqueItems: true },
        workerSpec: object,
        ...RUNTIME_POD_FIELDS,
        // The single-model serving container KServe merges the predictor into.
        containers: { ...RUNTIME_POD_FIELDS.containers, contains: { type: "object", properties: { name: { type: "string", const: "kserve-container" } }, required: ["name"] } },
        grpcEndpoint: { type: "string" },
        grpcDataEndpoint: { type: "string" },
        httpDataEndpoint: { type: "string" },
        replicas: { type: "integer", minimum: 0, maximum: 65535 },
        storageHelper: { type: "object", properties: { disabled: { type: "boolean" } }, additionalProperties: false },
        builtInAdapter: {
          type: "object",
          additionalProperties: false,
          properties: {
            serverType: { type: "string" },
            runtimeManagementPort: { type: "integer" },
            memBufferBytes: { type: "integer" },
            modelLoadingTimeoutMillis: { type: "integer" },
            env: objects,
          },
        },
      },
    },
  },
} as const;

/** core/v1 Container fields, inlined in ModelSpec (types checked by kubernetes-models). */
const CONTAINER_FIELDS = Object.fromEntries(
  ["name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty"].map((f) => [f, {}]),
);

/** core/v1 PodSpec fields a predictor may set (KServe's PodSpec mirrors it). */
const POD_FIELDS = Object.fromEntries(
  ["volumes", "initContainers", "containers", "restartPolicy", "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations", "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates", "resourceClaims"].map((f) => [f, {}]),
);

/** Predictor implementations besides `model` (each a framework spec object). */
const FRAMEWORKS = Object.fromEntries(["sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml", "lightgbm", "paddle"].map((f) => [f, object]));

export const INFERENCE_SERVICE_SCHEMA = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  additionalProperties: false,
  properties: {
    apiVersion: { type: "string", const: "serving.kserve.io/v1beta1" },
    kind: { type: "string", const: "InferenceService" },
    // KServe: lower case alphanumerics or '-', starting with a letter.
    metadata: metadata("^[a-z]([-a-z0-9]*[a-z0-9])?$"),
    spec: {
      type: "object",
      required: ["predictor"],
      additionalProperties: false,
      properties: {
        predictor: {
          type: "object",
          additionalProperties: false,
          properties: {
            // ComponentExtensionSpec
            minReplicas: { type: "integer", minimum: 0 },
            maxReplicas: { type: "integer", minimum: 0 },
            scaleTarget: { type: "integer", minimum: 1 },
            scaleMetric: { type: "string", enum: ["cpu", "memory", "concurrency", "rps"] },
            containerConcurrency: { type: "integer", minimum: 0 },
            timeout: { type: "integer", minimum: 1 },
            canaryTrafficPercent: { type: "integer", minimum: 0, maximum: 100 },
            logger: { type: "object", properties: { mode: { type: "string", enum: ["all", "request", "response"] }, url: { type: "string" } } },
            batcher: object,
            labels: stringMap,
            annotations: stringMap,
            deploymentStrategy: object,
            scaleMetricType: { type: "string", enum: ["Utilization", "Value", "AverageValue"] },
            // HPA or KEDA metrics (metrics, behavior, keda); checked as an object.
            autoScaling: {
              type: "object",
              additionalProperties: false,
              properties: { metrics: objects, behavior: object, keda: object },
            },
            // PredictorSpec: multi-node serving (a PodSpec plus parallel sizes).
            workerSpec: object,
            ...POD_FIELDS,
            ...FRAMEWORKS,
            model: {
              type: "object",
              required: ["modelFormat"],
              additionalProperties: false,
              properties: {
                modelFormat: {
                  type: "object",
                  required: ["name"],
                  additionalProperties: false,
                  properties: { name: { type: "string", minLength: 1 }, version: { type: "string", pattern: "^\\d+(\\.\\d+){0,2}$" } },
                },
                runtime: { type: "string", minLength: 1 },
                // PredictorExtensionSpec
                // One of KServe's storage prefixes, or a local path (absolute or relative): no other scheme.
                storageUri: { type: "string", minLength: 1, pattern: "^((gs|s3|hdfs|webhdfs|pvc|hf|oci|file|https?)://.+|(?![A-Za-z][A-Za-z0-9+.-]*://).+)$" },
                runtimeVersion: { type: "string" },
                protocolVersion: protocol,
                storage: object,
                ...CONTAINER_FIELDS,
              },
            },
          },
        },
        transformer: object,
        explainer: object,
      },
    },
  },
} as const;
