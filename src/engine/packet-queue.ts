/**
 * The packet queue of one node input. A ring buffer rather than an array with
 * shift(): shift is O(n) and the queue is touched on every packet.
 */
import type { Packet } from "./calculator.js";

export class PacketQueue {
  private items: (Packet | undefined)[] = new Array(4);
  private head = 0;
  private mask = 3;
  size = 0;
  /** Throttling limit (graph max_queue_size; deadlock relief raises it). */
  limit: number;
  /** Whether this queue currently counts as full for its ancestor sources. */
  full = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  push(p: Packet): void {
    if (this.size > this.mask) this.grow();
    this.items[(this.head + this.size) & this.mask] = p;
    this.size++;
  }

  /** The oldest packet; only call when size > 0. */
  peek(): Packet {
    return this.items[this.head] as Packet;
  }

  /** Removes and returns the oldest packet; only call when size > 0. */
  shift(): Packet {
    const p = this.items[this.head] as Packet;
    this.items[this.head] = undefined; // don't keep values alive
    this.head = (this.head + 1) & this.mask;
    this.size--;
    return p;
  }

  /** The i-th oldest packet (0 = peek()); only call with i < size. */
  at(i: number): Packet {
    return this.items[(this.head + i) & this.mask] as Packet;
  }

  /** Drops the packets older than `ts` (FixedSizeInputStreamHandler's surplus); returns how many. */
  dropBefore(ts: number): number {
    let n = 0;
    while (this.size > 0 && (this.items[this.head] as Packet).timestamp < ts) {
      this.shift();
      n++;
    }
    return n;
  }

  clear(): void {
    while (this.size > 0) this.shift();
  }

  private grow(): void {
    const cap = this.mask + 1;
    const next: (Packet | undefined)[] = new Array(cap * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) & this.mask];
    this.items = next;
    this.head = 0;
    this.mask = cap * 2 - 1;
  }
}
