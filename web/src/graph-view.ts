/// <reference types="vite/client" />
/**
 * The live graph view of one servable: fetches its structure once, draws it,
 * and polls its per-node statistics every second while the page is visible
 * (backing off while the server fails, recovering when it answers again).
 */
import "./graph-view.css";
import type { GraphStats, GraphView, NodeStats } from "../../src/server/graph-view-types.js";
import { h } from "./dom.js";
import { buildNodeDetails, type NodeDetails } from "./graph-details.js";
import { buildGraphModel, formatCount, statsMatch } from "./graph-model.js";
import { fontShorthand, layoutGraph, type Measure, type TextStyle } from "./graph-layout.js";
import { drawGraph, type Drawing } from "./graph-svg.js";
import { graphUnavailable, type Unavailable } from "./graph-unavailable.js";

/** GET as JSON; `model` names the servable in error messages. */
export type FetchJson = <T>(path: string, signal: AbortSignal, model: string) => Promise<T>;

const POLL_MS = 1000;
const MAX_BACKOFF_MS = 10_000;

let mounted = 0;

/** The API path of a servable; names may contain slashes, which stay path separators. */
export function graphPath(name: string): string {
  return `/graphserve/v1/graphs/${name.split("/").map(encodeURIComponent).join("/")}`;
}

function canvasMeasure(): Measure {
  const ctx = document.createElement("canvas").getContext("2d");
  const cache = new Map<string, number>();
  return (text: string, style: TextStyle): number => {
    const key = `${style}\u0000${text}`;
    let w = cache.get(key);
    if (w === undefined) {
      if (ctx === null) {
        w = text.length * 7.2; // no canvas: a generous average glyph width
      } else {
        ctx.font = fontShorthand(style);
        w = ctx.measureText(text).width;
      }
      cache.set(key, w);
    }
    return w;
  };
}

/** The error's message ending in a full stop, so another sentence can follow it. */
function closedSentence(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).trim();
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export function mountGraphView(root: HTMLElement, name: string, fetchJson: FetchJson): () => void {
  const prefix = `gv${++mounted}`;
  const base = graphPath(name);

  const heading = h("h2", { class: "gv-title" }, `Graph: ${name}`);
  const meta = h("p", { class: "gv-meta" }, "Loading…");
  const live = h("p", { class: "gv-live", role: "status", "aria-label": "Live" }, "Live: waiting for the first update");
  const alert = h("div", { class: "gv-alert", role: "alert" });
  alert.hidden = true;
  const canvas = h("div", { class: "gv-canvas" });
  const details = h("section", { class: "gv-details", id: `${prefix}-details`, role: "region", "aria-label": "Node details" });
  details.hidden = true;
  const body = h("div", { class: "gv-body" }, canvas, details);
  const sourceCode = h("code");
  const source = h("details", { class: "gv-source" }, h("summary", {}, "graph.pbtxt"), h("pre", {}, sourceCode));
  source.hidden = true;
  const container = h("div", { class: "gv" }, heading, meta, live, alert, body, source);
  root.replaceChildren(container);

  let view: GraphView | null = null;
  let drawing: Drawing | null = null;
  let selected: { id: number; details: NodeDetails } | null = null;
  let latest: readonly NodeStats[] = [];
  let lastRuns: GraphStats["runs"] | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inflight: AbortController | null = null;
  let failures = 0;
  let lastUpdate: Date | null = null;
  let stopped = false;
  const measure = canvasMeasure();

  // The status ticks every second; announcing each tick would drown a screen
  // reader, so only changes of state (failing, recovered, paused) are announced.
  let liveState = "";
  const setLive = (state: string, ...content: (Node | string)[]): void => {
    live.setAttribute("aria-live", state === liveState ? "off" : "polite");
    liveState = state;
    live.replaceChildren(...content);
  };

  const showAlert = (text: string | null, retry: boolean): void => {
    alert.hidden = text === null;
    alert.replaceChildren();
    if (text === null) return;
    alert.append(h("span", {}, text));
    if (retry) {
      const button = h("button", { type: "button", class: "gv-retry" }, "Retry");
      button.addEventListener("click", () => void loadStructure());
      alert.append(" ", button);
    }
  };

  /** Set while the server answers 404 for this graph; the drawing stays as it was last served. */
  let gone: Unavailable | null = null;

  const renderMeta = (): void => {
    if (gone !== null) {
      meta.textContent = `State: ${gone.state}`;
      return;
    }
    if (view === null) return;
    const runs = lastRuns === null ? "" : ` · ${formatCount(lastRuns.active)} running · ${formatCount(lastRuns.finished)} finished`;
    meta.textContent = `State: ${view.state} · ${view.nodes.length} node${view.nodes.length === 1 ? "" : "s"}${runs}`;
  };

  const closeDetails = (): void => {
    if (selected === null) return;
    const id = selected.id;
    drawing?.nodes.get(id)?.setSelected(false);
    selected = null;
    details.hidden = true;
    details.replaceChildren();
    body.classList.remove("gv-body--details");
    drawing?.nodes.get(id)?.element.focus();
  };

  const openDetails = (id: number): void => {
    if (view === null || drawing === null) return;
    const node = view.nodes[id];
    if (node === undefined) return;
    if (selected !== null) drawing.nodes.get(selected.id)?.setSelected(false);
    const d = buildNodeDetails(view, node, `${prefix}-details-heading`);
    d.update(latest[id] ?? null);
    selected = { id, details: d };
    drawing.nodes.get(id)?.setSelected(true);
    const close = h("button", { type: "button", class: "gv-close", "aria-label": "Close node details" }, "Close");
    close.addEventListener("click", closeDetails);
    details.replaceChildren(close, d.element);
    details.hidden = false;
    body.classList.add("gv-body--details");
  };

  const onDetailsKey = (ev: KeyboardEvent): void => {
    if (ev.key === "Escape") closeDetails();
  };
  details.addEventListener("keydown", onDetailsKey);
  canvas.addEventListener("keydown", onDetailsKey);

  const render = (v: GraphView): void => {
    // Keep the same node open across a reload of the servable, if it still exists.
    const reopen = selected === null ? undefined : view?.nodes[selected.id]?.name;
    selected = null;
    details.hidden = true;
    body.classList.remove("gv-body--details");
    view = v;
    const layout = layoutGraph(buildGraphModel(v), measure);
    drawing = drawGraph(layout, {
      graphName: name,
      idPrefix: prefix,
      nodeInfo: (id) => v.nodes[id]!,
      detailsId: details.id,
      onActivate: openDetails,
    });
    canvas.replaceChildren(drawing.svg);
    sourceCode.textContent = v.pbtxt;
    source.hidden = false;
    renderMeta();
    applyStats(latest);
    const again = v.nodes.find((n) => n.name === reopen);
    if (again !== undefined) openDetails(again.id);
  };

  const applyStats = (nodes: readonly NodeStats[]): void => {
    if (drawing === null) return;
    for (const [id, handle] of drawing.nodes) handle.setStats(nodes[id] ?? null);
    if (selected !== null) selected.details.update(nodes[selected.id] ?? null);
  };

  const schedule = (ms: number): void => {
    clearTimeout(timer);
    if (!stopped && document.visibilityState === "visible") timer = setTimeout(() => void poll(), ms);
  };

  const poll = async (): Promise<void> => {
    if (stopped || view === null || document.visibilityState !== "visible") return;
    inflight?.abort();
    const ctrl = new AbortController();
    inflight = ctrl;
    try {
      const stats = await fetchJson<GraphStats>(`${base}/stats`, ctrl.signal, name);
      if (ctrl.signal.aborted) return;
      failures = 0;
      gone = null;
      container.classList.remove("gv--stale");
      if (!statsMatch(view, stats.nodes)) {
        // The servable was reloaded with another graph: draw the new one.
        latest = [];
        await loadStructure();
        return;
      }
      latest = stats.nodes;
      lastRuns = stats.runs;
      applyStats(latest);
      renderMeta();
      lastUpdate = new Date(stats.time);
      setLive("ok", "Live · updated ", timeElement(lastUpdate));
      schedule(POLL_MS);
    } catch (err) {
      if (ctrl.signal.aborted) return;
      failures++;
      const wait = Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS);
      container.classList.add("gv--stale");
      const since = lastUpdate === null ? [] : [" Last update ", timeElement(lastUpdate), "."];
      gone = graphUnavailable(name, err);
      renderMeta();
      const why = gone === null ? `Live updates failing: ${closedSentence(err)}` : `${gone.text} The drawing is the last one served.`;
      setLive(gone === null ? "failing" : "gone", `${why} Checking again in ${Math.round(wait / 1000)} s.`, ...since);
      schedule(wait);
    } finally {
      if (inflight === ctrl) inflight = null;
    }
  };

  const loadStructure = async (): Promise<void> => {
    if (stopped) return;
    clearTimeout(timer);
    inflight?.abort();
    const ctrl = new AbortController();
    inflight = ctrl;
    meta.textContent = "Loading…";
    try {
      const v = await fetchJson<GraphView>(base, ctrl.signal, name);
      if (ctrl.signal.aborted) return;
      gone = null;
      showAlert(null, false);
      render(v);
      inflight = null;
      void poll();
    } catch (err) {
      if (ctrl.signal.aborted) return;
      gone = graphUnavailable(name, err);
      meta.textContent = "";
      renderMeta();
      showAlert(gone?.text ?? `Could not load the graph of ${name}: ${closedSentence(err)}`, true);
      setLive("failing", "Live: no numbers without the graph.");
    } finally {
      if (inflight === ctrl) inflight = null;
    }
  };

  const onVisibility = (): void => {
    if (document.visibilityState === "visible") {
      // Hiding the page may have cut the structure's own request short.
      void (view === null ? loadStructure() : poll());
    } else {
      clearTimeout(timer);
      inflight?.abort();
      if (view !== null) setLive("paused", "Live updates paused while the page is hidden.");
    }
  };
  document.addEventListener("visibilitychange", onVisibility);

  void loadStructure();

  return () => {
    stopped = true;
    clearTimeout(timer);
    inflight?.abort();
    document.removeEventListener("visibilitychange", onVisibility);
    container.remove();
  };
}

function timeElement(at: Date): HTMLTimeElement {
  const t = document.createElement("time");
  t.dateTime = at.toISOString();
  t.textContent = at.toLocaleTimeString();
  return t;
}
