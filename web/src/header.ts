/**
 * The page header: the name, the navigation (Playground; Graph of the
 * selected model) and the API key, kept in localStorage and sent as a
 * bearer token with every request.
 */
import { h } from "./dom.js";
import { routeHash, type Route } from "./routes.js";
import { load, save } from "./storage.js";

export interface Header {
  readonly element: HTMLElement;
  apiKey(): string;
  /** The model the Graph link opens. */
  setGraphModel(model: string): void;
  /** Marks the current page's link. */
  setRoute(route: Route): void;
  /** Called (debounced) after the key is edited. */
  onKeyChange: () => void;
}

export function createHeader(): Header {
  const playground = h("a", { href: "#/" }, "Playground");
  const graph = h("a", { href: "#/", "aria-disabled": "true" }, "Graph");
  const key = h("input", {
    id: "api-key", type: "password", autocomplete: "off", spellcheck: "false",
    autocapitalize: "off", placeholder: "none", value: load("apiKey") ?? "",
  });
  const element = h(
    "header",
    { class: "top" },
    h("p", { class: "brand" }, "graphserve"),
    h("nav", { "aria-label": "Main" }, playground, graph),
    h("div", { class: "key" }, h("label", { for: key.id }, "API key"), key),
  );

  let timer: ReturnType<typeof setTimeout> | undefined;
  key.addEventListener("input", () => {
    save("apiKey", key.value.trim());
    clearTimeout(timer);
    timer = setTimeout(() => header.onKeyChange(), 400);
  });

  const header: Header = {
    element,
    apiKey: () => key.value.trim(),
    setGraphModel(model) {
      if (model === "") {
        graph.setAttribute("href", "#/");
        graph.setAttribute("aria-disabled", "true");
      } else {
        graph.setAttribute("href", routeHash({ page: "graph", name: model }));
        graph.removeAttribute("aria-disabled");
      }
    },
    setRoute(route) {
      const current = route.page === "graph" ? graph : playground;
      for (const link of [playground, graph]) {
        if (link === current) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
    },
    onKeyChange: () => undefined,
  };
  return header;
}
