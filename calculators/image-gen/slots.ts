/**
 * Generation slots of one ImageGenCalculator node: as many as the backend
 * runs at once, handed out first come, first served. The server bounds how
 * many requests wait here (the node's `capacity`), so this queue is never
 * unbounded; a request whose client leaves while it waits gives its place up.
 * The same queue hands out the process's upload decoding turns (image-gen.ts).
 */

interface Waiter {
  readonly resolve: (release: () => void) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

export class GenerationSlots {
  private free: number;
  private readonly waiters: Waiter[] = [];
  /** Exponentially weighted mean of how long a slot is held, in ms (0 until one is released). */
  private meanHoldMs = 0;

  constructor(
    readonly size: number,
    /**
     * Told +1 / -1 as requests start and stop waiting: deltas, so slots of a
     * graph being replaced and of its successor can feed one gauge.
     */
    private readonly onDepthChange: (delta: number) => void = () => undefined,
  ) {
    this.free = size;
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once a slot is free; rejects with the signal's reason if it aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          this.onDepthChange(-1);
          reject(signal!.reason);
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.onDepthChange(1);
    });
  }

  /**
   * Seconds until a request arriving now would likely get a slot: the queue
   * ahead of it in rounds of `size`, times the mean hold time.
   */
  estimatedWaitSeconds(): number {
    const rounds = Math.floor(this.waiters.length / this.size) + 1;
    return (rounds * this.meanHoldMs) / 1000;
  }

  private releaser(): () => void {
    const since = performance.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const held = performance.now() - since;
      this.meanHoldMs = this.meanHoldMs === 0 ? held : 0.8 * this.meanHoldMs + 0.2 * held;
      const next = this.waiters.shift();
      if (next === undefined) {
        this.free++;
        return;
      }
      next.signal?.removeEventListener("abort", next.onAbort);
      this.onDepthChange(-1);
      next.resolve(this.releaser());
    };
  }
}
