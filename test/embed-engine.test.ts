/**
 * The README's embedding example (examples/embed-engine.ts): it runs through
 * the public `graphserve/engine` entry, and the README shows that very file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { shout } from "../examples/embed-engine.js";
import { ROOT } from "./server-helpers.js";

test("the embedding example runs a graph through graphserve/engine", async () => {
  assert.deepEqual(await shout(["hello", "graph"]), ["HELLO", "GRAPH"]);
});

test("the README shows the example as it is compiled and run here", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const source = readFileSync(join(ROOT, "examples/embed-engine.ts"), "utf8");
  assert.ok(readme.includes("```ts\n" + source + "```"), "README's embedding example differs from examples/embed-engine.ts");
});
