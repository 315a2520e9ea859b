/**
 * `graphserve accuracy --url URL --model NAME --prompts FILE [--clip DIR]
 * [--reference DIR] [--size WxH] [--steps K] [--seed S] [--api-key KEY]
 * [--path PATH] [--timeout SEC] [--json] [--out DIR]`
 *
 * Exit codes: 0 when every prompt's determinism check passes, 1 otherwise
 * (including failed requests), 2 for bad flags or unusable local inputs
 * (prompts file, CLIP folder, reference folder), with a one-line message.
 */
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { FlagError, parseFlags } from "../../cli/flags.js";
import { boundedTimeout, positiveInt } from "../flags.js";
import { ACCURACY_CHECKS, MAX_PROMPTS, parsePrompts, runAccuracy, type AccuracyCheck, type AccuracyReport, type PromptResult } from "./run.js";
import type { ShapeCheck } from "./demo-shapes.js";

export const ACCURACY_USAGE = `  graphserve accuracy --url URL --model NAME --prompts FILE [--clip DIR] [--reference DIR] [--check demo-shapes]
          [--size WxH] [--steps K] [--seed S] [--api-key KEY] [--path PATH] [--timeout SEC] [--json] [--out DIR]
                                     check a server speaking the OpenAI Images API: determinism (seed S twice
                                     gives identical bytes, S+1 differs), CLIP score with a CLIP ONNX folder
                                     (transformers.js layout), PSNR/SSIM against DIR/<index>.png|jpg|webp,
                                     what the picture shows against the prompt (--check demo-shapes: the demo
                                     model's "a red circle on a blue background", the share drawn right);
                                     prompts: one per line, # comments; exit 1 when a determinism check fails`;

export interface AccuracyIo {
  out(l: string): void;
  err(l: string): void;
}

const NAME = "graphserve accuracy";

/** JSON with Infinity (PSNR of identical images) written as the string "Infinity". */
export function reportJson(report: AccuracyReport): string {
  return JSON.stringify(report, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v), 2);
}

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined) return "-";
  if (v === Infinity) return "inf";
  return v.toFixed(digits);
}

function determinismCell(r: PromptResult): string {
  if (r.ok) return "ok";
  if (r.latencyMs.length < 3) return "ERROR";
  if (!r.sameSeedIdentical) return "FAIL (seed S differs)";
  if (!r.nextSeedDiffers) return "FAIL (S+1 same)";
  return "ERROR";
}

/** "ok", or what was drawn instead ("blue square on white", "nothing on white"). */
function shapesCell(c: ShapeCheck): string {
  if (c.ok) return "ok";
  const s = c.seen;
  return `${s.colour === undefined ? "nothing" : `${s.colour} ${s.shape ?? "blob"}`} on ${s.background}`;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The terminal table and summary lines. */
export function formatReport(report: AccuracyReport): string[] {
  const lines: string[] = [];
  const hasClip = report.clipDir !== undefined;
  const hasRef = report.referenceDir !== undefined;
  const hasCheck = report.check !== undefined;
  const head = [pad("#", 4, true), pad("determinism", 22)];
  if (hasClip) head.push(pad("CLIP", 7, true));
  if (hasCheck) head.push(pad("drawn", 28));
  if (hasRef) head.push(pad("PSNR dB", 8, true), pad("SSIM", 7, true));
  head.push("prompt");
  lines.push(head.join("  "));
  for (const r of report.results) {
    const row = [pad(String(r.index), 4, true), pad(determinismCell(r), 22)];
    if (hasClip) row.push(pad(fmt(r.clipScore, 2), 7, true));
    if (hasCheck) row.push(pad(r.shapes ? shapesCell(r.shapes) : "-", 28));
    if (hasRef) row.push(pad(r.referenceMissing ? "no ref" : fmt(r.reference?.psnr, 2), 8, true), pad(fmt(r.reference?.ssim, 4), 7, true));
    const p = r.prompt.length > 60 ? r.prompt.slice(0, 57) + "..." : r.prompt;
    row.push(p + (r.reference?.resized ? " (resized to reference)" : ""));
    lines.push(row.join("  "));
  }
  for (const r of report.results) if (r.error !== undefined) lines.push(`prompt ${r.index}: ${r.error}`);
  const s = report.summary;
  lines.push("");
  lines.push(
    `determinism: ${s.deterministic}/${s.prompts} prompts ok (seeds ${report.seed}, ${report.seed}, ${report.seed + 1}; ${s.requests} requests, ${s.errors} errors) — ${s.passed ? "PASS" : "FAIL"}`,
  );
  if (hasClip) lines.push(`CLIP score: mean ${fmt(s.meanClipScore, 2)} over ${report.results.filter((r) => r.clipScore !== undefined).length} images (100·max(0, cos); ${report.clipDir})`);
  if (hasRef) {
    const resized = s.resizedForReference ? `; ${s.resizedForReference} generated image(s) resized to the reference size` : "";
    lines.push(
      `reference: ${s.references}/${s.prompts} compared; ${s.identicalToReference} identical (PSNR inf)${s.meanPsnr === undefined ? "" : `, mean PSNR of the others ${fmt(s.meanPsnr, 2)} dB`}; mean SSIM ${fmt(s.meanSsim, 4)}${resized}`,
    );
  }
  if (hasCheck && s.checked !== undefined && s.drawnRight !== undefined) {
    const share = s.checked === 0 ? "-" : `${((100 * s.drawnRight) / s.checked).toFixed(1)}%`;
    lines.push(`${report.check}: ${s.drawnRight}/${s.checked} drawn right (${share}): background colour, object colour and shape as the prompt asked`);
  }
  lines.push(`elapsed: ${(report.elapsedMs / 1000).toFixed(1)} s`);
  return lines;
}

/** `graphserve accuracy ...`; resolves to the exit code. */
export async function accuracyCommand(argv: readonly string[], io: AccuracyIo): Promise<number> {
  let opts: Parameters<typeof runAccuracy>[0];
  let json = false;
  try {
    const { values } = parseFlags({
      args: [...argv],
      allowPositionals: false,
      options: {
        url: { type: "string" },
        model: { type: "string" },
        prompts: { type: "string" },
        clip: { type: "string" },
        reference: { type: "string" },
        size: { type: "string" },
        steps: { type: "string" },
        seed: { type: "string" },
        "api-key": { type: "string" },
        path: { type: "string" },
        timeout: { type: "string" },
        json: { type: "boolean", default: false },
        out: { type: "string" },
        check: { type: "string" },
        help: { type: "boolean", default: false },
      },
    });
    if (values.help) {
      io.out(`Usage:\n${ACCURACY_USAGE}`);
      return 0;
    }
    json = values.json;
    for (const f of ["url", "model", "prompts"] as const) if (values[f] === undefined || values[f] === "") throw new FlagError(`--${f} is required`);
    let url: URL;
    try {
      url = new URL(values.url!);
    } catch {
      throw new FlagError(`--url must be an http(s) URL, not "${values.url}"`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new FlagError(`--url must be an http(s) URL, not "${values.url}"`);
    if (values.size !== undefined && !/^[1-9]\d*x[1-9]\d*$/.test(values.size)) throw new FlagError(`--size must be WxH (e.g. 512x512), not "${values.size}"`);
    const steps = values.steps === undefined ? undefined : positiveInt("steps", values.steps);
    let seed = 42;
    if (values.seed !== undefined) {
      seed = Number(values.seed);
      if (!/^\d+$/.test(values.seed) || !Number.isSafeInteger(seed + 1)) throw new FlagError(`--seed must be an integer in [0, 2^53 − 1), not "${values.seed}"`);
    }
    if (values.check !== undefined && !(ACCURACY_CHECKS as readonly string[]).includes(values.check)) {
      throw new FlagError(`--check must be one of ${ACCURACY_CHECKS.join(", ")}, not "${values.check}"`);
    }
    const timeoutMs = values.timeout === undefined ? undefined : boundedTimeout(positiveInt("timeout", values.timeout)) * 1000;
    const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
    if (values.clip !== undefined && !isDir(values.clip)) throw new FlagError(`--clip ${values.clip}: not a directory`);
    if (values.reference !== undefined && !isDir(values.reference)) throw new FlagError(`--reference ${values.reference}: not a directory`);
    let text: string;
    try {
      text = await readFile(values.prompts!, "utf8");
    } catch (e) {
      throw new FlagError(`--prompts ${values.prompts}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const prompts = parsePrompts(text);
    if (prompts.length === 0) throw new FlagError(`--prompts ${values.prompts}: no prompts (one per line; blank lines and # comments are skipped)`);
    if (prompts.length > MAX_PROMPTS) throw new FlagError(`--prompts ${values.prompts}: ${prompts.length} prompts, at most ${MAX_PROMPTS}`);
    opts = {
      url: values.url!,
      model: values.model!,
      prompts,
      seed,
      ...(values.path !== undefined ? { path: values.path } : {}),
      ...(values.size !== undefined ? { size: values.size } : {}),
      ...(steps !== undefined ? { steps } : {}),
      ...(values["api-key"] !== undefined ? { apiKey: values["api-key"] } : {}),
      ...(values.clip !== undefined ? { clipDir: resolve(values.clip) } : {}),
      ...(values.reference !== undefined ? { referenceDir: resolve(values.reference) } : {}),
      ...(values.out !== undefined ? { outDir: resolve(values.out) } : {}),
      ...(values.check !== undefined ? { check: values.check as AccuracyCheck } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    };
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    io.err(`${NAME}: ${e.message}`);
    return 2;
  }
  let report: AccuracyReport;
  try {
    report = await runAccuracy({
      ...opts,
      ...(json ? {} : { onPrompt: (r, done, total) => io.err(`[${done}/${total}] prompt ${r.index}: ${r.ok ? "ok" : r.error ?? "determinism FAILED"}`) }),
    });
  } catch (e) {
    // Only local inputs throw (the CLIP folder, the output folder): the server's failures are in the report.
    io.err(`${NAME}: ${(e as Error).message.split("\n", 1)[0]}`);
    return 2;
  }
  if (json) io.out(reportJson(report));
  else for (const l of formatReport(report)) io.out(l);
  return report.summary.passed ? 0 : 1;
}
