/**
 * Image servables for tests: one tiny seeded SD model per test process
 * (built with the project's own make-tiny-model code), served through the
 * OVMS one-node graph or the three-node pipeline graph by the real server.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { ROOT, start, tempDir, type TestServer } from "./server-helpers.js";

let model: Promise<string> | undefined;

/** The tiny model folder (built once per process; every test copies only the graph beside it). */
export function tinyModel(): Promise<string> {
  model ??= (async () => {
    const dir = join(tempDir(), "tiny-sd");
    mkdirSync(dir, { recursive: true });
    await makeTinyModel(dir, { family: "sd", seed: 7 });
    return dir;
  })();
  return model;
}

export interface ImageGraphOptions {
  /** Extra ImageGenCalculatorOptions fields, in text format (e.g. `max_queue_size: 2`). */
  readonly options?: string;
  /** "one-node" (graphs/image-generation's shape) or "pipeline" (HttpInput → ImageGen → Base64Encoder). */
  readonly shape?: "one-node" | "pipeline";
}

/** The test graphs' ImageGenCalculatorOptions besides models_path (text format). */
export const DEFAULT_OPTIONS = `default_resolution: "64x64"
      max_resolution: "512x512"
      default_num_inference_steps: 2
      max_num_inference_steps: 2000`;

/** A servable folder: the graph of `shape` with models_path pointing at the tiny model. */
export async function imageServable(opts: ImageGraphOptions = {}): Promise<string> {
  const modelDir = await tinyModel();
  const dir = tempDir();
  const source = opts.shape === "pipeline" ? "graphs/image-generation-pipeline/graph.pbtxt" : "graphs/image-generation/graph.pbtxt";
  let text = readFileSync(join(ROOT, source), "utf8");
  // Swap the example's options for the test's: same graph, models_path at the shared tiny model.
  text = text.replace(/\[type\.googleapis\.com \/ mediapipe\.ImageGenCalculatorOptions\]: \{[^}]*\}/, `[type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: {
      models_path: "${modelDir}"
      ${opts.options ?? DEFAULT_OPTIONS}
    }`);
  writeFileSync(join(dir, "graph.pbtxt"), text);
  return dir;
}

/** A started server serving `name` from an image servable. */
export async function startImageServer(name = "tiny", opts: ImageGraphOptions & { metrics?: boolean } = {}): Promise<TestServer> {
  const path = await imageServable(opts);
  return start({ single: { name, path }, metricsEnable: opts.metrics ?? true });
}

/** A PNG (or other format) of a flat colour, for uploads. */
export function solidImage(width: number, height: number, format: "png" | "jpeg" | "webp" | "gif" = "png", colour = { r: 200, g: 30, b: 30 }): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: colour } }).toFormat(format).toBuffer();
}

/** Width, height and format of an encoded image. */
export async function imageInfo(b64OrBytes: string | Buffer): Promise<{ width: number; height: number; format: string }> {
  const bytes = typeof b64OrBytes === "string" ? Buffer.from(b64OrBytes, "base64") : b64OrBytes;
  const m = await sharp(bytes).metadata();
  return { width: m.width!, height: m.height!, format: m.format! };
}

/** One server-sent event: its name and its JSON data. */
export interface SseEventData {
  readonly event?: string;
  readonly data: Record<string, unknown>;
}

/** Parses an SSE body into its events' JSON data (skipping [DONE]). */
export function sseEvents(text: string): SseEventData[] {
  const out: SseEventData[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length === 0 || data.join("\n") === "[DONE]") continue;
    out.push({ event, data: JSON.parse(data.join("\n")) as Record<string, unknown> });
  }
  return out;
}
