/**
 * The web UI's entry: header, hash routing between the playground (kept
 * mounted, so a running generation and the gallery survive a look at the
 * graph) and the graph view (mounted per visit, unmounted on leaving).
 */
import { createApi } from "./api.js";
import { h } from "./dom.js";
import { mountGraphView } from "./graph-view.js";
import { createHeader } from "./header.js";
import { createPlayground } from "./playground.js";
import { parseRoute } from "./routes.js";

const header = createHeader();
const api = createApi(() => header.apiKey());
const playground = createPlayground(api, (model) => header.setGraphModel(model));
const graphRoot = h("div", { class: "graph-page" });
const main = h("main", { id: "main", tabindex: "-1" }, playground.element, graphRoot);
document.body.replaceChildren(header.element, main);

let unmountGraph: (() => void) | null = null;
let firstRoute = true;

/** (Re)mounts the graph view of `name`: on a visit, and after the API key changes. */
function mountGraph(name: string): void {
  unmountGraph?.();
  unmountGraph = mountGraphView(graphRoot, name, (path, signal, model) => api.json(path, signal, model));
}

function route(): void {
  const r = parseRoute(location.hash);
  header.setRoute(r);
  unmountGraph?.();
  unmountGraph = null;
  graphRoot.replaceChildren();
  playground.element.hidden = r.page !== "playground";
  graphRoot.hidden = r.page !== "graph";
  if (r.page === "graph") {
    document.title = `Graph: ${r.name} · graphserve`;
    mountGraph(r.name);
  } else {
    document.title = "Playground · graphserve";
  }
  // After a navigation (not the first load), start keyboard and screen-reader users at the new content.
  if (!firstRoute) main.focus({ preventScroll: true });
  firstRoute = false;
}

header.onKeyChange = () => {
  void playground.reloadModels();
  // A view that failed with the old key (401) would otherwise keep failing.
  const r = parseRoute(location.hash);
  if (r.page === "graph") mountGraph(r.name);
};
window.addEventListener("hashchange", route);
route();
void playground.reloadModels();
