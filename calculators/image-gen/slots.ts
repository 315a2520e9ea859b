/**
 * Generation slots of one ImageGenCalculator node: as many as the backend
 * runs at once, handed out first come, first served. The server bounds how
 * many requests wait here (the node's `capacity`), so this queue is never
 * unbounded; a request whose client leaves while it waits gives its place up.
 * The same queue hands out the process's upload decoding turns (image-gen.ts).
 */

import { AbortableSemaphore } from "../../src/threads/index.js";

export class GenerationSlots {
  /** The slots (their numbers), in a first-come-first-served queue. */
  private readonly queue: AbortableSemaphore<number>;
  /** When each slot now held was handed over (performance.now() ms), by slot. */
  private readonly heldSince = new Map<number, number>();
  /** Exponentially weighted mean of how long a generation holds a slot, in ms (0 until one finishes). */
  private meanHoldMs = 0;

  constructor(
    readonly size: number,
    /**
     * Told +1 / -1 as requests start and stop waiting: deltas, so slots of a
     * graph being replaced and of its successor can feed one gauge.
     */
    onDepthChange: (delta: number) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.queue = new AbortableSemaphore(
      Array.from({ length: size }, (_, i) => i),
      { onQueueChange: onDepthChange, onHandOver: (slot) => this.heldSince.set(slot, this.now()) },
    );
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.queue.waiting;
  }

  /** Resolves with a release function once a slot is free; rejects with the signal's reason if it aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    return this.queue.acquire(signal).then((slot) => this.releaser(slot, signal));
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
    for (const since of this.heldSince.values()) longest = Math.max(longest, now - since);
    const perRequest = this.meanHoldMs > 0 ? this.meanHoldMs : longest;
    // When each slot frees: now for a free one, after its expected remaining time for a held one.
    const freeAt: number[] = [];
    for (const since of this.heldSince.values()) freeAt.push(Math.max(0, perRequest - (now - since)));
    while (freeAt.length < this.size) freeAt.push(0);
    for (let i = 0; i < this.queue.waiting; i++) {
      const first = freeAt.indexOf(Math.min(...freeAt));
      freeAt[first] += perRequest;
    }
    return Math.min(...freeAt) / 1000;
  }

  private releaser(slot: number, signal: AbortSignal | undefined): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const held = this.now() - (this.heldSince.get(slot) ?? this.now());
      this.heldSince.delete(slot);
      // A generation cut short (its client left) says nothing about how long one takes.
      if (signal?.aborted !== true) this.meanHoldMs = this.meanHoldMs === 0 ? held : 0.8 * this.meanHoldMs + 0.2 * held;
      this.queue.release(slot);
    };
  }
}
