/**
 * Scaling out: graphserve replicas are stateless. Two server processes share
 * one model folder (read only: nothing in it changes), answer the same seed
 * with the same bytes whichever of them serves it, and one draining on
 * SIGTERM finishes every request it had accepted while the other keeps
 * serving.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { imageServable } from "./image-server.js";
import { snapshot } from "./helpers/snapshot.js";
import { call, eventually, spawnCli, type CliServer } from "./server-helpers.js";

async function replica(t: TestContext, modelDir: string): Promise<CliServer> {
  const r = await spawnCli(t, ["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_name", "tiny", "--model_path", modelDir, "--shutdown_grace_seconds", "30"]);
  await eventually(async () => (await call(r.url, "GET", "/v2/health/ready")).status === 200, "the replica to load its model", 30_000);
  return r;
}

const generate = (url: string, seed: number, extra: Record<string, unknown> = {}) =>
  call(url, "POST", "/v3/images/generations", { json: { model: "tiny", prompt: "three cats", size: "64x64", num_inference_steps: 2, rng_seed: seed, ...extra } });

const imageOf = (r: { body: unknown }) => (r.body as { data: { b64_json: string }[] }).data[0].b64_json;

test("two replicas on one read-only model folder: the same seed gives the same bytes on either; a draining replica loses no request", async (t) => {
  const dir = await imageServable();
  const before = snapshot(dir);
  const [a, b] = await Promise.all([replica(t, dir), replica(t, dir)]);

  // Requests spread over both replicas: each seed answered by each, identically.
  const seeds = [1, 2, 3, 4];
  const answers = await Promise.all(seeds.flatMap((seed) => [generate(a.url, seed), generate(b.url, seed)]));
  for (const r of answers) assert.equal(r.status, 200, r.text);
  for (let i = 0; i < seeds.length; i++) {
    assert.equal(imageOf(answers[2 * i]), imageOf(answers[2 * i + 1]), `seed ${seeds[i]}: replica A and B agree`);
  }
  assert.notEqual(imageOf(answers[0]), imageOf(answers[2]), "different seeds differ");

  // Replica A drains: the requests it accepted finish; new ones go to B.
  const finishedAt: number[] = [];
  const inFlight = [5, 6, 7].map((seed) => generate(a.url, seed, { size: "512x512", num_inference_steps: 600 }).then((r) => (finishedAt.push(performance.now()), r)));
  await new Promise((r) => setTimeout(r, 300));
  const sigterm = performance.now();
  a.proc.kill("SIGTERM");
  const afterSigterm = await generate(b.url, 9);
  assert.equal(afterSigterm.status, 200, "the other replica keeps serving");
  const drained = await Promise.all(inFlight);
  for (const r of drained) assert.equal(r.status, 200, `an accepted request finished during the drain: ${r.text}`);
  assert.ok(finishedAt.filter((at) => at > sigterm).length >= 2, "requests really were in flight (running or queued) at SIGTERM");
  assert.equal(await a.exit, 0, "the draining replica exits cleanly");
  await assert.rejects(generate(a.url, 10), "a drained replica takes no new request");

  b.proc.kill("SIGTERM");
  assert.equal(await b.exit, 0);
  assert.deepEqual(snapshot(dir), before, "the shared model folder is unchanged");
});
