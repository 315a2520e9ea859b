/**
 * graphserve's own read-only graph endpoints, for the web UI:
 *
 *   GET /graphserve/v1/graphs/{name}        → GraphView (structure + graph.pbtxt)
 *   GET /graphserve/v1/graphs/{name}/stats  → GraphStats (live per-node numbers)
 *
 * `{name}` may hold slashes (`OpenVINO/sd-int8`) or come %2F-escaped. A path
 * ending in `/stats` whose prefix names a servable reads its statistics;
 * otherwise the whole path is the name. Guarded by the API key like the
 * inference routes, and answering a servable's states as they do: unknown or
 * retired 404, loading 503, failed to load 503 with the reason.
 */
import type { Request, Response } from "express";
import type { Servable, ServedGraph } from "../servables/types.js";
import { sendBody, type ServerContext } from "./context.js";
import { HttpError, OVMS } from "./errors.js";
import { graphStats, graphStructure } from "./graph-view.js";
import { servableUnavailable } from "./servable-errors.js";
import type { GraphView } from "./graph-view-types.js";

export const GRAPHS_ROUTE = /^\/graphserve\/v1\/graphs\/(.+)$/;
const STATS_SUFFIX = "/stats";
/** Polled once a second per open page: logged at debug, like health probes. */
export const isStatsPoll = (path: string): boolean => path.endsWith(STATS_SUFFIX) && path.startsWith("/graphserve/v1/graphs/");
/** Live numbers: never reuse an old answer. */
const NO_STORE = { "Cache-Control": "no-store" } as const;

export function graphsHandler(ctx: ServerContext) {
  const lookup = (name: string): Servable | undefined => {
    const s = ctx.servables.get(name);
    if (s !== undefined) return s;
    const target = ctx.aliases?.resolve(name);
    return target === undefined ? undefined : ctx.servables.get(target);
  };

  return function graphs(req: Request, res: Response): void {
    // Express decodes route parameters (and answers 400 to a malformed escape).
    const path = (req.params as Record<string, string>)[0];
    let name = path;
    let servable = lookup(path);
    let stats = false;
    if (servable === undefined && path.endsWith(STATS_SUFFIX)) {
      name = path.slice(0, -STATS_SUFFIX.length);
      servable = lookup(name);
      stats = true;
    }
    if (servable === undefined) throw new HttpError(404, OVMS.graphNotFound, { code: "model_not_found" });
    const served = servedGraph(servable);
    if (stats) {
      sendBody(ctx, res, 200, JSON.stringify(graphStats(name, served.graph, served.stats)), "application/json", NO_STORE);
      return;
    }
    const view: GraphView = { name, state: servable.status().state, ...graphStructure(served.graph, served.text) };
    sendBody(ctx, res, 200, JSON.stringify(view), "application/json", NO_STORE);
  };
}

/** The serving graph, or the error the inference routes give for the servable's state. */
function servedGraph(servable: Servable): ServedGraph {
  const st = servable.status();
  const served = st.state === "AVAILABLE" ? servable.served?.() : undefined;
  if (served === undefined) throw servableUnavailable(servable.name, st);
  return served;
}
