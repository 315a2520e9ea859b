/**
 * Graphviz DOT of a validated graph: calculators as boxes, graph inputs and
 * outputs as their own nodes, streams as solid edges labelled with the
 * consumer's tag, side packets dotted, back edges dashed and left out of the
 * ranking so the layout stays a DAG.
 */
import type { Port } from "../engine/calculator.js";
import type { ValidatedGraph } from "./validated.js";

const quote = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
const portLabel = (p: Port) => (p.tag === "" ? `${p.index}` : p.index === 0 ? p.tag : `${p.tag}:${p.index}`);

export function graphToDot(graph: ValidatedGraph, title = "graph"): string {
  const out: string[] = [];
  out.push(`digraph ${quote(title)} {`);
  out.push("  rankdir=TB;");
  out.push('  node [fontname="Helvetica", fontsize=11];');
  out.push('  edge [fontname="Helvetica", fontsize=9];');

  const nodeId = (i: number) => `n${i}`;
  for (const node of graph.nodes) {
    const executor = node.executor === "" ? "" : `\nexecutor: ${node.executor}`;
    out.push(`  ${nodeId(node.id)} [shape=box, style=rounded, label=${quote(`${node.name}\n${node.calculatorName}${executor}`)}];`);
  }
  graph.inputStreams.forEach((p, i) => out.push(`  in${i} [shape=invhouse, label=${quote(`input: ${p.name}`)}];`));
  graph.outputStreams.forEach((p, i) => out.push(`  out${i} [shape=house, label=${quote(`output: ${p.name}`)}];`));

  const inputIndex = new Map(graph.inputStreams.map((p, i) => [p.name, i]));
  for (const node of graph.nodes) {
    node.inputs.forEach((port, flat) => {
      const stream = graph.streams.get(port.name);
      if (!stream) return;
      const from = stream.producer === "graph" ? `in${inputIndex.get(port.name)}` : nodeId(stream.producer.node);
      const style = node.backEdge[flat] ? ", style=dashed, constraint=false" : "";
      out.push(`  ${from} -> ${nodeId(node.id)} [label=${quote(`${port.name}\n${portLabel(port)}`)}${style}];`);
    });
  }
  graph.outputStreams.forEach((p, i) => {
    const stream = graph.streams.get(p.name);
    if (stream && stream.producer !== "graph") out.push(`  ${nodeId(stream.producer.node)} -> out${i} [label=${quote(p.name)}];`);
    else out.push(`  in${inputIndex.get(p.name)} -> out${i} [label=${quote(p.name)}];`);
  });

  // Side packets: from the producing node, or from one "host" node for those the server supplies.
  if (graph.requiredSidePackets.length > 0) out.push('  host [shape=component, label="side packets"];');
  for (const node of graph.nodes) {
    for (const port of node.inputSidePackets) {
      const info = graph.sidePackets.get(port.name);
      const from = !info || info.producer === "graph" ? "host" : nodeId(info.producer.node);
      out.push(`  ${from} -> ${nodeId(node.id)} [style=dotted, label=${quote(port.name)}];`);
    }
  }
  out.push("}");
  return out.join("\n") + "\n";
}
