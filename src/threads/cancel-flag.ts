/**
 * A cancel flag both sides of a thread boundary see at once: one Int32 cell
 * of a SharedArrayBuffer (its own, or a slot of a larger control block),
 * raised by the owner, read by the worker between steps. Raising wakes a
 * thread waiting with Atomics.wait on `wake` (the flag's own cell by default).
 */
export class CancelFlag {
  private readonly cells: Int32Array;

  constructor(
    buffer: SharedArrayBuffer = new SharedArrayBuffer(4),
    private readonly index = 0,
  ) {
    this.cells = new Int32Array(buffer);
  }

  /** What to send to the other thread. */
  get buffer(): SharedArrayBuffer {
    return this.cells.buffer as SharedArrayBuffer;
  }

  get raised(): boolean {
    return Atomics.load(this.cells, this.index) !== 0;
  }

  raise(wake = this.index): void {
    Atomics.store(this.cells, this.index, 1);
    Atomics.notify(this.cells, wake);
  }
}
