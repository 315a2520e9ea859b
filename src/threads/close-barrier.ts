/**
 * One close task per thread. A pool hands a task to whichever thread is
 * free, so "close everything" sent N times could land twice on one thread
 * and never on another; instead every close task blocks on a shared barrier
 * until all N have arrived, which forces one per thread. A thread stuck in a
 * task cannot arrive: the others give up waiting after `waitMs`.
 */

/** Main side: runs `task(barrier)` once per thread and settles them all. */
export function onEveryThread<R>(threads: number, task: (barrier: SharedArrayBuffer) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const barrier = new SharedArrayBuffer(4);
  return Promise.allSettled(Array.from({ length: threads }, () => task(barrier)));
}

/** Worker side: arrives at the barrier, then holds this thread until all `parties` have (or `waitMs` passed). */
export function awaitEveryThread(barrier: SharedArrayBuffer, parties: number, waitMs: number): void {
  const arrived = new Int32Array(barrier);
  Atomics.add(arrived, 0, 1);
  Atomics.notify(arrived, 0);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const n = Atomics.load(arrived, 0);
    const left = deadline - Date.now();
    if (n >= parties || left <= 0) return;
    Atomics.wait(arrived, 0, n, left);
  }
}
