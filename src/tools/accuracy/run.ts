/**
 * The accuracy run: for each prompt, three generations over the OpenAI Images
 * API (seed S twice, seed S+1 once), then the optional CLIP score and
 * reference similarity of the seed-S image. Works against any server that
 * speaks the API (graphserve, OVMS, ...): it only needs `rng_seed` honoured
 * and `b64_json` responses.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { ClipScorer } from "./clip.js";
import { checkShapes, parseShapePrompt, type ShapeCheck } from "./demo-shapes.js";
import { psnr, ssim, type RawImage } from "./metrics.js";

/** The prompt-adherence checkers `--check` names. */
export const ACCURACY_CHECKS = ["demo-shapes"] as const;
export type AccuracyCheck = (typeof ACCURACY_CHECKS)[number];

/** Most prompts one run accepts. */
export const MAX_PROMPTS = 1000;
/** Reference image extensions tried, in order, for `<index>.<ext>`. */
export const REFERENCE_EXTENSIONS = ["png", "jpg", "jpeg", "webp"] as const;

export interface AccuracyOptions {
  /** Server base URL, e.g. http://localhost:8000 (a trailing slash is ignored). */
  readonly url: string;
  /** Request path (default /v3/images/generations). */
  readonly path?: string;
  readonly model: string;
  readonly prompts: readonly string[];
  /** `size` to request ("WxH"); omitted → the server's default. */
  readonly size?: string;
  readonly steps?: number;
  /** Base seed S (default 42): S twice, then S+1. */
  readonly seed?: number;
  readonly apiKey?: string;
  /** A CLIP folder (transformers.js layout) for CLIP scores. */
  readonly clipDir?: string;
  /** A folder of `<index>.png|jpg|jpeg|webp` reference images (or an earlier run's --out folder). */
  readonly referenceDir?: string;
  /** Checks what each seed-S image shows against its prompt ("demo-shapes": the demo model's colours and shapes). */
  readonly check?: AccuracyCheck;
  /** Saves the generated images as `<index>-seed<S>.png`. */
  readonly outDir?: string;
  /** Per-request timeout (default 600 s). */
  readonly timeoutMs?: number;
  /** Called after each prompt (progress). */
  readonly onPrompt?: (result: PromptResult, done: number, total: number) => void;
}

export interface ReferenceResult {
  readonly file: string;
  readonly width: number;
  readonly height: number;
  /** The generated image was resized to the reference's size. */
  readonly resized: boolean;
  /** dB; Infinity when identical. */
  readonly psnr: number;
  readonly ssim: number;
}

export interface PromptResult {
  readonly index: number;
  readonly prompt: string;
  /** Seed S gave the same bytes twice. */
  readonly sameSeedIdentical: boolean;
  /** Seed S+1 gave different bytes from seed S. */
  readonly nextSeedDiffers: boolean;
  /** Both of the above, and no error. */
  readonly ok: boolean;
  /** Why the prompt could not be checked (HTTP or decoding failure). */
  readonly error?: string;
  /** sha256 of the seed-S image bytes (as decoded from base64). */
  readonly sha256?: string;
  readonly width?: number;
  readonly height?: number;
  /** Milliseconds of each of the three requests (seed S, S, S+1). */
  readonly latencyMs: number[];
  readonly clipScore?: number;
  readonly reference?: ReferenceResult;
  /** Set when --reference is given but `<index>.*` is missing. */
  readonly referenceMissing?: boolean;
  /** Where the seed-S image was saved. */
  readonly saved?: string;
  /** What the seed-S image shows, against the prompt (with --check). */
  readonly shapes?: ShapeCheck;
}

export interface AccuracySummary {
  readonly prompts: number;
  /** HTTP requests sent (3 per prompt unless one failed before it was sent). */
  readonly requests: number;
  /** Requests that failed (non-2xx, network, or an unusable body). */
  readonly errors: number;
  readonly deterministic: number;
  readonly nonDeterministic: number;
  readonly passed: boolean;
  readonly meanClipScore?: number;
  /** Mean of the finite PSNR values (identical pairs are counted in `identicalToReference`). */
  readonly meanPsnr?: number;
  readonly identicalToReference?: number;
  readonly meanSsim?: number;
  readonly references?: number;
  readonly resizedForReference?: number;
  /** With --check: prompts whose seed-S image shows what they asked, out of those checked. */
  readonly drawnRight?: number;
  readonly checked?: number;
}

export interface AccuracyReport {
  readonly url: string;
  readonly path: string;
  readonly model: string;
  readonly seed: number;
  readonly size?: string;
  readonly steps?: number;
  readonly clipDir?: string;
  readonly referenceDir?: string;
  readonly check?: AccuracyCheck;
  readonly results: PromptResult[];
  readonly summary: AccuracySummary;
  readonly elapsedMs: number;
}

/** Prompts file: one per line; blank lines and lines starting with `#` are skipped. */
export function parsePrompts(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

class RequestError extends Error {}

interface Generated {
  bytes: Buffer;
  ms: number;
}

async function generate(opts: AccuracyOptions, endpoint: string, prompt: string, seed: number, counter: { sent: number; errors: number }): Promise<Generated> {
  const body: Record<string, unknown> = { model: opts.model, prompt, n: 1, rng_seed: seed, response_format: "b64_json" };
  if (opts.size !== undefined) body.size = opts.size;
  if (opts.steps !== undefined) body.num_inference_steps = opts.steps;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.apiKey !== undefined) headers.authorization = `Bearer ${opts.apiKey}`;
  const t0 = performance.now();
  counter.sent++;
  try {
    let res: Response;
    let text: string;
    try {
      res = await fetch(endpoint, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(opts.timeoutMs ?? 600_000) });
      // Reading the body can fail too (a connection cut mid-answer, a timeout): the server's fault, reported per prompt.
      text = await res.text();
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new RequestError(`seed ${seed}: request failed (${cause?.code ?? cause?.message ?? (e as Error).message})`);
    }
    if (!res.ok) {
      let msg = text.slice(0, 200);
      try {
        msg = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? msg;
      } catch {
        // not JSON: keep the text
      }
      throw new RequestError(`seed ${seed}: HTTP ${res.status}: ${msg}`);
    }
    let b64: unknown;
    try {
      b64 = (JSON.parse(text) as { data?: { b64_json?: unknown }[] }).data?.[0]?.b64_json;
    } catch {
      throw new RequestError(`seed ${seed}: the response is not JSON`);
    }
    if (typeof b64 !== "string" || b64 === "") throw new RequestError(`seed ${seed}: the response has no data[0].b64_json`);
    return { bytes: Buffer.from(b64, "base64"), ms: performance.now() - t0 };
  } catch (e) {
    counter.errors++;
    throw e;
  }
}

/** Decodes an image to 8-bit RGB, optionally resized (bicubic, exact size) to width×height. */
export async function decodeRgb(bytes: Uint8Array, size?: { width: number; height: number }): Promise<RawImage> {
  let img = sharp(bytes).toColourspace("srgb").removeAlpha();
  if (size) img = img.resize(size.width, size.height, { fit: "fill", kernel: "cubic" });
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels after decoding, got ${info.channels}`);
  return { data, width: info.width, height: info.height, channels: 3 };
}

/** `<index>.<ext>`, or what an earlier run's --out saved for this seed, so that folder can be the next run's reference. */
function referenceFile(dir: string, index: number, seed: number): string | undefined {
  for (const name of [...REFERENCE_EXTENSIONS.map((ext) => `${index}.${ext}`), `${index}-seed${seed}.png`]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

async function compareWithReference(file: string, generated: Uint8Array): Promise<ReferenceResult> {
  const ref = await decodeRgb(await readFile(file));
  const gen0 = await decodeRgb(generated);
  const resized = gen0.width !== ref.width || gen0.height !== ref.height;
  const gen = resized ? await decodeRgb(generated, { width: ref.width, height: ref.height }) : gen0;
  return { file, width: ref.width, height: ref.height, resized, psnr: psnr(gen, ref), ssim: ssim(gen, ref) };
}

function mean(xs: number[]): number | undefined {
  return xs.length === 0 ? undefined : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Runs the checks; HTTP failures are reported per prompt, never thrown. Throws on bad local inputs (CLIP folder, out dir). */
export async function runAccuracy(opts: AccuracyOptions): Promise<AccuracyReport> {
  const t0 = performance.now();
  const seed = opts.seed ?? 42;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed + 1 >= 2 ** 53) throw new Error(`seed must be an integer in [0, 2^53 − 1), got ${seed}`);
  if (opts.prompts.length === 0) throw new Error("no prompts");
  if (opts.prompts.length > MAX_PROMPTS) throw new Error(`at most ${MAX_PROMPTS} prompts, got ${opts.prompts.length}`);
  if (opts.check === "demo-shapes") {
    const bad = opts.prompts.findIndex((p) => parseShapePrompt(p) === undefined);
    if (bad >= 0) throw new Error(`--check demo-shapes: prompt ${bad} is not "a <colour> <shape> on a <colour> background": ${JSON.stringify(opts.prompts[bad])}`);
  }
  const path = opts.path ?? "/v3/images/generations";
  const endpoint = opts.url.replace(/\/+$/, "") + (path.startsWith("/") ? path : `/${path}`);
  const clip = opts.clipDir !== undefined ? await ClipScorer.load(opts.clipDir) : undefined;
  const counter = { sent: 0, errors: 0 };
  const results: PromptResult[] = [];
  try {
    if (opts.outDir !== undefined) await mkdir(opts.outDir, { recursive: true });
    for (const [index, prompt] of opts.prompts.entries()) {
      const latencyMs: number[] = [];
      let r: PromptResult;
      try {
        const a = await generate(opts, endpoint, prompt, seed, counter);
        latencyMs.push(a.ms);
        const b = await generate(opts, endpoint, prompt, seed, counter);
        latencyMs.push(b.ms);
        const c = await generate(opts, endpoint, prompt, seed + 1, counter);
        latencyMs.push(c.ms);
        const sameSeedIdentical = a.bytes.equals(b.bytes);
        const nextSeedDiffers = !a.bytes.equals(c.bytes);
        let width: number | undefined;
        let height: number | undefined;
        let error: string | undefined;
        let clipScore: number | undefined;
        let reference: ReferenceResult | undefined;
        let referenceMissing: boolean | undefined;
        let saved: string | undefined;
        let shapes: ShapeCheck | undefined;
        // Only a server image that does not decode fails the prompt; a bad local reference is a local error (exit 2).
        try {
          const meta = await sharp(a.bytes).metadata();
          width = meta.width;
          height = meta.height;
        } catch (e) {
          error = `seed ${seed}: cannot decode the image (${(e as Error).message})`;
        }
        if (error === undefined) {
          if (clip) clipScore = await clip.score(prompt, a.bytes);
          if (opts.check === "demo-shapes") shapes = checkShapes(prompt, await decodeRgb(a.bytes));
          if (opts.referenceDir !== undefined) {
            const file = referenceFile(opts.referenceDir, index, seed);
            if (file === undefined) referenceMissing = true;
            else {
              try {
                reference = await compareWithReference(file, a.bytes);
              } catch (e) {
                throw new Error(`reference ${file}: ${(e as Error).message}`);
              }
            }
          }
          if (opts.outDir !== undefined) {
            saved = join(opts.outDir, `${index}-seed${seed}.png`);
            // PNG bytes are saved as the server sent them; other formats are converted.
            const isPng = a.bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
            await writeFile(saved, isPng ? a.bytes : await sharp(a.bytes).png().toBuffer());
          }
        }
        r = {
          index,
          prompt,
          sameSeedIdentical,
          nextSeedDiffers,
          ok: sameSeedIdentical && nextSeedDiffers && error === undefined,
          ...(error !== undefined ? { error } : {}),
          sha256: createHash("sha256").update(a.bytes).digest("hex"),
          ...(width !== undefined ? { width, height } : {}),
          latencyMs,
          ...(clipScore !== undefined ? { clipScore } : {}),
          ...(reference !== undefined ? { reference } : {}),
          ...(referenceMissing ? { referenceMissing } : {}),
          ...(saved !== undefined ? { saved } : {}),
          ...(shapes !== undefined ? { shapes } : {}),
        };
      } catch (e) {
        if (!(e instanceof RequestError)) throw e;
        r = { index, prompt, sameSeedIdentical: false, nextSeedDiffers: false, ok: false, error: e.message, latencyMs };
      }
      results.push(r);
      opts.onPrompt?.(r, results.length, opts.prompts.length);
    }
  } finally {
    await clip?.release();
  }
  const deterministic = results.filter((r) => r.ok).length;
  const clipScores = results.flatMap((r) => (r.clipScore !== undefined ? [r.clipScore] : []));
  const refs = results.flatMap((r) => (r.reference ? [r.reference] : []));
  const checks = results.flatMap((r) => (r.shapes ? [r.shapes] : []));
  const summary: AccuracySummary = {
    prompts: results.length,
    requests: counter.sent,
    errors: counter.errors,
    deterministic,
    nonDeterministic: results.length - deterministic,
    passed: deterministic === results.length,
    ...(clip ? { meanClipScore: mean(clipScores) } : {}),
    ...(opts.referenceDir !== undefined
      ? {
          references: refs.length,
          meanPsnr: mean(refs.filter((x) => Number.isFinite(x.psnr)).map((x) => x.psnr)),
          identicalToReference: refs.filter((x) => x.psnr === Infinity).length,
          meanSsim: mean(refs.map((x) => x.ssim)),
          resizedForReference: refs.filter((x) => x.resized).length,
        }
      : {}),
    ...(opts.check !== undefined ? { checked: checks.length, drawnRight: checks.filter((c) => c.ok).length } : {}),
  };
  return {
    url: opts.url,
    path,
    model: opts.model,
    seed,
    ...(opts.size !== undefined ? { size: opts.size } : {}),
    ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
    ...(opts.clipDir !== undefined ? { clipDir: opts.clipDir } : {}),
    ...(opts.referenceDir !== undefined ? { referenceDir: opts.referenceDir } : {}),
    ...(opts.check !== undefined ? { check: opts.check } : {}),
    results,
    summary,
    elapsedMs: performance.now() - t0,
  };
}
