/**
 * Engine overhead, in one process on one core:
 *  (a) a chain of N pass-through nodes vs the same work as plain async
 *      function calls: the scheduler's cost per node invocation, also with
 *      per-node statistics on, as a servable runs it;
 *  (b) requests per second of a 3-node graph through GraphPool, with a
 *      graph per request and with persistent instances (graph queue).
 * Run with `npm run bench:engine` (node --expose-gc). Goals: ≤ 5 µs per node
 * invocation, ≥ 100k runs/s.
 */
import { performance } from "node:perf_hooks";
import { Calculator, type CalculatorContext, type CalculatorContract } from "../src/index.js";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphRun } from "../src/engine/graph-run.js";
import { GraphPool } from "../src/engine/graph-pool.js";
import { NodeStatsCollector } from "../src/engine/node-stats.js";
import { parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";

/** The same work a pass-through node does, as a node. */
export class BenchIncrementCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { inputs: { "": {} }, outputs: { "": {} }, timestampOffset: 0 };
  override process(ctx: CalculatorContext): void {
    ctx.outputs.add(0, (ctx.inputs.value(0) as number) + 1);
  }
}

function buildGraph(text: string, registry: CalculatorRegistry) {
  return validateGraph(parseGraphText(text, "bench.pbtxt", registry.schema), registry);
}

/** The same work with an async process: every call parks the node on a Promise. */
export class BenchAsyncIncrementCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { inputs: { "": {} }, outputs: { "": {} }, timestampOffset: 0 };
  override async process(ctx: CalculatorContext): Promise<void> {
    ctx.outputs.add(0, (ctx.inputs.value(0) as number) + 1);
  }
}

const gc = (globalThis as { gc?: () => void }).gc;

function chainText(n: number, calculator: string): string {
  const lines = ['input_stream: "s0"', `output_stream: "s${n}"`];
  for (let i = 0; i < n; i++) lines.push(`node { calculator: "${calculator}" input_stream: "s${i}" output_stream: "s${i + 1}" }`);
  return lines.join("\n");
}

/** Best-of-`rounds` time per iteration of `body(iters)`, in µs. */
async function measure(rounds: number, iters: number, body: (iters: number) => Promise<void> | void): Promise<number> {
  await body(Math.min(iters, 2000)); // warm-up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    gc?.();
    const t0 = performance.now();
    await body(iters);
    const t = ((performance.now() - t0) * 1000) / iters;
    if (t < best) best = t;
  }
  return best;
}

async function main(): Promise<void> {
  const registry = await CalculatorRegistry.withBuiltins();
  registry.register(BenchIncrementCalculator, import.meta.url);
  registry.register(BenchAsyncIncrementCalculator, import.meta.url);
  const rows: [string, string, string][] = [];

  // (a) chain overhead
  const N = 50;
  const PACKETS = 20_000;
  const step = async (x: number): Promise<number> => x + 1;
  const baseline = await measure(5, PACKETS, async (iters) => {
    for (let p = 0; p < iters; p++) {
      let v = p;
      for (let i = 0; i < N; i++) v = await step(v);
      if (v !== p + N) throw new Error("bad");
    }
  });
  // The last case is what a servable runs: per-node statistics on (the graph view's numbers).
  const cases = [
    { calc: "BenchIncrementCalculator", stats: false },
    { calc: "PassThroughCalculator", stats: false },
    { calc: "PassThroughCalculator", stats: true },
  ];
  for (const { calc, stats } of cases) {
    const graph = buildGraph(chainText(N, calc), registry);
    const run = new GraphRun(graph, stats ? { stats: new NodeStatsCollector(graph.nodes.length) } : {});
    let last = 0;
    run.observe(`s${N}`, (p) => (last = p.value as number));
    run.start();
    let ts = 0;
    const perPacket = await measure(5, PACKETS, (iters) => {
      for (let p = 0; p < iters; p++) run.addPacket("s0", p, ts++);
    });
    void last;
    run.closeAllInputStreams();
    await run.waitUntilDone();
    const overhead = (perPacket - baseline) / N;
    rows.push([`chain of ${N} ${calc}${stats ? ", statistics on" : ""}`, `${(perPacket / N).toFixed(3)} µs/node`, `overhead vs async fn: ${overhead.toFixed(3)} µs/node invocation`]);
  }
  {
    // Async process: one packet at a time through the chain, awaiting each.
    const graph = buildGraph(chainText(N, "BenchAsyncIncrementCalculator"), registry);
    const run = new GraphRun(graph);
    run.start();
    let ts = 0;
    const perPacket = await measure(5, PACKETS / 4, async (iters) => {
      for (let p = 0; p < iters; p++) {
        run.addPacket("s0", p, ts++);
        await run.waitUntilIdle();
      }
    });
    run.closeAllInputStreams();
    await run.waitUntilDone();
    const overhead = (perPacket - baseline) / N;
    rows.push([`chain of ${N} async-process nodes`, `${(perPacket / N).toFixed(3)} µs/node`, `overhead vs async fn: ${overhead.toFixed(3)} µs/node invocation`]);
  }
  rows.push([`baseline: ${N} awaited async fns`, `${(baseline / N).toFixed(3)} µs/call`, ""]);

  // (b) 3-node graph runs/s
  const three = buildGraph(chainText(3, "PassThroughCalculator"), registry);
  const CONCURRENCY = 64;
  for (const [label, size] of [
    ["graph per request", 0],
    ["pooled (graph queue 1)", 1],
  ] as const) {
    const runner = new GraphPool(three, { graphQueueSize: size });
    const RUNS = 100_000;
    const seq = await measure(3, RUNS / 2, async (iters) => {
      for (let i = 0; i < iters; i++) await runner.run({ s0: i });
    });
    const par = await measure(3, RUNS, async (iters) => {
      const batch: Promise<unknown>[] = new Array(CONCURRENCY);
      for (let i = 0; i < iters; i += CONCURRENCY) {
        for (let k = 0; k < CONCURRENCY; k++) batch[k] = runner.run({ s0: i + k });
        await Promise.all(batch);
      }
    });
    await runner.close();
    rows.push([`3-node graph, ${label}`, `${Math.round(1e6 / seq).toLocaleString("en-US")} runs/s sequential`, `${Math.round(1e6 / par).toLocaleString("en-US")} runs/s, ${CONCURRENCY} in flight`]);
  }

  const w = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: readonly string[]) => `| ${r.map((c, i) => c.padEnd(w[i])).join(" | ")} |`;
  console.log(line(["benchmark", "result", "notes"]));
  console.log(`|${w.map((n) => "-".repeat(n + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
  console.log(`\nnode ${process.version}, ${gc ? "with" : "without"} --expose-gc; goals: ≤ 5 µs overhead per node invocation, ≥ 100,000 runs/s.`);
}

await main();
