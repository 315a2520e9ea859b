/** The page's hash routes: `#/` (playground) and `#/graph/<encodeURIComponent(name)>`. */
export type Route = { readonly page: "playground" } | { readonly page: "graph"; readonly name: string };

export function parseRoute(hash: string): Route {
  const m = /^#\/graph\/(.+)$/.exec(hash);
  if (m !== null) {
    try {
      const name = decodeURIComponent(m[1]);
      if (name !== "") return { page: "graph", name };
    } catch {
      // A malformed escape: fall back to the playground.
    }
  }
  return { page: "playground" };
}

export function routeHash(route: Route): string {
  return route.page === "graph" ? `#/graph/${encodeURIComponent(route.name)}` : "#/";
}
