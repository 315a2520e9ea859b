/** GenerationSlots: first come, first served; a waiter that aborts leaves; the depth deltas always net to zero. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GenerationSlots } from "../calculators/image-gen/slots.js";

test("slots are handed out in arrival order and the depth deltas track the waiters", async () => {
  let depth = 0;
  const slots = new GenerationSlots(1, (d) => (depth += d));
  const first = await slots.acquire();
  const order: string[] = [];
  const b = slots.acquire().then((release) => (order.push("b"), release));
  const c = slots.acquire().then((release) => (order.push("c"), release));
  assert.equal(slots.waiting, 2);
  assert.equal(depth, 2);
  first();
  first(); // a second release is ignored, not a second free slot
  const releaseB = await b;
  assert.deepEqual(order, ["b"]);
  assert.equal(depth, 1);
  releaseB();
  (await c)();
  assert.deepEqual(order, ["b", "c"]);
  assert.equal(depth, 0);
  assert.equal(slots.waiting, 0);
  // The slot is free again, exactly once.
  const x = await slots.acquire();
  const y = slots.acquire();
  assert.equal(slots.waiting, 1, "the second waits: size 1");
  x();
  (await y)();
  assert.equal(depth, 0);
});

test("a waiter whose signal aborts leaves the queue with the signal's reason; the next one still gets the slot", async () => {
  let depth = 0;
  const slots = new GenerationSlots(1, (d) => (depth += d));
  const held = await slots.acquire();
  const ac = new AbortController();
  const gone = slots.acquire(ac.signal);
  const next = slots.acquire();
  ac.abort(new Error("client left"));
  await assert.rejects(gone, /client left/);
  assert.equal(slots.waiting, 1);
  assert.equal(depth, 1);
  held();
  (await next)();
  assert.equal(depth, 0);
  await assert.rejects(slots.acquire(AbortSignal.abort(new Error("already gone"))), /already gone/);
  assert.equal(depth, 0);
});

test("the estimated wait grows with the queue, in rounds of the slot count, from the mean hold time", async () => {
  const slots = new GenerationSlots(2);
  assert.equal(slots.estimatedWaitSeconds(), 0, "nothing measured yet");
  const r = await slots.acquire();
  await new Promise((resolve) => setTimeout(resolve, 30));
  r();
  const one = slots.estimatedWaitSeconds();
  assert.ok(one >= 0.02 && one < 1, `${one}`);
  const [a, b] = [await slots.acquire(), await slots.acquire()];
  const waiters = [slots.acquire(), slots.acquire(), slots.acquire()];
  assert.equal(slots.estimatedWaitSeconds(), 2 * one, "3 waiting on 2 slots: a newcomer waits two rounds");
  a();
  b();
  for (const w of waiters) (await w)();
});
