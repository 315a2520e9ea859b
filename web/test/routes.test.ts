import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRoute, routeHash } from "../src/routes.js";

describe("hash routes", () => {
  it("parses the playground and graph routes, names with slashes and spaces included", () => {
    assert.deepEqual(parseRoute(""), { page: "playground" });
    assert.deepEqual(parseRoute("#/"), { page: "playground" });
    assert.deepEqual(parseRoute("#/graph/demo"), { page: "graph", name: "demo" });
    assert.deepEqual(parseRoute(routeHash({ page: "graph", name: "org/sd turbo" })), { page: "graph", name: "org/sd turbo" });
    assert.equal(routeHash({ page: "graph", name: "org/sd turbo" }), "#/graph/org%2Fsd%20turbo");
  });

  it("falls back to the playground for unknown or malformed hashes", () => {
    assert.deepEqual(parseRoute("#/graph/"), { page: "playground" });
    assert.deepEqual(parseRoute("#/graph/%E0%A4%A"), { page: "playground" });
    assert.deepEqual(parseRoute("#/nowhere"), { page: "playground" });
  });
});
