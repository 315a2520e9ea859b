/**
 * OVMS's health, model-list and config endpoints.
 */
import type { Request, Response } from "express";
import type { ConfigStatus, ModelVersionStatus } from "../servables/manager.js";
import type { Servable, Servables } from "../servables/types.js";
import { withoutPaths } from "./auth.js";
import { HttpError, OVMS } from "./errors.js";
import { locals, sendEmpty, sendError, sendJson, sendBody, type ServerContext } from "./context.js";

export interface ModelObject {
  readonly id: string;
  readonly object: "model";
  /** Request time in epoch seconds, as OVMS reports it. */
  readonly created: number;
  readonly owned_by: "OVMS";
}

/**
 * `GET /v1/config`: OVMS's per-servable version status (graphs are version
 * 1). The manager's own report when it has one (it also lists retired
 * servables), else built from the Servables interface. Without `withPaths`,
 * load errors show no filesystem paths (for callers without the API key).
 */
export function configStatus(servables: Servables & { configStatus?: () => ConfigStatus }, withPaths = true): ConfigStatus {
  let status: ConfigStatus;
  if (typeof servables.configStatus === "function") {
    status = servables.configStatus();
  } else {
    const out = Object.create(null) as Record<string, ConfigStatus[string]>;
    for (const s of servables.list()) {
      const st = s.status();
      out[s.name] = { model_version_status: [{ version: "1", state: st.state, status: { error_code: st.errorCode, error_message: st.errorMessage } }] };
    }
    status = out;
  }
  if (withPaths) return status;
  const hide = (v: ModelVersionStatus): ModelVersionStatus => ({ ...v, status: { ...v.status, error_message: withoutPaths(v.status.error_message) } });
  return Object.fromEntries(Object.entries(status).map(([name, s]) => [name, { model_version_status: s.model_version_status.map(hide) }]));
}

const available = (s: Servable | undefined) => s?.status().state === "AVAILABLE";

function modelObject(id: string): ModelObject {
  return { id, object: "model", created: Math.floor(Date.now() / 1000), owned_by: "OVMS" };
}

function listModels(ctx: ServerContext): ModelObject[] {
  const data = ctx.servables.list().filter(available).map((s) => modelObject(s.name));
  for (const a of ctx.aliases?.list() ?? []) if (available(ctx.servables.get(a.servable))) data.push(modelObject(a.alias));
  return data;
}

export function statusHandlers(ctx: ServerContext) {
  // Express decodes route parameters (and answers 400 to a malformed escape).
  const param0 = (req: Request) => (req.params as Record<string, string>)[0];

  return {
    live(_req: Request, res: Response) {
      sendEmpty(ctx, res);
    },
    ready(_req: Request, res: Response) {
      if (ctx.servables.initialized()) sendEmpty(ctx, res);
      else sendError(ctx, res, new HttpError(503, OVMS.notReady, { headers: { "Retry-After": "1" } }));
    },
    /** `/v2/models/{name}[/versions/N]/ready`; the version is ignored (graphs have one). */
    modelReady(req: Request, res: Response) {
      const name = param0(req);
      const servable = ctx.servables.get(name);
      if (servable === undefined) throw new HttpError(404, OVMS.modelNotFound, { code: "model_not_found" });
      if (!available(servable)) throw new HttpError(404, OVMS.versionNotLoaded);
      sendEmpty(ctx, res);
    },
    list(_req: Request, res: Response) {
      sendJson(ctx, res, 200, { data: listModels(ctx), object: "list" });
    },
    /** OVMS answers an unknown id with 500 `Model not found`; 404 is what OpenAI clients expect. */
    retrieve(req: Request, res: Response) {
      const id = param0(req);
      const model = listModels(ctx).find((m) => m.id === id);
      if (model === undefined) throw new HttpError(404, OVMS.modelNotFound, { param: "model", code: "model_not_found" });
      sendJson(ctx, res, 200, model);
    },
    /** Declared `admin` (app.ts): a caller without the key sees no filesystem paths. */
    config(_req: Request, res: Response) {
      const trusted = locals(res).trusted;
      sendJson(ctx, res, 200, configStatus(ctx.servables, trusted));
    },
    /** 201 when something changed, 200 when not; a config that cannot be read is a 500 and changes nothing. */
    async reload(_req: Request, res: Response) {
      const trusted = locals(res).trusted;
      const result = await ctx.servables.reload();
      // The manager has logged why.
      if (result.error !== undefined) {
        const why = trusted ? result.error : withoutPaths(result.error);
        throw new HttpError(500, `Config reload failed: ${why}. The servables already loaded keep serving.`);
      }
      sendJson(ctx, res, result.changed ? 201 : 200, configStatus(ctx.servables, trusted));
    },
    async metrics(_req: Request, res: Response) {
      const registry = ctx.metrics.registry;
      if (registry === undefined) throw new HttpError(404, "Metrics are not enabled: start with --metrics_enable, or set monitoring.metrics.enable in config.json");
      // Calculators' own metrics are in it too (node resources get it as ResourceLoadContext.metrics).
      sendBody(ctx, res, 200, await registry.metrics(), registry.contentType);
    },
  };
}
