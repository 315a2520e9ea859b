/**
 * Generation slots of one ImageGenCalculator node: as many as the backend
 * runs at once, handed out first come, first served. The server bounds how
 * many requests wait here (the node's `capacity`), so this queue is never
 * unbounded; a request whose client leaves while it waits gives its place up.
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
  /** When each slot now held was taken (performance.now() ms). */
  private readonly holders = new Set<{ readonly since: number }>();
  /** Exponentially weighted mean of how long a generation holds a slot, in ms (0 until one finishes). */
  private meanHoldMs = 0;

  constructor(
    readonly size: number,
    /**
     * Told +1 / -1 as requests start and stop waiting: deltas, so slots of a
     * graph being replaced and of its successor can feed one gauge.
     */
    private readonly onDepthChange: (delta: number) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
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
      return Promise.resolve(this.releaser(signal));
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
   * Seconds until a request arriving now would likely get a slot, from the
   * work queued ahead of it: what the generations running now have left,
   * then every waiter in turn taking the slot that frees first, each for the
   * mean hold time. Before any generation has finished, the longest running
   * one's time so far stands in for the mean (a generation takes at least
   * that long); after, one slow generation does not speak for the queue.
   */
  estimatedWaitSeconds(): number {
    const now = this.now();
    let longest = 0;
    for (const h of this.holders) longest = Math.max(longest, now - h.since);
    const perRequest = this.meanHoldMs > 0 ? this.meanHoldMs : longest;
    // When each slot frees: now for a free one, after its expected remaining time for a held one.
    const freeAt: number[] = [];
    for (const h of this.holders) freeAt.push(Math.max(0, perRequest - (now - h.since)));
    while (freeAt.length < this.size) freeAt.push(0);
    for (let i = 0; i < this.waiters.length; i++) {
      const first = freeAt.indexOf(Math.min(...freeAt));
      freeAt[first] += perRequest;
    }
    return Math.min(...freeAt) / 1000;
  }

  private releaser(signal: AbortSignal | undefined): () => void {
    const holder = { since: this.now() };
    this.holders.add(holder);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.holders.delete(holder);
      // A generation cut short (its client left) says nothing about how long one takes.
      if (signal?.aborted !== true) {
        const held = this.now() - holder.since;
        this.meanHoldMs = this.meanHoldMs === 0 ? held : 0.8 * this.meanHoldMs + 0.2 * held;
      }
      const next = this.waiters.shift();
      if (next === undefined) {
        this.free++;
        return;
      }
      next.signal?.removeEventListener("abort", next.onAbort);
      this.onDepthChange(-1);
      next.resolve(this.releaser(next.signal));
    };
  }
}
