/**
 * Places a `GraphModel` on a plane: dagre ranks and orders the boxes and routes
 * the forward edges top to bottom; back edges are left out of dagre (they would
 * otherwise distort the ranking) and routed afterwards in a lane beside
 * everything they pass. No DOM: text widths come from the caller's `measure`.
 */
import dagre from "@dagrejs/dagre";
import type { Edge, EdgeLabelLine, GraphModel, Vertex } from "./graph-model.js";
import { WIDEST_NODE_STATS } from "./graph-model.js";

/** The text styles of the drawing; the renderer draws with exactly these fonts. */
export type TextStyle = "title" | "body" | "stats" | "edgeName" | "edgeTag";

const FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const MONO = "ui-monospace, 'SF Mono', Menlo, Consolas, 'DejaVu Sans Mono', monospace";

export const FONTS: Readonly<Record<TextStyle, { readonly family: string; readonly size: number; readonly weight: number }>> = {
  title: { family: FAMILY, size: 14, weight: 600 },
  body: { family: FAMILY, size: 12, weight: 400 },
  stats: { family: MONO, size: 11, weight: 400 },
  edgeName: { family: FAMILY, size: 11, weight: 500 },
  edgeTag: { family: MONO, size: 10, weight: 400 },
};

/** A CSS/canvas `font` shorthand for a style. */
export function fontShorthand(style: TextStyle): string {
  const f = FONTS[style];
  return `${f.weight} ${f.size}px ${f.family}`;
}

export type Measure = (text: string, style: TextStyle) => number;

export interface Point {
  readonly x: number;
  readonly y: number;
}

/** An axis-aligned box by its top-left corner. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface PlacedVertex {
  readonly vertex: Vertex;
  readonly box: Box;
  /** Baselines of `vertex.lines`, then (for nodes) of the stats line, relative to `box.y`. */
  readonly baselines: readonly number[];
}

export interface PlacedLabel {
  readonly lines: readonly EdgeLabelLine[];
  readonly box: Box;
  /** x offset of the TAG:index column from `box.x`. */
  readonly tagColumn: number;
}

export interface PlacedEdge {
  readonly edge: Edge;
  /** SVG path data, ending where the arrowhead goes. */
  readonly path: string;
  readonly label: PlacedLabel;
}

export interface Layout {
  readonly width: number;
  readonly height: number;
  readonly vertices: readonly PlacedVertex[];
  /** Forward edges first, back edges last (so they are drawn on top). */
  readonly edges: readonly PlacedEdge[];
}

const PAD_X = 14;
const PAD_Y = 9;
const LINE_GAP = 5;
const LABEL_PAD_X = 6;
const LABEL_PAD_Y = 3;
const LABEL_LINE = 14;
const LABEL_COL_GAP = 8;
const MARGIN = 16;
/** Space between back-edge lanes and whatever they pass. */
const LANE_GAP = 22;
const CORNER = 10;

/** Baseline of line `i` of an edge label, relative to the label box's top. */
export function labelBaseline(i: number): number {
  return LABEL_PAD_Y + i * LABEL_LINE + 11;
}

/** Left padding of an edge label's name column. */
export const LABEL_INSET = LABEL_PAD_X;

function lineHeight(style: TextStyle): number {
  return Math.round(FONTS[style].size * 1.3);
}

/** Text styles of a vertex's lines (the first one is its title). */
export function vertexLineStyles(v: Vertex): TextStyle[] {
  const styles: TextStyle[] = v.lines.map((_, i) => (i === 0 ? "title" : "body"));
  if (v.kind === "node") styles.push("stats");
  return styles;
}

function sizeVertex(v: Vertex, measure: Measure): { width: number; height: number; baselines: number[] } {
  const styles = vertexLineStyles(v);
  const texts = v.kind === "node" ? [...v.lines, WIDEST_NODE_STATS] : [...v.lines];
  let width = 0;
  let y = PAD_Y;
  const baselines: number[] = [];
  texts.forEach((t, i) => {
    const style = styles[i]!;
    width = Math.max(width, measure(t, style));
    if (i > 0) y += LINE_GAP * (style === "stats" ? 1.4 : 0.4);
    const h = lineHeight(style);
    // Baseline sits at ~78% of the line box for these fonts.
    baselines.push(y + Math.round(h * 0.78));
    y += h;
  });
  // Stadium-shaped inputs/outputs need room for their round ends.
  const padX = v.kind === "node" ? PAD_X : PAD_X + 8;
  return { width: Math.ceil(width + 2 * padX), height: Math.ceil(y + PAD_Y), baselines };
}

function sizeLabel(lines: readonly EdgeLabelLine[], measure: Measure): { width: number; height: number; tagColumn: number } {
  const nameWidth = Math.max(...lines.map((l) => measure(l.name, "edgeName")));
  const tagWidth = Math.max(...lines.map((l) => measure(l.tagIndex, "edgeTag")));
  return {
    width: Math.ceil(nameWidth + LABEL_COL_GAP + tagWidth + 2 * LABEL_PAD_X),
    height: lines.length * LABEL_LINE + 2 * LABEL_PAD_Y,
    tagColumn: Math.ceil(LABEL_PAD_X + nameWidth + LABEL_COL_GAP),
  };
}

interface RoutedEdge {
  readonly edge: Edge;
  readonly cmds: readonly PathCommand[];
  readonly label: PlacedLabel;
}

interface DagreNode {
  width: number;
  height: number;
  x?: number;
  y?: number;
}

interface DagreEdge {
  width: number;
  height: number;
  labelpos: "c";
  minlen: number;
  weight: number;
  x?: number;
  y?: number;
  points?: Point[];
}

export function layoutGraph(model: GraphModel, measure: Measure): Layout {
  const g = new dagre.graphlib.Graph<object, DagreNode, DagreEdge>({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 28, edgesep: 16, ranksep: 44, marginx: MARGIN, marginy: MARGIN });
  const labelSizes = new Map<string, ReturnType<typeof sizeLabel>>();
  for (const e of [...model.edges, ...model.backEdges]) labelSizes.set(e.key, sizeLabel(e.label, measure));
  // A node feeding itself gets a loop on its right; dagre's own self-loops land
  // wherever its dummy node is ordered, so the box is widened instead (on both
  // sides, to keep edges aimed at its centre) to make room for loop and label.
  const loopsOf = new Map<string, Edge[]>();
  for (const e of model.backEdges) if (e.from === e.to) loopsOf.set(e.from, [...(loopsOf.get(e.from) ?? []), e]);
  const loopRoom = (key: string): number => {
    const loops = loopsOf.get(key) ?? [];
    if (loops.length === 0) return 0;
    return loopReach(loops.length) + LOOP_LABEL_GAP + Math.max(...loops.map((e) => labelSizes.get(e.key)!.width));
  };
  const sized = new Map<string, ReturnType<typeof sizeVertex>>();
  for (const v of model.vertices) {
    const s = sizeVertex(v, measure);
    sized.set(v.key, s);
    g.setNode(v.key, { width: s.width + 2 * loopRoom(v.key), height: s.height });
  }
  for (const e of model.edges) {
    const s = labelSizes.get(e.key)!;
    // Side packets are set up once per run; let streams decide the straight lines.
    const weight = e.kind === "stream" ? 2 : 1;
    g.setEdge(e.from, e.to, { width: s.width, height: s.height, labelpos: "c", minlen: 1, weight }, e.key);
  }
  dagre.layout(g);

  const vertices: PlacedVertex[] = model.vertices.map((v) => {
    const n = g.node(v.key);
    const s = sized.get(v.key)!;
    return { vertex: v, box: { x: n.x! - s.width / 2, y: n.y! - s.height / 2, width: s.width, height: s.height }, baselines: s.baselines };
  });
  const boxOf = new Map(vertices.map((p) => [p.vertex.key, p.box]));

  const edges: RoutedEdge[] = model.edges.map((e) => {
    const d = g.edge(e.from, e.to, e.key);
    const s = labelSizes.get(e.key)!;
    const points = [...(d.points ?? [])];
    // dagre clipped to the widened boxes; bring the ends back to the drawn ones.
    if (points.length >= 2) {
      if (loopsOf.has(e.from)) points[0] = clipToBox(boxOf.get(e.from)!, points[1]!);
      if (loopsOf.has(e.to)) points[points.length - 1] = clipToBox(boxOf.get(e.to)!, points[points.length - 2]!);
    }
    return {
      edge: e,
      cmds: basisCommands(points),
      label: { lines: e.label, tagColumn: s.tagColumn, box: { x: d.x! - s.width / 2, y: d.y! - s.height / 2, width: s.width, height: s.height } },
    };
  });
  for (const [key, loops] of loopsOf) edges.push(...routeSelfLoops(loops, boxOf.get(key)!, labelSizes));

  // Solid things a back edge should not cut through, and everything its lane must pass outside of.
  const blockers: Box[] = [...vertices.map((v) => v.box), ...edges.map((e) => e.label.box)];
  const extents: Box[] = [...blockers];
  for (const e of edges) for (const c of e.cmds) for (const p of c.points) extents.push({ x: p.x, y: p.y, width: 0, height: 0 });
  const ports = new Map<string, number>();
  for (const e of model.backEdges) {
    if (e.from === e.to) continue;
    const from = boxOf.get(e.from);
    const to = boxOf.get(e.to);
    if (from === undefined || to === undefined) continue;
    const placed = routeBackEdge(e, from, to, labelSizes.get(e.key)!, blockers, extents, ports);
    edges.push(placed.edge);
    blockers.push(placed.edge.label.box);
    extents.push(...placed.occupies);
  }

  return normalise(vertices, edges, extents);
}

const LOOP_REACH = 16;
const LOOP_STEP = 8;
const LOOP_LABEL_GAP = 6;

/** How far right of its box the outermost of `n` nested loops reaches. */
function loopReach(n: number): number {
  return LOOP_REACH + (n - 1) * LOOP_STEP;
}

/** Nested rectangular loops on the box's right side, labels stacked beside them. */
function routeSelfLoops(loops: readonly Edge[], box: Box, labelSizes: ReadonlyMap<string, { width: number; height: number; tagColumn: number }>): RoutedEdge[] {
  const right = box.x + box.width;
  const cy = box.y + box.height / 2;
  const labelX = right + loopReach(loops.length) + LOOP_LABEL_GAP;
  const heights = loops.map((e) => labelSizes.get(e.key)!.height);
  let labelY = cy - (heights.reduce((a, b) => a + b, 0) + 4 * (loops.length - 1)) / 2;
  return loops.map((e, i) => {
    const size = labelSizes.get(e.key)!;
    const lane = right + LOOP_REACH + i * LOOP_STEP;
    // Leaves low, comes back high, like the upward back edges between nodes.
    const sy = cy + box.height * 0.22 + i * 4;
    const ey = cy - box.height * 0.22 - i * 4;
    const r = 6;
    const cmds: PathCommand[] = [
      { op: "M", points: [{ x: right, y: sy }] },
      { op: "L", points: [{ x: lane - r, y: sy }] },
      { op: "Q", points: [{ x: lane, y: sy }, { x: lane, y: sy - r }] },
      { op: "L", points: [{ x: lane, y: ey + r }] },
      { op: "Q", points: [{ x: lane, y: ey }, { x: lane - r, y: ey }] },
      { op: "L", points: [{ x: right, y: ey }] },
    ];
    const label: PlacedLabel = { lines: e.label, tagColumn: size.tagColumn, box: { x: labelX, y: labelY, width: size.width, height: size.height } };
    labelY += size.height + 4;
    return { edge: e, cmds, label };
  });
}

/** Where the line from `outside` to the box's centre crosses the box's border. */
export function clipToBox(box: Box, outside: Point): Point {
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const dx = outside.x - cx;
  const dy = outside.y - cy;
  if (dx === 0 && dy === 0) return { x: cx, y: cy };
  const hw = box.width / 2;
  const hh = box.height / 2;
  const t = Math.abs(dy) * hw > Math.abs(dx) * hh ? hh / Math.abs(dy) : hw / Math.abs(dx);
  return { x: cx + dx * t, y: cy + dy * t };
}

type Side = "left" | "right";

/**
 * Routes a back edge out of the producer's side, along a vertical lane outside
 * everything it passes, and into the consumer's side. Of the two sides, the
 * one whose horizontal legs cut through fewer boxes and labels wins, then the
 * shorter one.
 */
function routeBackEdge(
  e: Edge,
  from: Box,
  to: Box,
  size: { width: number; height: number; tagColumn: number },
  blockers: readonly Box[],
  extents: readonly Box[],
  ports: Map<string, number>,
): { edge: RoutedEdge; occupies: Box[] } {
  // Several back edges on one box leave/enter at staggered heights.
  const portY = (key: string, box: Box, side: Side, outgoing: boolean): number => {
    const i = ports.get(`${key}|${side}|${outgoing}`) ?? 0;
    return box.y + box.height * (outgoing ? 0.62 : 0.38) + (outgoing ? 1 : -1) * i * 8;
  };
  const plan = (side: Side) => {
    const h = side === "right" ? 1 : -1;
    const sx = side === "right" ? from.x + from.width : from.x;
    const ex = side === "right" ? to.x + to.width : to.x;
    const sy = portY(e.from, from, side, true);
    const ey = portY(e.to, to, side, false);
    const top = Math.min(sy, ey) - CORNER;
    const bottom = Math.max(sy, ey) + CORNER;
    let edge = side === "right" ? Math.max(sx, ex) : Math.min(sx, ex);
    for (const o of extents) {
      if (o.y > bottom || o.y + o.height < top) continue;
      edge = side === "right" ? Math.max(edge, o.x + o.width) : Math.min(edge, o.x);
    }
    const lane = edge + h * LANE_GAP;
    const cuts = (y: number, x1: number, x2: number): number =>
      blockers.filter((b) => b !== from && b !== to && y > b.y && y < b.y + b.height && Math.max(x1, x2) > b.x && Math.min(x1, x2) < b.x + b.width).length;
    const crossings = cuts(sy, sx, lane) + cuts(ey, ex, lane);
    const length = Math.abs(lane - sx) + Math.abs(lane - ex) + Math.abs(ey - sy);
    return { side, h, sx, ex, sy, ey, lane, cost: crossings * 1e5 + length };
  };
  const right = plan("right");
  const left = plan("left");
  const { side, h, sx, ex, sy, ey, lane } = left.cost < right.cost ? left : right;
  for (const k of [`${e.from}|${side}|true`, `${e.to}|${side}|false`]) ports.set(k, (ports.get(k) ?? 0) + 1);

  const dir = ey < sy ? -1 : 1;
  const r = Math.min(CORNER, Math.abs(ey - sy) / 2);
  // Out to the lane, along it with rounded corners, and back in from the side.
  const cmds: PathCommand[] = [
    { op: "M", points: [{ x: sx, y: sy }] },
    { op: "L", points: [{ x: lane - h * r, y: sy }] },
    { op: "Q", points: [{ x: lane, y: sy }, { x: lane, y: sy + dir * r }] },
    { op: "L", points: [{ x: lane, y: ey - dir * r }] },
    { op: "Q", points: [{ x: lane, y: ey }, { x: lane - h * r, y: ey }] },
    { op: "L", points: [{ x: ex, y: ey }] },
  ];
  const labelX = side === "right" ? lane + 6 : lane - 6 - size.width;
  const labelBox: Box = { x: labelX, y: (sy + ey) / 2 - size.height / 2, width: size.width, height: size.height };
  return {
    edge: { edge: e, cmds, label: { lines: e.label, tagColumn: size.tagColumn, box: labelBox } },
    occupies: [labelBox, { x: lane, y: Math.min(sy, ey), width: 0, height: Math.abs(ey - sy) }],
  };
}

/** Moves everything so the drawing starts at (MARGIN, MARGIN) and reports its size. */
function normalise(vertices: PlacedVertex[], edges: RoutedEdge[], extents: readonly Box[]): Layout {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const b of extents) {
    minX = Math.min(minX, b.x);
    minY = Math.min(minY, b.y);
    maxX = Math.max(maxX, b.x + b.width);
    maxY = Math.max(maxY, b.y + b.height);
  }
  if (!Number.isFinite(minX)) return { width: 2 * MARGIN, height: 2 * MARGIN, vertices: [], edges: [] };
  const dx = MARGIN - minX;
  const dy = MARGIN - minY;
  const shift = (b: Box): Box => ({ ...b, x: b.x + dx, y: b.y + dy });
  return {
    width: Math.ceil(maxX - minX + 2 * MARGIN),
    height: Math.ceil(maxY - minY + 2 * MARGIN),
    vertices: vertices.map((v) => ({ ...v, box: shift(v.box) })),
    edges: edges.map((e) => ({
      edge: e.edge,
      path: pathData(e.cmds.map((c) => ({ op: c.op, points: c.points.map((p) => ({ x: p.x + dx, y: p.y + dy })) }))),
      label: { ...e.label, box: shift(e.label.box) },
    })),
  };
}

/** An absolute path command; kept numeric so the drawing can be shifted before it is written out. */
export interface PathCommand {
  readonly op: "M" | "L" | "C" | "Q";
  readonly points: readonly Point[];
}

function f(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

export function pathData(cmds: readonly PathCommand[]): string {
  return cmds.map((c) => c.op + c.points.map((p) => `${f(p.x)},${f(p.y)}`).join(" ")).join(" ");
}

/**
 * A smooth curve through dagre's bend points: a uniform cubic B-spline, with a
 * straight start and end so it meets the box borders dagre clipped to and the
 * arrowhead points along the last leg.
 */
export function basisCommands(points: readonly Point[]): PathCommand[] {
  const n = points.length;
  if (n === 0) return [];
  const cmds: PathCommand[] = [{ op: "M", points: [points[0]!] }];
  if (n < 3) {
    for (const p of points.slice(1)) cmds.push({ op: "L", points: [p] });
    return cmds;
  }
  const mix = (ws: readonly number[], ps: readonly Point[]): Point => {
    const total = ws.reduce((a, b) => a + b, 0);
    return {
      x: ws.reduce((acc, w, i) => acc + w * ps[i]!.x, 0) / total,
      y: ws.reduce((acc, w, i) => acc + w * ps[i]!.y, 0) / total,
    };
  };
  // Each span between consecutive points becomes one cubic of the spline.
  const span = (a: Point, b: Point, c: Point): PathCommand => ({
    op: "C",
    points: [mix([2, 1], [a, b]), mix([1, 2], [a, b]), mix([1, 4, 1], [a, b, c])],
  });
  cmds.push({ op: "L", points: [mix([5, 1], points)] });
  for (let i = 2; i < n; i++) cmds.push(span(points[i - 2]!, points[i - 1]!, points[i]!));
  cmds.push(span(points[n - 2]!, points[n - 1]!, points[n - 1]!));
  cmds.push({ op: "L", points: [points[n - 1]!] });
  return cmds;
}
