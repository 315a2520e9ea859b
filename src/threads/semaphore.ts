/**
 * A first-come-first-served queue for a fixed set of things (generation
 * slots, pipeline instances): acquire() resolves with one as soon as it is
 * free, in arrival order; a waiter whose signal aborts leaves the queue at
 * once, rejected with `abortError(reason)` (the signal's reason by default).
 */
export interface SemaphoreOptions<T = unknown> {
  /** Told +1 / -1 as waiters join and leave the queue (a depth gauge). */
  readonly onQueueChange?: (delta: number) => void;
  /** What a waiter whose signal aborted is rejected with. */
  readonly abortError?: (reason: unknown) => unknown;
  /** Called the moment an item is handed to an acquirer (before its promise settles): bookkeeping that must not lag a microtask. */
  readonly onHandOver?: (item: T) => void;
}

interface Waiter<T> {
  readonly resolve: (item: T) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

export class AbortableSemaphore<T> {
  private readonly free: T[];
  private readonly waiters: Waiter<T>[] = [];
  private readonly onQueueChange: (delta: number) => void;
  private readonly abortError: (reason: unknown) => unknown;
  private readonly onHandOver: (item: T) => void;

  constructor(items: Iterable<T>, opts: SemaphoreOptions<T> = {}) {
    this.free = [...items];
    this.onQueueChange = opts.onQueueChange ?? (() => undefined);
    this.abortError = opts.abortError ?? ((reason) => reason);
    this.onHandOver = opts.onHandOver ?? (() => undefined);
  }

  /** Acquirers waiting. */
  get waiting(): number {
    return this.waiters.length;
  }

  acquire(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(this.abortError(signal.reason));
    if (this.waiters.length === 0 && this.free.length > 0) {
      const item = this.free.shift()!;
      this.onHandOver(item);
      return Promise.resolve(item);
    }
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i < 0) return;
          this.waiters.splice(i, 1);
          this.onQueueChange(-1);
          reject(this.abortError(signal!.reason));
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.onQueueChange(1);
    });
  }

  /** Gives `item` back: to the longest waiter, else to the free set. */
  release(item: T): void {
    const next = this.waiters.shift();
    if (next === undefined) {
      this.free.push(item);
      return;
    }
    next.signal?.removeEventListener("abort", next.onAbort);
    this.onQueueChange(-1);
    this.onHandOver(item);
    next.resolve(item);
  }

  /** Rejects every waiter with `error` (shutting down). */
  rejectAll(error: unknown): void {
    for (const w of this.waiters.splice(0)) {
      w.signal?.removeEventListener("abort", w.onAbort);
      this.onQueueChange(-1);
      w.reject(error);
    }
  }
}
