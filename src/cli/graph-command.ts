/**
 * `graphserve graph check FILE…` and `graphserve graph dot FILE`: load graph
 * files exactly as the server would and show what they resolve to.
 */
import { basename, dirname } from "node:path";
import protobuf from "protobufjs";
import type { Port } from "../engine/calculator.js";
import { CalculatorRegistry } from "../engine/registry.js";
import { formatDiagnostic, GraphError } from "../graph/diagnostics.js";
import { graphToDot } from "../graph/dot.js";
import { loadGraphFile } from "../graph/load.js";
import { validateGraph } from "../graph/validate.js";
import type { ValidatedGraph } from "../graph/validated.js";

export interface GraphCommandIo {
  out(line: string): void;
  err(line: string): void;
}

/** The registry, or undefined once the reason it cannot be built (a bad --calculators_dir) is printed. */
async function registryFor(calculatorsDir: string | undefined, io: GraphCommandIo): Promise<CalculatorRegistry | undefined> {
  const registry = await CalculatorRegistry.withBuiltins();
  try {
    if (calculatorsDir) await registry.loadDirectory(calculatorsDir);
  } catch (e) {
    io.err(`graphserve: --calculators_dir: ${(e as Error).message}`);
    return undefined;
  }
  return registry;
}

async function loadValidated(file: string, registry: CalculatorRegistry): Promise<ValidatedGraph> {
  const doc = await loadGraphFile(file, registry.schema);
  return validateGraph(doc, registry);
}

/** Returns the process exit code: 0 when every file is valid, 1 otherwise. */
export async function graphCheck(files: readonly string[], calculatorsDir: string | undefined, io: GraphCommandIo): Promise<number> {
  const registry = await registryFor(calculatorsDir, io);
  if (registry === undefined) return 1;
  let failed = 0;
  for (const file of files) {
    try {
      const graph = await loadValidated(file, registry);
      for (const line of describeGraph(graph)) io.out(line);
    } catch (e) {
      failed++;
      if (e instanceof GraphError) for (const d of e.diagnostics) io.err(formatDiagnostic(d));
      else io.err(`${file}: ${(e as Error).message}`);
    }
  }
  return failed === 0 ? 0 : 1;
}

export async function graphDot(file: string, calculatorsDir: string | undefined, io: GraphCommandIo): Promise<number> {
  const registry = await registryFor(calculatorsDir, io);
  if (registry === undefined) return 1;
  try {
    const graph = await loadValidated(file, registry);
    io.out(graphToDot(graph, basename(dirname(file)) || basename(file)).trimEnd());
    return 0;
  } catch (e) {
    if (e instanceof GraphError) for (const d of e.diagnostics) io.err(formatDiagnostic(d));
    else io.err(`${file}: ${(e as Error).message}`);
    return 1;
  }
}

const show = (p: Port) => `${p.tag === "" ? "" : `${p.tag}:`}${p.index}:${p.name}`;

/** A human-readable account of a validated graph, one line per fact. */
export function describeGraph(graph: ValidatedGraph): string[] {
  const doc = graph.document;
  const lines = [`${doc.file}: OK, ${graph.nodes.length} node${graph.nodes.length === 1 ? "" : "s"}`];
  const queue = doc.directives.graphQueueMaxSize;
  lines.push(`  graph queue: ${queue === undefined ? "off (a graph per request)" : `${queue} -> ${graph.graphQueueSize ?? "off"} instance(s)`}`);
  if (graph.inputStreams.length) lines.push(`  input_stream: ${graph.inputStreams.map(show).join(", ")}`);
  if (graph.outputStreams.length) lines.push(`  output_stream: ${graph.outputStreams.map(show).join(", ")}`);
  if (graph.requiredSidePackets.length) lines.push(`  side packets from the server: ${graph.requiredSidePackets.join(", ")}`);
  for (const [name, ex] of graph.executors) {
    if (name === "" || name.startsWith("__")) continue;
    lines.push(`  executor "${name}": ${ex.type || "application-supplied"}${ex.numThreads ? `, ${ex.numThreads} threads` : ""}`);
  }
  for (const w of doc.warnings) lines.push(`  warning: ${formatDiagnostic(w)}`);
  for (const node of graph.nodes) {
    const executor = node.executor === "" ? "main thread" : node.executor;
    lines.push(`  node ${node.id} "${node.name}": ${node.calculatorName} [executor: ${executor}, handler: ${node.inputStreamHandler.kind}]`);
    node.inputs.forEach((p, i) => lines.push(`    input_stream ${show(p)}${node.backEdge[i] ? " (back edge)" : ""}`));
    for (const p of node.outputs) lines.push(`    output_stream ${show(p)}`);
    for (const p of node.inputSidePackets) lines.push(`    input_side_packet ${show(p)}`);
    for (const p of node.outputSidePackets) lines.push(`    output_side_packet ${show(p)}`);
    if (node.options) lines.push(`    options ${describeOptions(node.options)}`);
  }
  return lines;
}

/** The fields the graph set, as JSON, prefixed with the message type. */
function describeOptions(options: object): string {
  const message = options as protobuf.Message;
  const type = message.$type;
  if (!type) return JSON.stringify(options);
  const fields = type.toObject(message, { enums: String, longs: Number, bytes: String });
  return `${type.fullName.replace(/^\./, "")} ${JSON.stringify(fields)}`;
}
