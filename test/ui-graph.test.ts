/**
 * The graph view in a real browser: every node of the servable's graph.pbtxt
 * is drawn and reachable by its accessible name, its details open from the
 * keyboard, and a request shows up in the node's live count.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { browserSkip, openBrowser, waitUntil, type BrowserSession } from "./helpers/browser.js";
import { startConfiguredServer, startDemoServer, writePipelineConfig, type GraphserveProcess } from "./helpers/demo-server.js";
import { graphView, parseNodeStats, playground } from "./helpers/ui.js";
import { parseGraphText } from "../src/graph/load.js";
import { Schema } from "../src/graph/schema.js";

const schema = new Schema();

/** Node names and calculators as graph.pbtxt declares them (parsed here, independently of the server's view). */
async function declaredNodes(server: GraphserveProcess, servable: string): Promise<{ name: string; calculator: string }[]> {
  const view = await server.graph(servable);
  const nodes = parseGraphText(view.pbtxt, `${servable}/graph.pbtxt`, schema).config.node.map((n) => ({ name: n.name, calculator: n.calculator }));
  assert.ok(nodes.length > 0 && nodes.every((n) => n.name !== ""), `every node of ${servable} is named`);
  return nodes;
}

async function openGraph(session: BrowserSession, server: GraphserveProcess, servable: string) {
  await session.page.goto(`${server.url}/#/graph/${encodeURIComponent(servable)}`);
  const g = graphView(session.page, servable);
  await g.heading.waitFor();
  await g.drawing.waitFor();
  return g;
}

async function generate(server: GraphserveProcess, model: string, params: Record<string, unknown> = {}): Promise<void> {
  const res = await fetch(`${server.url}/v3/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "counted", size: "256x256", num_inference_steps: 3, ...params }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
}

test("ui-graph: the demo's graph, its node details from the keyboard, and live counts", { skip: browserSkip, timeout: 60_000 }, async (t) => {
  const server = await startDemoServer(t);
  const session = await openBrowser(t);
  const nodes = await declaredNodes(server, "demo");
  // The header's Graph link leads to the selected model's graph.
  await session.page.goto(`${server.url}/#/`);
  const ui = playground(session.page);
  await waitUntil(() => ui.model.inputValue(), (v) => v === "demo", 'the Model select to offer "demo"');
  await ui.graphLink.click();
  await graphView(session.page, "demo").heading.waitFor();
  assert.equal(new URL(session.page.url()).hash, "#/graph/demo");

  const g = await openGraph(session, server, "demo");
  for (const n of nodes) await g.node(n.name, n.calculator).waitFor();

  // Streams are labelled with their name and TAG:index.
  await g.drawing.getByText(/HTTP_REQUEST_PAYLOAD:0/).first().waitFor();
  await g.drawing.getByText(/\binput\b/).first().waitFor();

  // Details from the keyboard: focus the node, press Enter.
  const node = g.node("ImageGenExecutor", "ImageGenCalculator");
  await node.focus();
  await session.page.keyboard.press("Enter");
  await g.details.waitFor();
  const details = (await g.details.textContent()) ?? "";
  assert.match(details, /models_path/);
  assert.match(details, /max_resolution/);
  assert.match(details, /1024x1024/);
  assert.match(details, /HTTP_REQUEST_PAYLOAD/, "the details list the node's ports");

  // Live: a request shows in the node's count and the Live status moves on.
  const before = await waitUntil(async () => parseNodeStats((await node.textContent()) ?? ""), (s) => s !== undefined, 'the node to show "<n> done · … · <n> active"');
  const liveBefore = (await g.live.textContent()) ?? "";
  await generate(server, "demo");
  const after = await waitUntil(
    async () => parseNodeStats((await node.textContent()) ?? ""),
    (s) => s !== undefined && s.done > before!.done,
    "the node's done count to grow after a request",
  );
  assert.equal(after!.done, before!.done + 1);
  await waitUntil(async () => (await g.live.textContent()) ?? "", (s) => s !== liveBefore && s !== "", "the Live status to update");
  const path = await session.screenshot("live counts");
  t.diagnostic(`screenshot: ${path}`);
});

test("ui-graph: the three-node pipeline graph, served under a name with a slash", { skip: browserSkip, timeout: 60_000 }, async (t) => {
  const name = "pipelines/sd";
  const server = await startConfiguredServer(t, ["--config_path", await writePipelineConfig(name)]);
  const session = await openBrowser(t);
  const nodes = await declaredNodes(server, name);
  assert.deepEqual(nodes.map((n) => n.name), ["RequestParts", "ImageGenExecutor", "Encoder"]);
  const g = await openGraph(session, server, name);
  for (const n of nodes) await g.node(n.name, n.calculator).waitFor();
  // Edges between nodes carry their streams' tags.
  for (const label of ["JSON:0", "IMAGES:0", "HTTP_RESPONSE_PAYLOAD:0"]) await g.drawing.getByText(new RegExp(label)).first().waitFor();

  await g.node("Encoder", "Base64EncoderCalculator").click();
  await g.details.waitFor();
  assert.match((await g.details.textContent()) ?? "", /IMAGES/);

  const encoder = g.node("Encoder", "Base64EncoderCalculator");
  const before = await waitUntil(async () => parseNodeStats((await encoder.textContent()) ?? ""), (s) => s !== undefined, "the Encoder's live stats");
  await generate(server, name);
  await waitUntil(async () => parseNodeStats((await encoder.textContent()) ?? ""), (s) => s !== undefined && s.done > before!.done, "the Encoder's done count to grow");

  // A long request (this graph answers unstreamed) shows as active on its node while it runs.
  const imageGen = g.node("ImageGenExecutor", "ImageGenCalculator");
  await imageGen.click();
  await waitUntil(async () => (await g.details.textContent()) ?? "", (s) => /models_path/.test(s), "the details to switch to ImageGenExecutor");
  const longStart = Date.now();
  // Seconds with the trained demo model (512x512, 500 steps); 1024x1024 x3 would outlast the test.
  const long = generate(server, name, { size: "512x512", num_inference_steps: 500, n: 1 });
  await waitUntil(async () => parseNodeStats((await imageGen.textContent()) ?? ""), (s) => s?.active === 1, "ImageGenExecutor to show 1 active", 30_000);
  t.diagnostic(`screenshot: ${await session.screenshot("running")}`);
  await long;
  t.diagnostic(`the long request took ${Date.now() - longStart} ms`);
  await waitUntil(async () => parseNodeStats((await imageGen.textContent()) ?? ""), (s) => s?.active === 0 && s.done === 2, "ImageGenExecutor to show 2 done, 0 active");
});
