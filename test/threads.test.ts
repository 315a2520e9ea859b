/** src/threads: the abortable semaphore and the cancel flag, on their own. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AbortableSemaphore, CancelFlag } from "../src/threads/index.js";

test("AbortableSemaphore: FIFO hand-over, an aborting waiter leaves with abortError, rejectAll empties the queue", async () => {
  const deltas: number[] = [];
  const sem = new AbortableSemaphore(["a"], { onQueueChange: (d) => deltas.push(d), abortError: (reason) => new Error(`cancelled: ${String(reason)}`) });
  assert.equal(await sem.acquire(), "a");
  const ac = new AbortController();
  const second = sem.acquire();
  const leaving = sem.acquire(ac.signal);
  const third = sem.acquire();
  assert.equal(sem.waiting, 3);
  ac.abort("client left");
  await assert.rejects(leaving, { message: "cancelled: client left" });
  sem.release("a");
  assert.equal(await second, "a", "the longest waiter gets it");
  sem.rejectAll(new Error("disposed"));
  await assert.rejects(third, { message: "disposed" });
  await assert.rejects(sem.acquire(AbortSignal.abort("gone")), { message: "cancelled: gone" }, "an aborted signal never queues");
  assert.equal(sem.waiting, 0);
  assert.equal(deltas.reduce((a, b) => a + b, 0), 0, "depth deltas net to zero");
});

test("CancelFlag: a cell of a control block, raised on one side, seen on the other", () => {
  const control = new SharedArrayBuffer(4 * 4);
  const owner = new CancelFlag(control, 2);
  const worker = new CancelFlag(owner.buffer, 2);
  assert.equal(worker.raised, false);
  owner.raise(3);
  assert.equal(worker.raised, true);
  assert.deepEqual([...new Int32Array(control)], [0, 0, 1, 0], "only its own cell");
});
