import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphRunner } from "../src/engine/graph-runner.js";
import { GraphError } from "../src/graph/diagnostics.js";
import { loadGraphFile, parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";

const repo = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

// The README's worked example, loaded from its TypeScript source as --calculators_dir would.
const registry = await CalculatorRegistry.withBuiltins();
await registry.loadDirectory(repo("examples/calculators"));

test("the README's example calculator runs in its example graph", async () => {
  const graph = validateGraph(await loadGraphFile(repo("examples/graphs/prompt-style.pbtxt"), registry.schema), registry);
  const runner = new GraphRunner(graph, registry);
  try {
    const out = await runner.run({ prompt: { prompt: "a lighthouse", negative_prompt: "people" } });
    assert.deepEqual(out.styled.map((p) => p.value), [
      { prompt: "a lighthouse, watercolour, soft light", negative_prompt: "people, blurry" },
    ]);
  } finally {
    await runner.close();
  }
});

test("the example's own load-time check reports a bad template at its options", () => {
  const text = `input_stream: "PROMPT:p"
node {
  calculator: "PromptStyleCalculator"
  input_stream: "PROMPT:p"
  output_stream: "PROMPT:q"
  node_options: { [type.googleapis.com/example.PromptStyleOptions] { template: "no placeholder" } }
}`;
  assert.throws(
    () => validateGraph(parseGraphText(text, "bad.pbtxt", registry.schema), registry),
    (e: unknown) => e instanceof GraphError && /bad\.pbtxt:6:\d+: .*template must contain "\{prompt\}"/.test(e.message),
  );
});
