/**
 * A dependency-free SVG of a sweep: throughput (req/s, left axis) and p99
 * latency (ms, right axis) against concurrency. Levels are spaced evenly
 * (sweeps are usually powers of two) and labelled with their value.
 */
import type { BenchReport } from "./run.js";

const W = 640;
const H = 400;
const M = { left: 70, right: 70, top: 40, bottom: 60 };
const THROUGHPUT = "#1f77b4";
const LATENCY = "#d62728";

/** A "nice" axis maximum and step (1, 2 or 5 × 10^k) covering `max` in about 5 ticks. */
export function niceScale(max: number): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.2 };
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw)!;
  return { max: Math.ceil(max / step) * step, step };
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const num = (v: number) => String(Number(v.toPrecision(6)));

/** The SVG document. */
export function plotSvg(r: BenchReport): string {
  const levels = r.levels;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (i: number) => M.left + (levels.length === 1 ? pw / 2 : (i * pw) / (levels.length - 1));
  const left = niceScale(Math.max(0, ...levels.map((l) => l.throughput.requestsPerS)));
  const right = niceScale(Math.max(0, ...levels.map((l) => l.latencyMs?.p99 ?? 0)));
  const yL = (v: number) => M.top + ph - (v / left.max) * ph;
  const yR = (v: number) => M.top + ph - (v / right.max) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(`${r.model}: throughput and p99 latency vs concurrency`)}</text>`,
    // Axes: bottom, left, right.
    `<path d="M${M.left},${M.top}V${M.top + ph}H${M.left + pw}V${M.top}" fill="none" stroke="black"/>`,
  ];
  for (let v = 0; v <= left.max + left.step / 2; v += left.step) {
    const y = num(yL(v));
    out.push(`<line x1="${M.left - 5}" x2="${M.left + pw}" y1="${y}" y2="${y}" stroke="#ddd"/>`, `<text x="${M.left - 8}" y="${y}" dy="4" text-anchor="end" fill="${THROUGHPUT}">${num(v)}</text>`);
  }
  for (let v = 0; v <= right.max + right.step / 2; v += right.step) {
    const y = num(yR(v));
    out.push(`<line x1="${M.left + pw}" x2="${M.left + pw + 5}" y1="${y}" y2="${y}" stroke="black"/>`, `<text x="${M.left + pw + 8}" y="${y}" dy="4" fill="${LATENCY}">${num(v)}</text>`);
  }
  levels.forEach((l, i) => {
    out.push(`<line x1="${num(x(i))}" x2="${num(x(i))}" y1="${M.top + ph}" y2="${M.top + ph + 5}" stroke="black"/>`, `<text x="${num(x(i))}" y="${M.top + ph + 20}" text-anchor="middle">${l.concurrency}</text>`);
  });
  out.push(
    `<text x="${M.left + pw / 2}" y="${H - 15}" text-anchor="middle">concurrency</text>`,
    `<text transform="translate(18,${M.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="${THROUGHPUT}">throughput (req/s)</text>`,
    `<text transform="translate(${W - 14},${M.top + ph / 2}) rotate(90)" text-anchor="middle" fill="${LATENCY}">p99 latency (ms)</text>`,
  );
  const series = (name: string, colour: string, points: [number, number][], dash: string) => {
    if (points.length === 0) return;
    const d = points.map(([px, py]) => `${num(px)},${num(py)}`).join(" ");
    out.push(`<g class="series" data-series="${name}"><title>${name}</title><polyline points="${d}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    for (const [px, py] of points) out.push(`<circle cx="${num(px)}" cy="${num(py)}" r="3.5" fill="${colour}"/>`);
    out.push(`</g>`);
  };
  series("throughput (req/s)", THROUGHPUT, levels.map((l, i) => [x(i), yL(l.throughput.requestsPerS)]), "");
  const withLatency = levels.flatMap((l, i): [number, number][] => (l.latencyMs === null ? [] : [[x(i), yR(l.latencyMs.p99)]]));
  series("p99 latency (ms)", LATENCY, withLatency, ` stroke-dasharray="6 3"`);
  // Legend, top left inside the plot.
  const lx = M.left + 12;
  out.push(
    `<line x1="${lx}" x2="${lx + 24}" y1="${M.top + 12}" y2="${M.top + 12}" stroke="${THROUGHPUT}" stroke-width="2"/><text x="${lx + 30}" y="${M.top + 16}">throughput (req/s)</text>`,
    `<line x1="${lx}" x2="${lx + 24}" y1="${M.top + 30}" y2="${M.top + 30}" stroke="${LATENCY}" stroke-width="2" stroke-dasharray="6 3"/><text x="${lx + 30}" y="${M.top + 34}">p99 latency (ms)</text>`,
    `</svg>`,
  );
  return out.join("\n") + "\n";
}
