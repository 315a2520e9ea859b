/**
 * CLIP score with onnxruntime-node, from a CLIP folder laid out as a
 * transformers.js export:
 *
 *   onnx/text_model.onnx     input_ids int64|int32 [B,77] (and optionally attention_mask) → text_embeds [B,D]
 *   onnx/vision_model.onnx   pixel_values float32 [B,3,H,W] → image_embeds [B,D]
 *   preprocessor_config.json image_mean, image_std, size, crop_size (, rescale_factor)
 *   tokenizer files          tokenizer.json, or vocab.json + merges.txt (+ tokenizer_config.json)
 *
 * Score = 100 · max(0, cos(text_embeds, image_embeds)), torchmetrics' CLIPScore.
 *
 * Preprocessing follows CLIPImageProcessor: resize so the shortest side is
 * `size` (sharp's bicubic, "cubic" kernel, where the Python processor uses
 * PIL's bicubic; both filter when downscaling, so pixel values differ slightly),
 * centre-crop to `crop_size`, scale to [0, 1], normalise by mean/std, CHW.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { loadClipTokenizer, type ClipTokenizer } from "../../backends/onnx/tokenizer.js";

export interface ClipPreprocessing {
  /** Shortest side after resizing. */
  readonly shortestEdge: number;
  readonly cropWidth: number;
  readonly cropHeight: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  readonly rescale: number;
}

interface PreprocessorConfig {
  image_mean?: number[];
  image_std?: number[];
  size?: number | { shortest_edge?: number; height?: number; width?: number };
  crop_size?: number | { height?: number; width?: number };
  rescale_factor?: number;
}

/** Reads preprocessor_config.json into the few numbers the score needs (old and new key styles). */
export function preprocessingFrom(cfg: PreprocessorConfig, path = "preprocessor_config.json"): ClipPreprocessing {
  const triple = (v: unknown, key: string): [number, number, number] => {
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      throw new Error(`${path}: ${key} must be three numbers`);
    }
    return [v[0], v[1], v[2]];
  };
  // An exact {height, width} size (no shortest_edge) is approximated by its shorter side; CLIP checkpoints use shortest_edge.
  const sizeOf = (v: PreprocessorConfig["size"]): number | undefined =>
    typeof v === "number" ? v : v?.shortest_edge ?? (v?.height !== undefined && v.width !== undefined ? Math.min(v.height, v.width) : undefined);
  const crop = cfg.crop_size;
  const cropH = typeof crop === "number" ? crop : crop?.height;
  const cropW = typeof crop === "number" ? crop : crop?.width;
  const shortest = sizeOf(cfg.size) ?? cropH ?? 224;
  const pre: ClipPreprocessing = {
    shortestEdge: shortest,
    cropHeight: cropH ?? shortest,
    cropWidth: cropW ?? shortest,
    mean: triple(cfg.image_mean ?? [0.48145466, 0.4578275, 0.40821073], "image_mean"),
    std: triple(cfg.image_std ?? [0.26862954, 0.26130258, 0.27577711], "image_std"),
    rescale: cfg.rescale_factor ?? 1 / 255,
  };
  for (const [k, v] of Object.entries({ size: pre.shortestEdge, crop_size: pre.cropHeight, "crop_size width": pre.cropWidth })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${path}: ${k} must be a positive integer`);
  }
  return pre;
}

/** CLIPImageProcessor's pixel_values for one encoded image: [3, cropH, cropW] float32, CHW. */
export async function clipPixels(image: Uint8Array, pre: ClipPreprocessing): Promise<Float32Array> {
  const meta = await sharp(image).metadata();
  const w0 = meta.width!;
  const h0 = meta.height!;
  const scale = pre.shortestEdge / Math.min(w0, h0);
  // As transformers' get_resize_output_image_size: the short side exactly, the long one truncated.
  const [rw, rh] = w0 <= h0 ? [pre.shortestEdge, Math.floor(h0 * scale)] : [Math.floor(w0 * scale), pre.shortestEdge];
  // Never smaller than the crop (a crop_size above the resize size would otherwise fall outside the image).
  const [w1, h1] = [Math.max(pre.cropWidth, rw), Math.max(pre.cropHeight, rh)];
  const left = Math.floor((w1 - pre.cropWidth) / 2);
  const top = Math.floor((h1 - pre.cropHeight) / 2);
  const { data } = await sharp(image)
    .toColourspace("srgb")
    .removeAlpha()
    .resize(w1, h1, { fit: "fill", kernel: "cubic" })
    .extract({ left, top, width: pre.cropWidth, height: pre.cropHeight })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const n = pre.cropWidth * pre.cropHeight;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const m = pre.mean[c];
    const s = pre.std[c];
    for (let i = 0; i < n; i++) out[c * n + i] = (data[i * 3 + c] * pre.rescale - m) / s;
  }
  return out;
}

/** 100 · max(0, cosine(a, b)). */
export function clipScoreOf(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`embedding widths differ: ${a.length} vs ${b.length}`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na === 0 || nb === 0) return 0;
  return 100 * Math.max(0, dot / Math.sqrt(na * nb));
}

function inputMeta(session: ort.InferenceSession, name: string): ort.InferenceSession.TensorValueMetadata | undefined {
  const m = session.inputMetadata.find((x) => x.name === name);
  return m && m.isTensor ? m : undefined;
}

/** Text and vision sessions, created once; `release()` when done. */
export class ClipScorer {
  private constructor(
    readonly dir: string,
    private readonly text: ort.InferenceSession,
    private readonly vision: ort.InferenceSession,
    private readonly tokenizer: ClipTokenizer,
    readonly preprocessing: ClipPreprocessing,
  ) {}

  /** Loads the folder; errors name the file at fault. */
  static async load(dir: string): Promise<ClipScorer> {
    const cfgPath = join(dir, "preprocessor_config.json");
    let cfg: PreprocessorConfig;
    try {
      cfg = JSON.parse(await readFile(cfgPath, "utf8")) as PreprocessorConfig;
    } catch (e) {
      throw new Error(`${cfgPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const pre = preprocessingFrom(cfg, cfgPath);
    const tokenizer = await loadClipTokenizer(dir);
    const session = async (file: string, input: string, output: string) => {
      const path = join(dir, "onnx", file);
      let s: ort.InferenceSession;
      try {
        s = await ort.InferenceSession.create(path, { interOpNumThreads: 1, intraOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all" });
      } catch (e) {
        throw new Error(`${path}: cannot load the ONNX model (${(e as Error).message.split("\n")[0]})`);
      }
      if (!s.inputNames.includes(input)) throw new Error(`${path}: no "${input}" input (has ${s.inputNames.join(", ")})`);
      if (!s.outputNames.includes(output)) throw new Error(`${path}: no "${output}" output (has ${s.outputNames.join(", ")})`);
      return s;
    };
    const text = await session("text_model.onnx", "input_ids", "text_embeds");
    let vision: ort.InferenceSession;
    try {
      vision = await session("vision_model.onnx", "pixel_values", "image_embeds");
    } catch (e) {
      await text.release();
      throw e;
    }
    return new ClipScorer(dir, text, vision, tokenizer, pre);
  }

  /** The text embedding of a prompt (tokenised, padded/truncated to the tokenizer's length). */
  async textEmbedding(prompt: string): Promise<Float32Array> {
    const ids = this.tokenizer.encode(prompt);
    const L = ids.length;
    // Attention covers the tokens up to and including the first end-of-text token.
    let end = ids.indexOf(this.tokenizer.eosId);
    end = end < 0 ? L : end + 1;
    const feeds: Record<string, ort.Tensor> = {};
    const tensor = (name: string, values: ArrayLike<number>) => {
      const int32 = inputMeta(this.text, name)?.type === "int32";
      feeds[name] = int32 ? new ort.Tensor("int32", Int32Array.from(values), [1, L]) : new ort.Tensor("int64", BigInt64Array.from(Array.from(values, (v) => BigInt(v))), [1, L]);
    };
    tensor("input_ids", ids);
    if (this.text.inputNames.includes("attention_mask")) tensor("attention_mask", Array.from({ length: L }, (_, i) => (i < end ? 1 : 0)));
    const out = await this.text.run(feeds, ["text_embeds"]);
    return Float32Array.from(out.text_embeds.data as Float32Array);
  }

  /** The image embedding of an encoded image (PNG, JPEG, WebP, ...). */
  async imageEmbedding(image: Uint8Array): Promise<Float32Array> {
    const p = this.preprocessing;
    const pixels = await clipPixels(image, p);
    const out = await this.vision.run({ pixel_values: new ort.Tensor("float32", pixels, [1, 3, p.cropHeight, p.cropWidth]) }, ["image_embeds"]);
    return Float32Array.from(out.image_embeds.data as Float32Array);
  }

  /** CLIP score of an image for a prompt, in [0, 100]. */
  async score(prompt: string, image: Uint8Array): Promise<number> {
    return clipScoreOf(await this.textEmbedding(prompt), await this.imageEmbedding(image));
  }

  async release(): Promise<void> {
    await Promise.all([this.text.release(), this.vision.release()]);
  }
}
