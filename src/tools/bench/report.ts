/** The bench report as a terminal table (one row per concurrency level) or one JSON document. */
import type { BenchReport, LevelReport, Progress } from "./run.js";

/** "429:3 network:1", or "-" when there were none. */
export function formatErrors(errors: Readonly<Record<string, number>>): string {
  const parts = Object.entries(errors).map(([k, n]) => `${k}:${n}`);
  return parts.length === 0 ? "-" : parts.join(" ");
}

const ms = (v: number | undefined | null) => (v === undefined || v === null ? "-" : v.toFixed(1));

function row(l: LevelReport, stream: boolean): string[] {
  const cells = [
    String(l.concurrency),
    String(l.requests),
    String(l.ok),
    formatErrors(l.errors),
    l.durationS.toFixed(2),
    l.throughput.requestsPerS.toFixed(2),
    l.throughput.imagesPerS.toFixed(2),
    ms(l.latencyMs?.p50),
    ms(l.latencyMs?.p90),
    ms(l.latencyMs?.p99),
    ms(l.latencyMs?.max),
  ];
  if (stream) cells.push(ms(l.firstPartialMs?.p50), ms(l.firstPartialMs?.p99));
  cells.push(l.queueWaitMs === null ? "n/a" : l.queueWaitMs.toFixed(1));
  return cells;
}

/** The table's lines: a heading, the column names, one row per level. */
export function formatTable(r: BenchReport): string[] {
  const head = ["conc", "reqs", "ok", "errors", "time s", "req/s", "img/s", "p50 ms", "p90 ms", "p99 ms", "max ms"];
  if (r.stream) head.push("1st partial p50", "1st partial p99");
  head.push("queue wait ms");
  const rows = [head, ...r.levels.map((l) => row(l, r.stream))];
  const widths = head.map((_, i) => Math.max(...rows.map((cells) => cells[i].length)));
  // Numbers read best right-aligned; the errors column is text.
  const line = (cells: string[]) => cells.map((c, i) => (i === 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd();
  const what = [`model ${r.model}`, `size ${r.size ?? "default"}`, `steps ${r.steps ?? "default"}`, r.stream ? `stream (partial_images ${r.partialImages ?? 0})` : "unary"];
  return [`${r.url}${r.path}: ${what.join(", ")}`, line(head), ...rows.slice(1).map(line)];
}

/** The whole report as one JSON document. */
export function formatJson(r: BenchReport): string {
  return JSON.stringify(r, null, 2);
}

/** The live progress line (no newline). */
export function formatProgress(p: Progress): string {
  const of = p.target !== undefined ? `${p.done}/${p.target}` : `${p.done}`;
  const time = p.durationS !== undefined ? `${p.elapsedS.toFixed(0)}/${p.durationS}s` : `${p.elapsedS.toFixed(0)}s`;
  const rate = p.elapsedS > 0 ? (p.ok / p.elapsedS).toFixed(2) : "0.00";
  return `bench: concurrency ${p.concurrency}: ${of} done, ${p.ok} ok, ${p.failed} failed, ${rate} req/s, ${time}`;
}
