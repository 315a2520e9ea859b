/**
 * Builds the playground and graph view into `<outDir>/web/` (dist/web by
 * default), where the server finds it. Everything is bundled: the UI must
 * work offline and under the server's `default-src 'self'` CSP.
 * `vite -c web/vite.config.ts` serves it for development, proxying the API
 * to a graphserve on localhost:8000 (or $GRAPHSERVE_URL).
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const api = process.env.GRAPHSERVE_URL ?? "http://localhost:8000";

export default defineConfig({
  root: here("."),
  base: "/",
  publicDir: false,
  build: {
    outDir: here("../dist/web"),
    emptyOutDir: true,
    assetsDir: "assets",
    // No data: URIs for scripts or fonts; images are the only thing the CSP lets through as data:.
    assetsInlineLimit: 0,
    // No source maps in the build: the server would hand out the UI's sources with it (the dev server makes its own).
    sourcemap: false,
    target: "es2022",
  },
  server: {
    proxy: Object.fromEntries(["/v3", "/v1", "/v2", "/graphserve", "/metrics"].map((p) => [p, { target: api, changeOrigin: false }])),
  },
});
