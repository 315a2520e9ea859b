/**
 * Writes a tiny CLIP model folder (random seeded weights) in the layout of a
 * transformers.js CLIP export, for testing CLIP-score tools without a download:
 *
 *   config.json, preprocessor_config.json,
 *   vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json
 *     (the same tiny CLIP BPE tokenizer as the tiny SD models),
 *   onnx/text_model.onnx    input_ids int64 [batch_size, sequence_length] → text_embeds [batch_size, D]
 *   onnx/vision_model.onnx  pixel_values float32 [batch_size, 3, 224, 224] → image_embeds [batch_size, D]
 *
 * Text model: token + position embeddings (Gather), mean over the sequence
 * (ReduceMean), Tanh, MatMul to D. Vision model: a 32×32 stride-32 Conv
 * (3 → 8 channels, 7×7 patches), Tanh, Flatten, MatMul to D. Both towers add
 * the same seeded "shared" vector to their embeddings, so text/image cosines
 * lean positive and CLIP scores land inside (0, 100) rather than being
 * clamped to 0 half the time. The embeddings mean nothing; names, dtypes and
 * shapes are real. Same seed → same bytes.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GraphBuilder, Rng } from "./onnx-writer.js";
import { TINY_DIMS, tinyModelFiles, tinyVocab } from "./make-tiny-model.js";

/** Dimensions of the tiny CLIP (exported for tests). */
export const TINY_CLIP_DIMS = {
  /** Shared embedding width (projection_dim). */
  projection: 32,
  textHidden: 24,
  imageSize: 224,
  patch: 32,
  visionChannels: 8,
  maxLength: TINY_DIMS.maxLength,
  /** Scale of the shared embedding offset (the input-dependent part is of order 0.3 per entry). */
  sharedScale: 0.6,
} as const;

/** CLIP's (OpenAI) image normalisation. */
export const CLIP_IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_IMAGE_STD = [0.26862954, 0.26130258, 0.27577711] as const;

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

function sub(seed: number, k: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) + k * 0x85ebca6b) >>> 0;
}

/** The text tower: `input_ids` (int64) → `text_embeds`. */
/** The offset both towers add to their embeddings (seeded; pass the same values to both). */
export function tinyClipShared(seed: number): Float32Array {
  return new Rng(seed).floats(TINY_CLIP_DIMS.projection, TINY_CLIP_DIMS.sharedScale);
}

export function buildTinyClipText(seed: number, shared: Float32Array = tinyClipShared(0)): Uint8Array {
  const { textHidden: H, projection: D, maxLength: M } = TINY_CLIP_DIMS;
  const g = new GraphBuilder("clip_text_model", seed);
  const V = tinyVocab().size;
  const ids = g.input("input_ids", "int64", ["batch_size", "sequence_length"]);
  const tok = g.weight("text_model.embeddings.token_embedding.weight", [V, H], 1);
  const posEmb = g.weight("text_model.embeddings.position_embedding.weight", [M, H], 0.5);
  const seqLen = g.slice(g.shape(ids), g.constInt64([1]), g.constInt64([2]), [0]);
  const pos = g.slice(posEmb, g.constInt64([0]), seqLen, [0]);
  const h = g.add(g.gather(tok, ids, 0), pos); // [B, S, H]
  const pooled = g.tanh(g.reduceMean(h, [1], false)); // [B, H]
  const proj = g.matMul(pooled, g.weight("text_projection.weight", [H, D], 1 / Math.sqrt(H)));
  g.add(proj, g.initializer("text_projection.shared", "float32", [D], shared), "text_embeds");
  g.output("text_embeds", "float32", ["batch_size", D]);
  return g.encode({ docString: "graphserve tiny CLIP text model (random weights, tests only)" });
}

/** The vision tower: `pixel_values` [B,3,224,224] → `image_embeds`. */
export function buildTinyClipVision(seed: number, shared: Float32Array = tinyClipShared(0)): Uint8Array {
  const { imageSize: S, patch: P, visionChannels: C, projection: D } = TINY_CLIP_DIMS;
  const g = new GraphBuilder("clip_vision_model", seed);
  const x = g.input("pixel_values", "float32", ["batch_size", 3, S, S]);
  const w = g.weight("vision_model.embeddings.patch_embedding.weight", [C, 3, P, P], 1 / Math.sqrt(3 * P * P));
  const b = g.weight("vision_model.embeddings.patch_embedding.bias", [C], 0.05);
  const patches = g.tanh(g.conv(x, w, b, { kernel_shape: [P, P], strides: [P, P] })); // [B, C, 7, 7]
  const flat = g.node("Flatten", [patches], { axis: 1 }); // [B, C·49]
  const F = C * (S / P) * (S / P);
  const proj = g.matMul(flat, g.weight("visual_projection.weight", [F, D], 1 / Math.sqrt(F)));
  g.add(proj, g.initializer("visual_projection.shared", "float32", [D], shared), "image_embeds");
  g.output("image_embeds", "float32", ["batch_size", D]);
  return g.encode({ docString: "graphserve tiny CLIP vision model (random weights, tests only)" });
}

/** Every file of the tiny CLIP folder, relative path → contents, in a fixed order. */
export function tinyClipFiles(opts: { seed?: number } = {}): Map<string, string | Uint8Array> {
  const seed = opts.seed ?? 0;
  const vocab = tinyVocab();
  const { projection: D, textHidden: H, imageSize: S, patch: P } = TINY_CLIP_DIMS;
  const files = new Map<string, string | Uint8Array>();
  files.set(
    "config.json",
    json({
      architectures: ["CLIPModel"],
      model_type: "clip",
      projection_dim: D,
      logit_scale_init_value: 2.6592,
      text_config: { model_type: "clip_text_model", hidden_size: H, max_position_embeddings: TINY_CLIP_DIMS.maxLength, vocab_size: vocab.size, bos_token_id: vocab.bosId, eos_token_id: vocab.eosId, projection_dim: D },
      vision_config: { model_type: "clip_vision_model", image_size: S, patch_size: P, num_channels: 3, projection_dim: D },
      torch_dtype: "float32",
    }),
  );
  files.set(
    "preprocessor_config.json",
    json({
      crop_size: { height: S, width: S },
      do_center_crop: true,
      do_convert_rgb: true,
      do_normalize: true,
      do_rescale: true,
      do_resize: true,
      feature_extractor_type: "CLIPFeatureExtractor",
      image_mean: [...CLIP_IMAGE_MEAN],
      image_processor_type: "CLIPImageProcessor",
      image_std: [...CLIP_IMAGE_STD],
      resample: 3,
      rescale_factor: 1 / 255,
      size: { shortest_edge: S },
    }),
  );
  // The tiny SD model's tokenizer files, reused as they are.
  for (const [rel, content] of tinyModelFiles({ family: "sd", seed })) {
    if (rel.startsWith("tokenizer/")) files.set(rel.slice("tokenizer/".length), content);
  }
  const shared = tinyClipShared(sub(seed, 3));
  files.set("onnx/text_model.onnx", buildTinyClipText(sub(seed, 1), shared));
  files.set("onnx/vision_model.onnx", buildTinyClipVision(sub(seed, 2), shared));
  return files;
}

/** Writes the tiny CLIP folder into `dir` (creating directories; overwrites files). */
export async function makeTinyClip(dir: string, opts: { seed?: number } = {}): Promise<void> {
  for (const [rel, content] of tinyClipFiles(opts)) {
    const path = join(dir, rel);
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, content);
  }
}
