/**
 * The bytes of request bodies the server holds at once, all requests
 * together. A request's body stays in memory (raw and parsed) until its
 * response closes, so that is when its bytes are given back; a request that
 * would pass the total is refused instead of buffered.
 */
import type { ServerResponse } from "node:http";

/** One response's share of the budget. */
export interface HeldBytes {
  /** Takes `bytes` more for this response; false (nothing taken) when the total would pass the budget. */
  take(bytes: number): boolean;
}

export class BodyBudget {
  #used = 0;

  constructor(readonly total: number) {}

  get used(): number {
    return this.#used;
  }

  /** The share of `res`; whatever it takes is given back when `res` closes. */
  hold(res: ServerResponse): HeldBytes {
    let mine = 0;
    // Closed already (the client left): nothing will be read, and no "close" would give bytes back.
    if (res.closed) return { take: () => false };
    res.once("close", () => {
      this.#used -= mine;
      mine = 0;
    });
    return {
      take: (bytes: number): boolean => {
        if (this.#used + bytes > this.total) return false;
        this.#used += bytes;
        mine += bytes;
        return true;
      },
    };
  }
}
