/**
 * The README's worked example ("Writing a calculator"): PromptStyleCalculator,
 * loaded from its TypeScript source with --calculators_dir, in its example
 * graph served by the real server on a tiny model; and a graph that cannot
 * serve HTTP refused when it loads, not answered with 500s.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphError } from "../src/graph/diagnostics.js";
import { parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";
import { imageServable, tinyModel } from "./image-server.js";
import { ROOT, errorOf, start, tempDir, writeServable } from "./server-helpers.js";

const EXAMPLE_CALCULATORS = join(ROOT, "examples/calculators");
const EXAMPLE_GRAPH = join(ROOT, "examples/graphs/prompt-style.pbtxt");

test("the example graph serves generations with the prompt in the house style", async () => {
  const dir = tempDir();
  // As the README says: the example graph copied into the model's folder (here: models_path pointed at the shared tiny model).
  const graph = readFileSync(EXAMPLE_GRAPH, "utf8").replace('models_path: "./"', `models_path: "${await tinyModel()}"`);
  writeServable(dir, "styled", graph);
  const config = { model_config_list: [{ config: { name: "styled", base_path: "styled" } }, { config: { name: "plain", base_path: await imageServable() } }] };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const srv = await start({ configPath: join(dir, "config.json"), calculatorsDir: EXAMPLE_CALCULATORS });

  const generate = async (body: Record<string, unknown>) => {
    const r = await srv.request("POST", "/v3/images/generations", { json: { size: "64x64", num_inference_steps: 2, rng_seed: 11, ...body } });
    assert.equal(r.status, 200, r.text);
    return (r.body as { data: { b64_json: string }[] }).data[0].b64_json;
  };
  const styled = await generate({ model: "styled", prompt: "a lighthouse", negative_prompt: "people" });
  // The same seed through the plain graph with the prompt the calculator should have written: the same bytes.
  assert.equal(styled, await generate({ model: "plain", prompt: "a lighthouse, watercolour, soft light", negative_prompt: "people, blurry" }));
  assert.notEqual(styled, await generate({ model: "plain", prompt: "a lighthouse", negative_prompt: "people" }), "the prompt reached the model unstyled");

  // A bad prompt reaches the image generator unchanged and gets its 400, not a crash in the calculator.
  const bad = await srv.request("POST", "/v3/images/generations", { json: { model: "styled", prompt: 42 } });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(errorOf(bad).param, "prompt");
});

test("the example's own load-time check reports a bad template at its options", async () => {
  const registry = await CalculatorRegistry.withBuiltins();
  await registry.loadDirectory(EXAMPLE_CALCULATORS);
  const text = `input_stream: "JSON:request"
node {
  calculator: "PromptStyleCalculator"
  input_stream: "JSON:request"
  output_stream: "JSON:styled"
  node_options: { [type.googleapis.com/example.PromptStyleOptions] { template: "no placeholder" } }
}`;
  assert.throws(
    () => validateGraph(parseGraphText(text, "bad.pbtxt", registry.schema), registry),
    (e: unknown) => e instanceof GraphError && /bad\.pbtxt:6:\d+: .*template must contain "\{prompt\}"/.test(e.message),
  );
});

test("a graph without HTTP request and response streams is refused when it loads, saying why", async () => {
  const dir = tempDir();
  // Valid as a graph, but nothing carries a request in or an answer out.
  writeServable(dir, "no-http", `input_stream: "PROMPT:prompt"
output_stream: "PROMPT:styled"
node { calculator: "PassThroughCalculator" input_stream: "PROMPT:prompt" output_stream: "PROMPT:styled" }
`);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_config_list: [{ config: { name: "no-http", base_path: "no-http" } }] }));
  const srv = await start({ configPath: join(dir, "config.json") });
  const status = await srv.request("GET", "/v1/config");
  assert.match(status.text, /the graph cannot serve HTTP: a servable's graph needs an input_stream tagged HTTP_REQUEST_PAYLOAD .* and an output_stream tagged HTTP_RESPONSE_PAYLOAD/);
  assert.doesNotMatch(status.text, /"AVAILABLE"/);
  const r = await srv.request("POST", "/v3/anything", { json: { model: "no-http" } });
  assert.notEqual(r.status, 200);
  assert.ok(r.status < 500 || r.status === 503, `status ${r.status}: ${r.text}`);
  assert.match(errorOf(r).message, /cannot serve HTTP/);
});
