/**
 * The "Node details" region: everything the graph says about one node (ports
 * with their tags and peers, executor, input stream handler, options) plus its
 * live statistics, which `update` refreshes without rebuilding the rest.
 */
import type { GraphView, InputPortView, NodeStats, NodeView, PortView } from "../../src/server/graph-view-types.js";
import { h } from "./dom.js";
import { executorLabel, formatCount, formatMs, WORKER_POOL } from "./graph-model.js";

export interface NodeDetails {
  readonly element: HTMLElement;
  update(stats: NodeStats | null): void;
}

function definitionList(rows: readonly (readonly [string, string | Node])[]): HTMLDListElement {
  const dl = h("dl", { class: "gv-dl" });
  for (const [term, value] of rows) dl.append(h("dt", {}, term), h("dd", {}, value));
  return dl;
}

function ms(value: number | null): string {
  return value === null ? "–" : `${formatMs(value)} ms`;
}

function executorText(view: GraphView, node: NodeView): string | HTMLElement {
  // The engine's own pool has an internal name: show what it is, the name only in a tooltip.
  if (node.executor === WORKER_POOL) return h("span", { title: `executor "${WORKER_POOL}": the server's --rest_workers threads` }, executorLabel(node.executor));
  if (node.executor === "") return executorLabel(node.executor);
  const ex = view.executors.find((e) => e.name === node.executor);
  if (ex === undefined) return node.executor;
  const kind = ex.type === "" ? "supplied by the server" : ex.type;
  const threads = ex.numThreads === null ? "" : `, ${ex.numThreads} thread${ex.numThreads === 1 ? "" : "s"}`;
  return `${ex.name} (${kind}${threads})`;
}

function producerText(view: GraphView, p: InputPortView, what: "stream" | "sidePacket"): string {
  if (p.producer === "graph") return what === "stream" ? "graph input" : "host (server)";
  return view.nodes[p.producer]?.name ?? `node ${p.producer}`;
}

function portTable<P extends PortView>(caption: string, peerHeading: string, ports: readonly P[], peer: (p: P) => string): HTMLElement {
  const col = (text: string) => h("th", { scope: "col" }, text);
  const rows = ports.map((p) =>
    // TAG:index may wrap after its colon, nowhere else.
    h("tr", {}, h("td", { class: "gv-mono" }, `${p.tag}:`, h("wbr"), String(p.index)), h("td", { class: "gv-mono" }, p.name), h("td", {}, peer(p))),
  );
  const table = h(
    "table",
    { class: "gv-ports" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, col("Tag:index"), col("Name"), col(peerHeading))),
    h("tbody", {}, ...rows),
  );
  // Names are never split; a table wider than the panel scrolls on its own.
  return h("div", { class: "gv-ports-scroll" }, table);
}

export function buildNodeDetails(view: GraphView, node: NodeView, headingId: string): NodeDetails {
  const consumers = (name: string, sidePacket: boolean): string => {
    const names = view.nodes
      .filter((n) => (sidePacket ? n.inputSidePackets : n.inputs).some((p) => p.name === name))
      .map((n) => n.name);
    if (!sidePacket && view.outputStreams.some((s) => s.name === name)) names.push("graph output");
    return names.length === 0 ? "(unused)" : names.join(", ");
  };
  const statsList = h("dl", { class: "gv-dl gv-dl--stats" });
  const parts: HTMLElement[] = [
    h("h3", {}, node.name),
    definitionList([
      ["Calculator", h("span", { class: "gv-mono" }, node.calculator)],
      ["Executor", executorText(view, node)],
      ["Input stream handler", h("span", { class: "gv-mono" }, node.inputStreamHandler)],
    ]),
    statsList,
  ];
  parts[0]!.id = headingId;
  if (node.inputs.length > 0) {
    parts.push(portTable("Input streams", "From", node.inputs, (p) => producerText(view, p, "stream") + (p.backEdge ? " (back edge)" : "")));
  }
  if (node.outputs.length > 0) parts.push(portTable("Output streams", "To", node.outputs, (p) => consumers(p.name, false)));
  if (node.inputSidePackets.length > 0) {
    parts.push(portTable("Input side packets", "From", node.inputSidePackets, (p) => producerText(view, p, "sidePacket")));
  }
  if (node.outputSidePackets.length > 0) {
    parts.push(portTable("Output side packets", "To", node.outputSidePackets, (p) => consumers(p.name, true)));
  }
  const options = h("section", { class: "gv-options" });
  options.append(h("h4", {}, "Options"));
  if (node.options === null) {
    options.append(h("p", {}, "None."));
  } else {
    if (node.optionsType !== null) options.append(h("p", { class: "gv-mono gv-muted" }, node.optionsType));
    options.append(h("pre", {}, h("code", {}, JSON.stringify(node.options, null, 2))));
  }
  parts.push(options);

  const element = h("div", { class: "gv-details__body" }, ...parts);
  return {
    element,
    update(s) {
      statsList.replaceChildren(
        ...[
          ["Processed", s === null ? "–" : formatCount(s.processed)],
          ["Active", s === null ? "–" : formatCount(s.active)],
          ["Errors", s === null ? "–" : formatCount(s.errors)],
          // An older server does not count cancellations.
          ["Cancelled", s === null || typeof s.cancelled !== "number" ? "–" : formatCount(s.cancelled)],
          ["Mean time", ms(s?.meanMs ?? null)],
          ["Last time", ms(s?.lastMs ?? null)],
        ].flatMap(([t, v]) => [h("dt", {}, t), h("dd", {}, v)]),
      );
    },
  };
}
