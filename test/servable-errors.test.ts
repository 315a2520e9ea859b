/**
 * A servable that is not serving, as the inference route and the graph
 * endpoints answer it (one function, servable-errors.ts): every state the
 * manager passes through, held still by a registry that freezes them.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { createApp } from "../src/server/app.js";
import type { Servables } from "../src/servables/types.js";
import { call, errorOf, FrozenServable, type Reply } from "./server-helpers.js";

const REASON = 'graph.pbtxt:3:3: node "Gen": unknown calculator "NoSuchCalculator"';


const servables = [
  new FrozenServable("starting", "START"),
  new FrozenServable("loading", "LOADING"),
  new FrozenServable("failed", "LOADING", "FAILED_PRECONDITION", REASON),
  new FrozenServable("unloading", "UNLOADING"),
  new FrozenServable("ended", "END"),
];

let server: Server;
let base: string;
before(async () => {
  const registry: Servables = {
    get: (n) => servables.find((s) => s.name === n),
    list: () => servables,
    initialized: () => true,
    reload: () => Promise.resolve({ changed: false }),
    close: () => Promise.resolve(),
  };
  server = createServer(createApp({ servables: registry, logger: pino({ level: "silent" }) }).app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** The same servable through each route that serves it. */
async function everyRoute(name: string): Promise<[string, Reply][]> {
  return [
    ["inference", await call(base, "POST", "/v3/images/generations", { json: { model: name, prompt: "a" } })],
    ["view", await call(base, "GET", `/graphserve/v1/graphs/${name}`)],
    ["stats", await call(base, "GET", `/graphserve/v1/graphs/${name}/stats`)],
  ];
}

test("loading or starting: 503 'Mediapipe is not loaded yet', retry after 1 s, no code", async () => {
  for (const name of ["starting", "loading"]) {
    for (const [route, r] of await everyRoute(name)) {
      const what = `${name} ${route}`;
      assert.equal(r.status, 503, what);
      assert.deepEqual(errorOf(r), { message: "Mediapipe is not loaded yet", type: "server_error", param: null, code: null }, what);
      assert.equal(r.headers.get("retry-after"), "1", what);
      assert.equal(r.headers.get("x-should-retry"), null, what);
    }
  }
});

test("failed to load: 503 with OVMS's text, then the reason; code model_failed; told not to retry, no Retry-After", async () => {
  for (const [route, r] of await everyRoute("failed")) {
    assert.equal(r.status, 503, route);
    assert.deepEqual(
      errorOf(r),
      { message: `Mediapipe is not loaded yet - servable "failed" failed to load: ${REASON}`, type: "server_error", param: null, code: "model_failed" },
      route,
    );
    assert.equal(r.headers.get("x-should-retry"), "false", route);
    assert.equal(r.headers.get("retry-after"), null, route);
  }
});

test("retiring or retired: 404 'Mediapipe is retired'; the inference route names the model field", async () => {
  for (const name of ["unloading", "ended"]) {
    for (const [route, r] of await everyRoute(name)) {
      const what = `${name} ${route}`;
      assert.equal(r.status, 404, what);
      assert.deepEqual(errorOf(r), { message: "Mediapipe is retired", type: "invalid_request_error", param: route === "inference" ? "model" : null, code: "model_not_found" }, what);
    }
  }
});
