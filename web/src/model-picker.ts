/**
 * The "Model" select, filled from GET /v3/models (OpenAI's list). Picks the
 * model chosen last time when it is still served, else the first one, and
 * remembers the choice.
 */
import { isAbort, type Api } from "./api.js";
import { h } from "./dom.js";
import { load, save } from "./storage.js";

interface ModelList {
  readonly data?: ReadonlyArray<{ readonly id?: unknown }>;
}

export interface ModelPicker {
  reload(): Promise<void>;
}

/** `showError` shows a readable failure, and "" to take it back once the list loads. */
export function createModelPicker(api: Api, select: HTMLSelectElement, onModel: (model: string) => void, showError: (message: string) => void): ModelPicker {
  let loading: AbortController | null = null;
  let failed = false;

  select.addEventListener("change", () => {
    save("model", select.value);
    onModel(select.value);
  });

  async function reload(): Promise<void> {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    let ids: string[];
    try {
      const list = await api.json<ModelList>("/v3/models", controller.signal);
      ids = (list.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === "string");
      if (failed) showError("");
      failed = false;
    } catch (e) {
      if (isAbort(e)) return;
      ids = [];
      failed = true;
      showError(`Could not load the model list: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (loading !== controller) return;
    loading = null;
    const wanted = select.value || load("model");
    select.replaceChildren(...ids.map((id) => h("option", { value: id }, id)));
    if (ids.length === 0) select.append(h("option", { value: "", disabled: true }, "(no models)"));
    select.value = wanted !== null && ids.includes(wanted) ? wanted : (ids[0] ?? "");
    onModel(select.value);
  }

  return { reload };
}
