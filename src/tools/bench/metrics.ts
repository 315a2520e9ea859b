/**
 * The server's own view of queueing: graphserve exports the histogram
 * `graphserve_image_queue_wait_seconds{servable,node}`; a scrape before and
 * after a level gives the mean wait of the level's requests. Servers without
 * it (OVMS) or without /metrics give null, shown as "n/a".
 */

export interface QueueWaitTotals {
  readonly sum: number;
  readonly count: number;
}

// The label set runs to the last "}" of the line: quoted values may hold "}" or ",".
const SERIES = /^graphserve_image_queue_wait_seconds_(sum|count)\{(.*)\}\s+(\S+)$/gm;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/** Sum and count of the queue-wait histogram for `servable`, summed over its nodes; undefined when absent. */
export function parseQueueWait(text: string, servable: string): QueueWaitTotals | undefined {
  let sum = 0;
  let count = 0;
  let seen = false;
  for (const m of text.matchAll(SERIES)) {
    const labels = new Map([...m[2].matchAll(LABEL)].map((l) => [l[1], l[2].replace(/\\(.)/g, (_c, ch: string) => (ch === "n" ? "\n" : ch))]));
    if (labels.get("servable") !== servable) continue;
    seen = true;
    if (m[1] === "sum") sum += Number(m[3]);
    else count += Number(m[3]);
  }
  return seen ? { sum, count } : undefined;
}

/** GET {url}/metrics; undefined on any failure (metrics are optional, never fatal). */
export async function scrapeMetrics(url: string, headers: Record<string, string> = {}): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/metrics`, { headers, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return res.ok ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Mean queue wait (ms) between two scrapes, or null when either lacks the series or no request was counted. */
export function meanQueueWaitMs(before: string | undefined, after: string | undefined, servable: string): number | null {
  if (before === undefined || after === undefined) return null;
  const a = parseQueueWait(after, servable);
  if (a === undefined) return null;
  // The series appears with the servable's first request: absent before means it started at zero.
  const b = parseQueueWait(before, servable) ?? { sum: 0, count: 0 };
  const n = a.count - b.count;
  return n > 0 ? Math.round(((a.sum - b.sum) / n) * 1e6) / 1e3 : null; // ms, to the µs
}
