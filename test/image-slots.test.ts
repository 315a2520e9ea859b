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

test("the estimated wait is the work queued ahead: what the running generations have left, then each waiter for the mean hold", async () => {
  let now = 0;
  const slots = new GenerationSlots(2, undefined, () => now);
  assert.equal(slots.estimatedWaitSeconds(), 0, "a free slot: no wait");
  const a = await slots.acquire();
  const ac = new AbortController();
  const b = await slots.acquire(ac.signal);
  const waiters = [slots.acquire(), slots.acquire(), slots.acquire()];
  now = 5000;
  // Nothing has finished yet: the running ones have taken 5 s so far, so each waiter counts 5 s; the newcomer is fourth on two slots.
  assert.equal(slots.estimatedWaitSeconds(), 5);
  now = 6000;
  a(); // held 6 s: the mean; the first waiter takes the slot
  // b has run 6 s (≈ done), the first waiter has 6 s left; two more waiters take 6 s each on whichever slot frees first.
  assert.equal(slots.estimatedWaitSeconds(), 6);
  now = 6500;
  ac.abort(new Error("client left"));
  b(); // cut short after 6.5 s: not a generation's length, the mean stays 6 s (counted, it would be 6.1 s)
  // Running since 6000 (5.5 s left) and 6500 (6 s); the last waiter follows the first: the newcomer gets the 6 s one.
  assert.equal(slots.estimatedWaitSeconds(), 6);
  for (const w of waiters) (await w)();
  assert.equal(slots.estimatedWaitSeconds(), 0);
});
