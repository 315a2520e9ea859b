/**
 * MediaPipe's graph validation (ValidatedGraphConfig and the calculator
 * contracts) over a parsed graph file, producing the ValidatedGraph the
 * scheduler runs. Like MediaPipe it collects every problem rather than
 * stopping at the first, and reuses MediaPipe's wording where it has one;
 * unlike MediaPipe each problem is located in the file.
 */
import { availableParallelism } from "node:os";
import type { CalculatorClass, CalculatorContract, NodeShape, PortSpec, PortSpecs } from "../engine/calculator.js";
import type { CalculatorRegistry } from "../engine/registry.js";
import type { GraphDocument, InputStreamHandlerConfig, NodeConfig, NodeOptionsEntry, OptionsMessage } from "./config.js";
import { formatDiagnostic, GraphError, type Diagnostic, type SourceLocation } from "./diagnostics.js";
import { buildPortList, parseTagIndex, type PortList } from "./names.js";
import { inputStreamHandlerNamed, inputStreamHandlerNames } from "../engine/stream-handlers/index.js";
import { executorType, executorTypeNames, WORKER_POOL_TYPE } from "../engine/executors/index.js";
import {
  WORKER_POOL_EXECUTOR,
  type Endpoint,
  type ExecutorSpec,
  type InputStreamHandlerSpec,
  type ValidatedGraph,
  type ValidatedNode,
} from "./validated.js";

const DEFAULT_MAX_QUEUE_SIZE = 100;

type Direction = "inputs" | "outputs" | "inputSidePackets" | "outputSidePackets";
const KIND: Record<Direction, string> = {
  inputs: "input stream",
  outputs: "output stream",
  inputSidePackets: "input side packet",
  outputSidePackets: "output side packet",
};
const DIRECTIONS = Object.keys(KIND) as Direction[];

/** A node as validation works on it, in file order. */
interface NodeDraft {
  readonly config: NodeConfig;
  readonly file: number;
  readonly name: string;
  readonly cls: CalculatorClass<unknown> | undefined;
  readonly lists: Record<Direction, PortList>;
  /** The config field each list came from (input side packets may come from the deprecated `external_input`). */
  readonly fields: Record<Direction, keyof NodeConfig>;
  backEdge: boolean[];
  options: OptionsMessage | undefined;
  executor: string;
  handler: InputStreamHandlerSpec;
}

interface Producer {
  /** File index of the producing node, or "graph". */
  readonly node: number | "graph";
  readonly port: number;
}

/**
 * Checks a parsed graph against MediaPipe's rules and the registered
 * calculators' contracts. Throws one GraphError listing every problem.
 */
export function validateGraph(doc: GraphDocument, registry: CalculatorRegistry): ValidatedGraph {
  const { config } = doc;
  const problems: Diagnostic[] = [];
  // Every problem gets a location (callers print file:line:col): the exact
  // entry when the document knows it, else the message, else the file start.
  const at = (message: object, field?: string, index?: number): SourceLocation =>
    doc.locate(message, field, index) ?? doc.locate(message) ?? doc.locate(config) ?? { file: doc.file, line: 1, column: 1 };
  const fail = (message: string, location: SourceLocation) => problems.push({ message, location });
  const failList = (list: PortList, owner: object, field: string) => {
    for (const e of list.errors) fail(e.message, at(owner, field, e.entry));
  };
  const entryAt = (n: NodeDraft, dir: Direction, port: number) => at(n.config, n.fields[dir], n.lists[dir].entryOf[port]);

  for (const field of ["packet_generator", "packet_factory", "status_handler"] as const) {
    config[field].forEach((_, i) => fail(`${field} is a legacy MediaPipe feature graphserve does not support; use a calculator instead.`, at(config, field, i)));
  }

  const executors = validateExecutors(doc, at, fail);

  const graphInputs = buildPortList(config.input_stream);
  const graphOutputs = buildPortList(config.output_stream);
  const graphSideInputs = buildPortList(config.input_side_packet);
  failList(graphInputs, config, "input_stream");
  failList(graphOutputs, config, "output_stream");
  failList(graphSideInputs, config, "input_side_packet");
  failList(buildPortList(config.output_side_packet), config, "output_side_packet");

  const names = canonicalNames(config.node);
  checkNodeNames(config.node, names, at, fail);

  // Per node: names, calculator, contract, stream info, options, handler, executor.
  const nodes: NodeDraft[] = config.node.map((node, file) => {
    const before = problems.length;
    const sideField: keyof NodeConfig = node.input_side_packet.length === 0 && node.external_input.length > 0 ? "external_input" : "input_side_packet";
    if (node.input_side_packet.length > 0 && node.external_input.length > 0) {
      fail("external_input is a deprecated alias of input_side_packet; give the side packets in input_side_packet only.", at(node, "external_input"));
    }
    const draft: NodeDraft = {
      config: node,
      file,
      name: names[file],
      cls: registry.get(node.calculator),
      lists: {
        inputs: buildPortList(node.input_stream),
        outputs: buildPortList(node.output_stream),
        inputSidePackets: buildPortList(sideField === "external_input" ? node.external_input : node.input_side_packet),
        outputSidePackets: buildPortList(node.output_side_packet),
      },
      fields: { inputs: "input_stream", outputs: "output_stream", inputSidePackets: sideField, outputSidePackets: "output_side_packet" },
      backEdge: [],
      options: undefined,
      executor: "",
      handler: { kind: "default" },
    };
    for (const dir of DIRECTIONS) failList(draft.lists[dir], node, draft.fields[dir]);
    if (!draft.cls) fail(`Unable to find Calculator "${node.calculator}"`, at(node, "calculator"));

    draft.backEdge = readStreamInfo(draft, at, fail);
    const contract = draft.cls?.contract;
    let optionsAt: SourceLocation | undefined;
    if (contract) {
      for (const dir of DIRECTIONS) checkPorts(draft, dir, contract[dir], entryAt, at, fail);
      const resolved = resolveOptions(draft, contract, doc.nodeOptions[file] ?? [], registry, at, fail);
      draft.options = resolved.options;
      optionsAt = resolved.location;
    }
    draft.handler = resolveHandler(draft, node.input_stream_handler || config.input_stream_handler || undefined, contract, at, fail);
    draft.executor = resolveExecutor(node, contract, executors.declared, at, fail);

    // The calculator's own checks assume a well-formed node, so they run last and only then.
    if (contract?.validate && problems.length === before) {
      const shape: NodeShape = {
        name: draft.name,
        options: draft.options,
        inputs: draft.lists.inputs.ports,
        outputs: draft.lists.outputs.ports,
        inputSidePackets: draft.lists.inputSidePackets.ports,
        outputSidePackets: draft.lists.outputSidePackets.ports,
      };
      let message: string | undefined;
      try {
        message = contract.validate(shape);
      } catch (e) {
        message = `contract.validate threw: ${e instanceof Error ? e.message : String(e)}`;
      }
      if (message) fail(`${node.calculator}: ${message}`, optionsAt ?? at(node, "calculator"));
    }
    return draft;
  });

  // Producers: graph inputs count as producers, and each name has exactly one.
  const streamProducer = new Map<string, Producer>();
  const sideProducer = new Map<string, Producer>();
  const define = (map: Map<string, Producer>, what: string, name: string, producer: Producer, location: SourceLocation) => {
    if (map.has(name)) fail(`${what} "${name}" defined twice.`, location);
    else map.set(name, producer);
  };
  graphInputs.ports.forEach((p, k) => define(streamProducer, "Output Stream", p.name, { node: "graph", port: k }, at(config, "input_stream", graphInputs.entryOf[k])));
  graphSideInputs.ports.forEach((p, k) =>
    define(sideProducer, "Output Side Packet", p.name, { node: "graph", port: k }, at(config, "input_side_packet", graphSideInputs.entryOf[k])),
  );
  for (const n of nodes) {
    n.lists.outputs.ports.forEach((p, k) => define(streamProducer, "Output Stream", p.name, { node: n.file, port: k }, entryAt(n, "outputs", k)));
    n.lists.outputSidePackets.ports.forEach((p, k) =>
      define(sideProducer, "Output Side Packet", p.name, { node: n.file, port: k }, entryAt(n, "outputSidePackets", k)),
    );
  }

  const order = sortNodes(nodes, streamProducer, sideProducer, entryAt, at, fail);
  const idOf = new Map(order.map((file, id) => [file, id]));

  // Packet type labels must agree where both ends of an edge declare one.
  const typesOf = (n: NodeDraft, dir: "inputs" | "inputSidePackets", k: number, producer: Producer): [string, string] | undefined => {
    if (producer.node === "graph") return undefined;
    const theirs = portType(nodes[producer.node], dir === "inputs" ? "outputs" : "outputSidePackets", producer.port);
    const ours = portType(n, dir, k);
    return theirs !== undefined && ours !== undefined && theirs !== ours ? [ours, theirs] : undefined;
  };
  for (const file of order) {
    const n = nodes[file];
    n.lists.inputs.ports.forEach((p, k) => {
      const producer = streamProducer.get(p.name);
      const types = producer && typesOf(n, "inputs", k, producer);
      if (!producer) {
        fail(
          `Input Stream "${p.name}" for node with sorted index ${idOf.get(file)} name ${n.name} does not have a corresponding output stream.`,
          entryAt(n, "inputs", k),
        );
      } else if (types) {
        fail(
          `Input stream "${p.name}" of calculator "${n.name}" expects packets of type "${types[0]}" but the connected output stream will contain packets of type "${types[1]}"`,
          entryAt(n, "inputs", k),
        );
      }
    });
    n.lists.inputSidePackets.ports.forEach((p, k) => {
      const producer = sideProducer.get(p.name);
      const types = producer && typesOf(n, "inputSidePackets", k, producer);
      if (types) {
        fail(
          `Input side packet "${p.name}" of Calculator "${n.name}" expected a packet of type "${types[0]}" but the connected output side packet will be of type "${types[1]}"`,
          entryAt(n, "inputSidePackets", k),
        );
      }
    });
  }
  graphOutputs.ports.forEach((p, k) => {
    if (!streamProducer.has(p.name)) {
      fail(`Graph output stream "${p.name}" is not produced by any node or graph input stream.`, at(config, "output_stream", graphOutputs.entryOf[k]));
    }
  });

  if (problems.length > 0) {
    // Reading order; the sort is stable, so problems at one place keep the order they were found in.
    problems.sort((a, b) => a.location!.line - b.location!.line || a.location!.column - b.location!.column);
    // A graph-level setting wrong for every node is one problem, not one per node.
    const unique = [...new Map(problems.map((d) => [formatDiagnostic(d), d])).values()];
    throw new GraphError(unique, "ValidatedGraphConfig Initialization failed.");
  }

  // Everything resolved: assemble the graph in topological order.
  const endpoint = (p: Producer): Endpoint | "graph" => (p.node === "graph" ? "graph" : { node: idOf.get(p.node)!, port: p.port });
  const graphOutputNames = new Set(graphOutputs.ports.map((p) => p.name));
  const streams = new Map<string, { name: string; producer: Endpoint | "graph"; consumers: Endpoint[]; graphOutput: boolean }>();
  const sidePackets = new Map<string, { name: string; producer: Endpoint | "graph"; consumers: Endpoint[] }>();
  for (const p of graphInputs.ports) streams.set(p.name, { name: p.name, producer: "graph", consumers: [], graphOutput: graphOutputNames.has(p.name) });
  for (const p of graphSideInputs.ports) sidePackets.set(p.name, { name: p.name, producer: "graph", consumers: [] });
  for (const file of order) {
    const n = nodes[file];
    for (const p of n.lists.outputs.ports) {
      streams.set(p.name, { name: p.name, producer: endpoint(streamProducer.get(p.name)!), consumers: [], graphOutput: graphOutputNames.has(p.name) });
    }
    for (const p of n.lists.outputSidePackets.ports) sidePackets.set(p.name, { name: p.name, producer: endpoint(sideProducer.get(p.name)!), consumers: [] });
  }
  const requiredSidePackets: string[] = [];
  const validatedNodes: ValidatedNode[] = order.map((file, id) => {
    const n = nodes[file];
    n.lists.inputs.ports.forEach((p, port) => streams.get(p.name)!.consumers.push({ node: id, port }));
    const cls = n.cls!;
    n.lists.inputSidePackets.ports.forEach((p, port) => {
      let info = sidePackets.get(p.name);
      if (!info) sidePackets.set(p.name, (info = { name: p.name, producer: "graph", consumers: [] }));
      info.consumers.push({ node: id, port });
      // Made by no node: the host supplies it when a run starts, and must
      // when some port needs it (an optional one left out reads as undefined).
      const optional = specOf(cls.contract.inputSidePackets, p.tag)?.optional === true;
      if (info.producer === "graph" && !optional && !requiredSidePackets.includes(p.name)) requiredSidePackets.push(p.name);
    });
    return {
      id,
      name: n.name,
      calculatorName: n.config.calculator,
      calculator: cls,
      moduleUrl: registry.moduleUrlOf(n.config.calculator),
      inputs: n.lists.inputs.ports,
      outputs: n.lists.outputs.ports,
      inputSidePackets: n.lists.inputSidePackets.ports,
      outputSidePackets: n.lists.outputSidePackets.ports,
      backEdge: n.backEdge,
      options: n.options,
      executor: n.executor,
      inputStreamHandler: n.handler,
      maxInFlight: n.config.max_in_flight > 0 ? n.config.max_in_flight : 1,
      sourceLayer: n.config.source_layer,
      timestampOffset: cls.contract.timestampOffset,
      location: doc.locate(n.config),
    };
  });

  const queue = config.max_queue_size;
  return {
    document: doc,
    nodes: validatedNodes,
    inputStreams: graphInputs.ports,
    outputStreams: graphOutputs.ports,
    requiredSidePackets,
    streams,
    sidePackets,
    executors: executors.specs,
    maxQueueSize: queue === 0 ? DEFAULT_MAX_QUEUE_SIZE : queue < 0 ? -1 : queue,
    reportDeadlock: config.report_deadlock,
    graphQueueSize: graphQueueSize(doc),
    schemaFiles: [...registry.schema.files],
  };
}

type Locate = (message: object, field?: string, index?: number) => SourceLocation;
type Fail = (message: string, location: SourceLocation) => void;

/** OVMS's graph queue: AUTO is one instance per core, N is capped at the core count. */
function graphQueueSize(doc: GraphDocument): number | undefined {
  if (process.env.OVMS_GRAPH_QUEUE_OFF === "1") return undefined;
  const size = doc.directives.graphQueueMaxSize;
  if (size === "AUTO") return availableParallelism();
  return typeof size === "number" && size > 0 ? Math.min(size, availableParallelism()) : undefined;
}

const isReservedExecutor = (name: string) => name === "default" || name === "gpu" || name.startsWith("__");

/**
 * Declared executors, plus the two the engine always has: "" (the main
 * thread) and the worker pool. The default stays on the main thread even if
 * an ExecutorConfig for "" names a thread pool: calculators that did not opt
 * into workers may not be safe there.
 */
function validateExecutors(doc: GraphDocument, at: Locate, fail: Fail): { specs: Map<string, ExecutorSpec>; declared: Set<string> } {
  const { config } = doc;
  const specs = new Map<string, ExecutorSpec>();
  for (const ex of config.executor) {
    if (isReservedExecutor(ex.name)) {
      fail(`"${ex.name}" is a reserved executor name.`, at(ex, "name"));
      continue;
    }
    if (specs.has(ex.name)) {
      fail(ex.name === "" ? "ExecutorConfig for the default executor is duplicate." : `ExecutorConfig for "${ex.name}" is duplicate.`, at(ex, "name"));
      continue;
    }
    const type = ex.type === "" ? undefined : executorType(ex.type);
    if (ex.type !== "" && type === undefined) {
      const known = executorTypeNames().map((t) => `"${t}"`);
      fail(`Executor type "${ex.type}" is not supported: use ${known.join(" or ")} (a worker pool) or leave the type empty.`, at(ex, "type"));
    }
    const ext = type?.optionsExtension;
    const { numThreads } = type?.configure(ext === undefined ? undefined : (ex.options?.[ext] as Record<string, unknown> | undefined)) ?? { numThreads: undefined };
    specs.set(ex.name, { name: ex.name, type: ex.name === "" || type === undefined ? "" : ex.type, numThreads });
  }
  if (config.num_threads && specs.has("")) {
    fail("ExecutorConfig for the default executor and the graph-level num_threads field should not both be specified.", at(config, "num_threads"));
  }
  const declared = new Set(specs.keys());
  if (!specs.has("")) specs.set("", { name: "", type: "", numThreads: config.num_threads > 0 ? config.num_threads : undefined });
  specs.set(WORKER_POOL_EXECUTOR, { name: WORKER_POOL_EXECUTOR, type: WORKER_POOL_TYPE, numThreads: undefined });
  return { specs, declared };
}

/** MediaPipe's CanonicalNodeName: the name, or the calculator; `_1`, `_2` … on every one of a repeated name. */
function canonicalNames(nodes: readonly NodeConfig[]): string[] {
  const base = nodes.map((n) => n.name || n.calculator);
  const total = new Map<string, number>();
  for (const b of base) total.set(b, (total.get(b) ?? 0) + 1);
  const seen = new Map<string, number>();
  return base.map((b) => {
    const k = (seen.get(b) ?? 0) + 1;
    seen.set(b, k);
    return total.get(b)! > 1 ? `${b}_${k}` : b;
  });
}

/** Explicit names must be unique, and so must the canonical ones (an explicit "X_1" may clash with a generated one). */
function checkNodeNames(nodes: readonly NodeConfig[], canonical: readonly string[], at: Locate, fail: Fail): void {
  const explicit = new Set<string>();
  const used = new Set<string>();
  nodes.forEach((n, i) => {
    const clash = (n.name !== "" && explicit.has(n.name)) || used.has(canonical[i]);
    if (clash) {
      const name = n.name || canonical[i];
      fail(
        `Node name "${name}" is used by more than one node; give each node a distinct name (unnamed nodes are named after their calculator, with _1, _2 … when repeated).`,
        at(n, n.name ? "name" : "calculator"),
      );
    }
    if (n.name) explicit.add(n.name);
    used.add(canonical[i]);
  });
}

/** The back-edge flag per flat input, checking every InputStreamInfo names one input, once. */
function readStreamInfo(n: NodeDraft, at: Locate, fail: Fail): boolean[] {
  const inputs = n.lists.inputs.ports;
  const backEdge = inputs.map(() => false);
  const used = new Set<number>();
  for (const info of n.config.input_stream_info) {
    let ref: { tag: string; index: number };
    try {
      ref = parseTagIndex(info.tag_index);
    } catch (e) {
      fail((e as Error).message, at(info, "tag_index"));
      continue;
    }
    const flat = inputs.findIndex((p) => p.tag === ref.tag && p.index === ref.index);
    if (flat < 0) {
      fail(`Input stream with tag_index "${info.tag_index}" requested in InputStreamInfo but is not an input stream of the calculator.`, at(info, "tag_index"));
    } else if (used.has(flat)) {
      fail(`Input stream with tag_index "${info.tag_index}" has more than one InputStreamInfo.`, at(info, "tag_index"));
    } else {
      used.add(flat);
      backEdge[flat] = info.back_edge;
    }
  }
  return backEdge;
}

const specOf = (specs: PortSpecs | undefined, tag: string): PortSpec | undefined =>
  specs === undefined || specs === "any" || !Object.hasOwn(specs, tag) ? undefined : specs[tag];

/** The packet type label the node's calculator declares for a port, if any. */
function portType(n: NodeDraft, dir: Direction, port: number): string | undefined {
  return specOf(n.cls?.contract[dir], n.lists[dir].ports[port].tag)?.type;
}

const tagWords = (tag: string) => (tag === "" ? "untagged" : `tagged "${tag}"`);

/** Tags the calculator knows, required ones present, indexes > 0 only on `multiple` tags. */
function checkPorts(
  n: NodeDraft,
  dir: Direction,
  specs: PortSpecs | undefined,
  entryAt: (n: NodeDraft, dir: Direction, port: number) => SourceLocation,
  at: Locate,
  fail: Fail,
): void {
  if (specs === "any") return;
  const declared = specs ?? {};
  const kind = KIND[dir];
  const calc = n.config.calculator;
  const reported = new Set<string>();
  n.lists[dir].ports.forEach((p, k) => {
    if (reported.has(p.tag)) return;
    const spec = specOf(declared, p.tag);
    if (!spec) {
      reported.add(p.tag);
      const known = Object.keys(declared).map((t) => (t === "" ? "untagged" : `"${t}"`));
      const takes = known.length ? `its ${kind}s are: ${known.join(", ")}` : `it takes no ${kind}s`;
      fail(`Calculator "${calc}" has no ${kind} ${tagWords(p.tag)}; ${takes}.`, entryAt(n, dir, k));
    } else if (p.index > 0 && !spec.multiple) {
      reported.add(p.tag);
      const count = n.lists[dir].ports.filter((q) => q.tag === p.tag).length;
      fail(`Calculator "${calc}" takes only one ${kind} ${tagWords(p.tag)}, but node "${n.name}" gives ${count}.`, entryAt(n, dir, k));
    }
  });
  for (const [tag, spec] of Object.entries(declared)) {
    if (!spec.optional && !n.lists[dir].ports.some((p) => p.tag === tag)) {
      fail(`Calculator "${calc}" requires an ${kind} ${tagWords(tag)}, but node "${n.name}" has none.`, at(n.config, "calculator"));
    }
  }
}

/**
 * The node's options of the contract's type: `options { [X.ext] }` wins over
 * `node_options { [type.googleapis.com/X] }`, defaults when neither is given.
 * Known payloads of other types are errors; unknown ones are ignored (the
 * parser warned) unless they are the type this calculator needs.
 */
function resolveOptions(
  n: NodeDraft,
  contract: CalculatorContract,
  entries: readonly NodeOptionsEntry[],
  registry: CalculatorRegistry,
  at: Locate,
  fail: Fail,
): { options: OptionsMessage | undefined; location: SourceLocation | undefined } {
  const calc = n.config.calculator;
  const wanted = contract.options?.replace(/^\./, "");
  const given: NodeOptionsEntry[] = [];
  const anyTypes = new Set<string>();
  let unknownWanted = false;
  for (const e of entries) {
    if (e.via === "node_options") {
      if (anyTypes.has(e.typeName)) {
        fail(`Options type: '${e.typeName}' specified more than once for a single calculator node config.`, e.location);
        continue;
      }
      anyTypes.add(e.typeName);
    }
    if (e.typeName === wanted) {
      if (e.message) given.push(e);
      else {
        unknownWanted = true;
        fail(
          `Calculator "${calc}" needs options of type '${wanted}', but that options type '${e.typeName}' is not known to this server; load its .proto file (put it in the --calculators_dir folder) so the options can be read.`,
          e.location,
        );
      }
    } else if (e.message) {
      const takes = wanted ? `takes options of type '${wanted}'` : "takes no options";
      fail(`Options of type '${e.typeName}' given to node "${n.name}", but calculator "${calc}" ${takes}.`, e.location);
    }
  }
  if (!wanted) return { options: undefined, location: undefined };
  const type = registry.schema.findType(wanted);
  if (!type) {
    // An unknown payload of this type was reported already, with the fix.
    if (!unknownWanted) fail(`Calculator "${calc}" declares options type '${wanted}', but no loaded .proto file defines it.`, at(n.config, "calculator"));
    return { options: undefined, location: undefined };
  }
  const chosen = given.find((e) => e.via === "options") ?? given[0];
  if (!chosen && contract.optionsRequired && !unknownWanted) {
    fail(`Calculator "${calc}" requires options of type '${wanted}', but node "${n.name}" gives none.`, at(n.config, "calculator"));
  }
  return { options: chosen?.message ?? (type.create() as unknown as OptionsMessage), location: chosen?.location };
}

/**
 * The handler the graph gives the node (its own, else the graph-wide default,
 * which MediaPipe copies into every node that sets none); only when the graph
 * names none, the one the calculator's contract asks for (MediaPipe's
 * SetInputStreamHandler); else the default. The registered handler checks
 * its options (read only when the config names that handler).
 */
function resolveHandler(
  n: NodeDraft,
  config: InputStreamHandlerConfig | undefined,
  contract: CalculatorContract | undefined,
  at: Locate,
  fail: Fail,
): InputStreamHandlerSpec {
  const name = config ? config.input_stream_handler || "DefaultInputStreamHandler" : (contract?.inputStreamHandler ?? "DefaultInputStreamHandler");
  const location = config ? at(config, "input_stream_handler") : at(n.config);
  const type = inputStreamHandlerNamed(name);
  if (type === undefined) {
    fail(`Input stream handler "${name}" is not supported; use one of ${inputStreamHandlerNames().join(", ")}.`, location);
    return { kind: "default" };
  }
  const ext = type.optionsExtension;
  const options = ext !== undefined && config?.input_stream_handler === name ? (config.options?.[ext] as Record<string, unknown> | undefined) : undefined;
  return type.configure({ nodeName: n.name, inputs: n.lists.inputs.ports, options, at, fail, location });
}

/** The node's executor, else the worker pool when its calculator prefers workers, else the main thread. */
function resolveExecutor(node: NodeConfig, contract: CalculatorContract | undefined, declared: ReadonlySet<string>, at: Locate, fail: Fail): string {
  if (node.executor === "") return contract?.executor === "worker" ? WORKER_POOL_EXECUTOR : "";
  if (isReservedExecutor(node.executor)) fail(`"${node.executor}" is a reserved executor name.`, at(node, "executor"));
  else if (!declared.has(node.executor)) fail(`The executor "${node.executor}" is not declared in an ExecutorConfig.`, at(node, "executor"));
  return node.executor;
}

/**
 * Topological order of the nodes (file indexes), ignoring back edges and
 * graph inputs; among ready nodes the earliest in the file goes first, so a
 * file already in order keeps it. A cycle is reported and its nodes are
 * appended in file order, so later messages still have an index to show.
 */
function sortNodes(
  nodes: readonly NodeDraft[],
  streamProducer: ReadonlyMap<string, Producer>,
  sideProducer: ReadonlyMap<string, Producer>,
  entryAt: (n: NodeDraft, dir: Direction, port: number) => SourceLocation,
  at: Locate,
  fail: Fail,
): number[] {
  // Incoming edges per node: [producer node, direction, consuming port].
  const incoming: [number, Direction, number][][] = nodes.map((n) => {
    const edges: [number, Direction, number][] = [];
    n.lists.inputs.ports.forEach((p, k) => {
      const producer = streamProducer.get(p.name);
      if (producer && producer.node !== "graph" && !n.backEdge[k]) edges.push([producer.node, "inputs", k]);
    });
    n.lists.inputSidePackets.ports.forEach((p, k) => {
      const producer = sideProducer.get(p.name);
      if (producer && producer.node !== "graph") edges.push([producer.node, "inputSidePackets", k]);
    });
    return edges;
  });
  const pending = incoming.map((edges) => edges.length);
  const consumers: number[][] = nodes.map(() => []);
  incoming.forEach((edges, c) => edges.forEach(([p]) => consumers[p].push(c)));

  const ready = nodes.filter((_, i) => pending[i] === 0).map((n) => n.file);
  const order: number[] = [];
  while (ready.length > 0) {
    // Graphs are small: a linear scan for the earliest ready node is plenty.
    let best = 0;
    for (let i = 1; i < ready.length; i++) if (ready[i] < ready[best]) best = i;
    const next = ready.splice(best, 1)[0];
    order.push(next);
    for (const c of consumers[next]) if (--pending[c] === 0) ready.push(c);
  }
  if (order.length === nodes.length) return order;

  // Walk backwards through unsorted producers until a node repeats: that loop is a cycle.
  const left = new Set(nodes.map((n) => n.file).filter((i) => pending[i] > 0));
  const path: number[] = [];
  const seen = new Map<number, number>();
  let cur = Math.min(...left);
  while (!seen.has(cur)) {
    seen.set(cur, path.length);
    path.push(cur);
    cur = Math.min(...incoming[cur].map(([p]) => p).filter((p) => left.has(p)));
  }
  const cycle = path.slice(seen.get(cur)).reverse();
  const start = cycle.indexOf(Math.min(...cycle));
  const ordered = [...cycle.slice(start), ...cycle.slice(0, start)];
  // Point at the input of the first node that closes the loop.
  const first = nodes[ordered[0]];
  const last = ordered[ordered.length - 1];
  const edge = incoming[first.file].find(([p]) => p === last);
  fail(
    `Generator side packet cycle or calculator stream cycle detected in graph: [${ordered.map((i) => nodes[i].name).join(", ")}]`,
    edge ? entryAt(first, edge[1], edge[2]) : at(first.config),
  );
  return [...order, ...[...left].sort((a, b) => a - b)];
}
