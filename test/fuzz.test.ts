import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

test("thousands of mutated graph files: no crash, no hang, every failure located", { timeout: 120_000 }, async () => {
  const numRuns = Number(process.env.FUZZ_RUNS ?? 4000);
  const seed = Number(process.env.FUZZ_SEED ?? 20261124);
  const worker = new Worker(new URL("./fixtures/fuzz-worker.js", import.meta.url), {
    workerData: { seedDirs: [root("graphs"), root("test/fixtures/graphs")], numRuns, seed },
  });
  // A hung parser blocks only the worker; this limit ends it.
  const limit = setTimeout(() => void worker.terminate(), 90_000);
  try {
    const result = await new Promise<{ accepted: number; rejected: number; seeds: number }>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`fuzz worker stopped (exit ${code}) before finishing: a hang?`)));
    });
    assert.ok(result.seeds >= 4, `expected several seed graphs, found ${result.seeds}`);
    assert.equal(result.accepted + result.rejected, numRuns);
    // Both outcomes must occur, or the mutations are not exercising anything.
    assert.ok(result.rejected > numRuns / 10, `only ${result.rejected} rejections`);
    assert.ok(result.accepted > 0, "no mutated graph was accepted");
  } finally {
    clearTimeout(limit);
    await worker.terminate();
  }
});
