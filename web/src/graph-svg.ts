/**
 * Draws a `Layout` as SVG. The drawing is a labelled group; each calculator
 * node is a focusable button (named "<node> (<calculator>)") whose live stats
 * line is updated in place, so polling never rebuilds or re-lays out the SVG.
 */
import type { NodeStats } from "../../src/server/graph-view-types.js";
import { formatCount, formatNodeStats, nodeLabel, type EdgeKind } from "./graph-model.js";
import { FONTS, LABEL_INSET, labelBaseline, vertexLineStyles, type Layout, type PlacedLabel, type PlacedVertex, type TextStyle } from "./graph-layout.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const MIN_SCALE = 0.8;

export interface NodeHandle {
  readonly element: SVGGElement;
  /** Shows the latest numbers; null shows the node as not yet measured. */
  setStats(stats: NodeStats | null): void;
  setSelected(selected: boolean): void;
}

export interface Drawing {
  readonly svg: SVGSVGElement;
  /** By node id. */
  readonly nodes: ReadonlyMap<number, NodeHandle>;
}

export interface DrawOptions {
  readonly graphName: string;
  /** Prefix for element ids (markers, descriptions), unique per mounted view. */
  readonly idPrefix: string;
  /** Calculator nodes by id, for their accessible names. */
  readonly nodeInfo: (id: number) => { readonly name: string; readonly calculator: string };
  /** The id of the element a node button opens. */
  readonly detailsId: string;
  readonly onActivate: (nodeId: number) => void;
}

function el<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Readonly<Record<string, string | number>> = {},
  parent?: Element,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent?.append(e);
  return e;
}

function fontAttrs(style: TextStyle): Record<string, string | number> {
  const f = FONTS[style];
  return { "font-family": f.family, "font-size": f.size, "font-weight": f.weight };
}

const MARKER_OF: Readonly<Record<EdgeKind, string>> = { stream: "stream", sidePacket: "side", back: "back" };

export function drawGraph(layout: Layout, opts: DrawOptions): Drawing {
  const svg = el("svg", {
    class: "gv-svg",
    role: "group",
    "aria-label": `Graph of ${opts.graphName}`,
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    preserveAspectRatio: "xMidYMin meet",
  });
  // Never scaled above natural size, and shrunk to the container only while the
  // text stays legible; past that the canvas scrolls.
  svg.style.maxWidth = `${layout.width}px`;
  svg.style.minWidth = `${Math.round(layout.width * MIN_SCALE)}px`;
  const defs = el("defs", {}, svg);
  for (const kind of Object.values(MARKER_OF)) {
    const m = el("marker", {
      id: `${opts.idPrefix}-arrow-${kind}`,
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 9,
      markerHeight: 9,
      markerUnits: "userSpaceOnUse",
      orient: "auto-start-reverse",
      class: `gv-arrow gv-arrow--${kind}`,
    }, defs);
    el("path", { d: "M0,1 L10,5 L0,9 z" }, m);
  }

  const edgeLayer = el("g", { class: "gv-edges" }, svg);
  for (const e of layout.edges) {
    el("path", {
      class: `gv-edge gv-edge--${e.edge.kind}`,
      d: e.path,
      "marker-end": `url(#${opts.idPrefix}-arrow-${MARKER_OF[e.edge.kind]})`,
    }, edgeLayer);
  }
  const vertexLayer = el("g", { class: "gv-vertices" }, svg);
  const nodes = new Map<number, NodeHandle>();
  for (const v of layout.vertices) {
    if (v.vertex.kind === "node") {
      const id = v.vertex.nodeId!;
      nodes.set(id, drawNode(v, id, vertexLayer, opts));
    } else {
      drawTerminal(v, vertexLayer);
    }
  }
  // Labels last so no line crosses their text.
  const labelLayer = el("g", { class: "gv-labels" }, svg);
  for (const e of layout.edges) drawLabel(e.label, e.edge.kind, labelLayer);
  return { svg, nodes };
}

function drawLines(v: PlacedVertex, g: SVGGElement, texts: readonly string[]): SVGTextElement[] {
  const styles = vertexLineStyles(v.vertex);
  return texts.map((t, i) => {
    const style = styles[i]!;
    const text = el("text", {
      class: `gv-text gv-text--${style}`,
      x: v.box.width / 2,
      y: v.baselines[i]!,
      "text-anchor": "middle",
      ...fontAttrs(style),
    }, g);
    text.textContent = t;
    return text;
  });
}

function drawTerminal(v: PlacedVertex, parent: SVGGElement): void {
  const { width: w, height: h } = v.box;
  const g = el("g", { class: `gv-terminal gv-terminal--${v.vertex.kind}`, transform: `translate(${v.box.x},${v.box.y})` }, parent);
  if (v.vertex.kind === "host") {
    // A cylinder: the usual picture of a store of values the server hands in.
    const ry = 5;
    el("path", { class: "gv-shape", d: `M0,${ry} A${w / 2},${ry} 0 0 1 ${w},${ry} V${h - ry} A${w / 2},${ry} 0 0 1 0,${h - ry} Z` }, g);
    el("path", { class: "gv-shape-line", d: `M0,${ry} A${w / 2},${ry} 0 0 0 ${w},${ry}` }, g);
  } else {
    el("rect", { class: "gv-shape", width: w, height: h, rx: h / 2 }, g);
    // Outputs get a second ring so they differ from inputs without relying on colour.
    if (v.vertex.kind === "output") el("rect", { class: "gv-shape-line", x: 3, y: 3, width: w - 6, height: h - 6, rx: (h - 6) / 2 }, g);
  }
  drawLines(v, g, v.vertex.lines);
}

function drawNode(v: PlacedVertex, id: number, parent: SVGGElement, opts: DrawOptions): NodeHandle {
  const { width: w, height: h } = v.box;
  const statsId = `${opts.idPrefix}-stats-${id}`;
  const g = el("g", {
    class: "gv-node",
    transform: `translate(${v.box.x},${v.box.y})`,
    role: "button",
    tabindex: 0,
    "aria-label": nodeLabel(opts.nodeInfo(id)),
    "aria-describedby": statsId,
    "aria-controls": opts.detailsId,
    "aria-expanded": "false",
    "data-node-id": id,
  }, parent);
  el("rect", { class: "gv-node__box", width: w, height: h, rx: 7 }, g);
  el("rect", { class: "gv-node__band", width: w, height: 4, rx: 2 }, g);
  const texts = drawLines(v, g, [...v.vertex.lines, formatNodeStats({ processed: 0, meanMs: null, active: 0 })]);
  const statsText = texts[texts.length - 1]!;
  statsText.id = statsId;
  const errors = el("g", { class: "gv-node__errors", transform: `translate(${w - 2},2)` }, g);
  errors.style.display = "none";
  el("circle", { r: 9 }, errors);
  const errorText = el("text", { "text-anchor": "middle", y: 3.5, ...fontAttrs("edgeTag") }, errors);
  const errorTitle = el("title", {}, errors);
  const activate = (): void => opts.onActivate(id);
  g.addEventListener("click", activate);
  g.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      activate();
    }
  });
  return {
    element: g,
    setStats(s) {
      statsText.textContent = formatNodeStats(s ?? { processed: 0, meanMs: null, active: 0 });
      g.classList.toggle("gv-node--active", s !== null && s.active > 0);
      const n = s?.errors ?? 0;
      errors.style.display = n > 0 ? "" : "none";
      errorText.textContent = n > 99 ? "99+" : String(n);
      errorTitle.textContent = `${formatCount(n)} failed`;
    },
    setSelected(selected) {
      g.classList.toggle("gv-node--selected", selected);
      g.setAttribute("aria-expanded", String(selected));
    },
  };
}

function drawLabel(label: PlacedLabel, kind: EdgeKind, parent: SVGGElement): void {
  const g = el("g", { class: `gv-label gv-label--${kind}`, transform: `translate(${label.box.x},${label.box.y})` }, parent);
  el("rect", { class: "gv-label__bg", width: label.box.width, height: label.box.height, rx: 4 }, g);
  label.lines.forEach((line, i) => {
    const y = labelBaseline(i);
    const name = el("text", { class: "gv-label__name", x: LABEL_INSET, y, ...fontAttrs("edgeName") }, g);
    name.textContent = line.name;
    const tag = el("text", { class: "gv-label__tag", x: label.tagColumn, y, ...fontAttrs("edgeTag") }, g);
    tag.textContent = line.tagIndex;
  });
}
