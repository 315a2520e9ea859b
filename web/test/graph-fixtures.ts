/**
 * GraphView fixtures for the graph view's unit tests, written compactly:
 * ports as MediaPipe's `TAG:index:name` strings, a leading "!" marking a back edge.
 */
import type { GraphView, InputPortView, PortView } from "../../src/server/graph-view-types.js";

export function port(spec: string): PortView {
  const parts = spec.split(":");
  if (parts.length === 1) return { tag: "", index: 0, name: parts[0]! };
  if (parts.length === 2) return { tag: parts[0]!, index: 0, name: parts[1]! };
  return { tag: parts[0]!, index: Number(parts[1]), name: parts[2]! };
}

export interface NodeSpec {
  readonly name: string;
  readonly calculator: string;
  readonly executor?: string;
  readonly in?: readonly string[];
  readonly out?: readonly string[];
  readonly sideIn?: readonly string[];
  readonly sideOut?: readonly string[];
  readonly options?: Readonly<Record<string, unknown>>;
}

export function graph(spec: {
  readonly name?: string;
  readonly in?: readonly string[];
  readonly out?: readonly string[];
  readonly host?: readonly string[];
  readonly nodes: readonly NodeSpec[];
}): GraphView {
  const producer = new Map<string, number>();
  const sideProducer = new Map<string, number>();
  spec.nodes.forEach((n, id) => {
    for (const s of n.out ?? []) producer.set(port(s).name, id);
    for (const s of n.sideOut ?? []) sideProducer.set(port(s).name, id);
  });
  const input = (s: string, from: Map<string, number>): InputPortView => {
    const p = port(s.replace(/^!/, ""));
    return { ...p, producer: from.get(p.name) ?? "graph", backEdge: s.startsWith("!") };
  };
  return {
    name: spec.name ?? "test",
    state: "AVAILABLE",
    pbtxt: "",
    inputStreams: (spec.in ?? []).map(port),
    outputStreams: (spec.out ?? []).map(port),
    hostSidePackets: spec.host ?? [],
    executors: [{ name: "", type: "", numThreads: null }],
    nodes: spec.nodes.map((n, id) => ({
      id,
      name: n.name,
      calculator: n.calculator,
      executor: n.executor ?? "",
      inputStreamHandler: "default",
      inputs: (n.in ?? []).map((s) => input(s, producer)),
      outputs: (n.out ?? []).map(port),
      inputSidePackets: (n.sideIn ?? []).map((s) => input(s, sideProducer)),
      outputSidePackets: (n.sideOut ?? []).map(port),
      optionsType: n.options === undefined ? null : "mediapipe.TestOptions",
      options: n.options ?? null,
    })),
  };
}

/** graphs/image-generation-pipeline, with the encoder on a worker executor. */
export const pipeline = graph({
  name: "image-gen/pipeline",
  in: ["HTTP_REQUEST_PAYLOAD:input"],
  out: ["HTTP_RESPONSE_PAYLOAD:output"],
  host: ["pipes"],
  nodes: [
    { name: "RequestParts", calculator: "HttpInputCalculator", in: ["HTTP_REQUEST_PAYLOAD:input"], out: ["URI:uri", "JSON:json", "FIELDS:fields", "FILES:files"] },
    {
      name: "ImageGenExecutor",
      calculator: "ImageGenCalculator",
      in: ["URI:uri", "JSON:json", "FIELDS:fields", "FILES:files"],
      sideIn: ["IMAGE_GEN_NODE_RESOURCES:pipes"],
      out: ["IMAGES:images"],
      options: { models_path: "./", device: "CPU" },
    },
    { name: "Encoder", calculator: "Base64EncoderCalculator", executor: "__workers", in: ["IMAGES:images"], out: ["HTTP_RESPONSE_PAYLOAD:output"] },
  ],
});

/** graphs/flow-limited-echo: FINISHED is a back edge from the guarded section's output. */
export const flowLimited = graph({
  name: "flow-limited-echo",
  in: ["in"],
  out: ["out", "allowed"],
  nodes: [
    { name: "FlowLimiterCalculator", calculator: "FlowLimiterCalculator", in: ["in", "!FINISHED:out"], out: ["gated", "ALLOW:allowed"] },
    { name: "PassThroughCalculator", calculator: "PassThroughCalculator", in: ["gated"], out: ["out"] },
  ],
});
