/** The tiny CLIP folder: loads in onnxruntime, real names and shapes, seeded and deterministic, text-sensitive. */
import { strict as assert } from "node:assert";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { makeTinyClip, TINY_CLIP_DIMS } from "../src/backends/onnx/tiny/make-tiny-clip.js";
import { loadClipTokenizer } from "../src/backends/onnx/tokenizer.js";
import { ClipScorer, clipScoreOf, preprocessingFrom } from "../src/tools/accuracy/clip.js";

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "tiny-clip-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function folder(name: string, seed?: number): Promise<string> {
  const dir = join(root, name);
  await makeTinyClip(dir, seed === undefined ? {} : { seed });
  return dir;
}

const D = TINY_CLIP_DIMS.projection;

describe("makeTinyClip", () => {
  it("writes the transformers.js layout with CLIP's preprocessing", async () => {
    const dir = await folder("layout", 3);
    assert.deepEqual((await readdir(join(dir, "onnx"))).sort(), ["text_model.onnx", "vision_model.onnx"]);
    for (const f of ["config.json", "preprocessor_config.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]) {
      await readFile(join(dir, f));
    }
    const pre = JSON.parse(await readFile(join(dir, "preprocessor_config.json"), "utf8"));
    assert.deepEqual(pre.image_mean, [0.48145466, 0.4578275, 0.40821073]);
    assert.deepEqual(pre.image_std, [0.26862954, 0.26130258, 0.27577711]);
    assert.deepEqual(pre.crop_size, { height: 224, width: 224 });
    const p = preprocessingFrom(pre);
    assert.equal(p.shortestEdge, 224);
    assert.equal(p.cropWidth, 224);
    // Old-style integer keys read the same.
    assert.deepEqual(preprocessingFrom({ ...pre, crop_size: 224, size: 224 }), p);
    const tok = await loadClipTokenizer(dir);
    assert.equal(tok.maxLength, 77);
  });

  it("sessions load with the real input/output names, dtypes and shapes", async () => {
    const dir = await folder("shapes", 1);
    const text = await ort.InferenceSession.create(join(dir, "onnx/text_model.onnx"));
    const vision = await ort.InferenceSession.create(join(dir, "onnx/vision_model.onnx"));
    try {
      assert.deepEqual(text.inputNames, ["input_ids"]);
      assert.deepEqual(text.outputNames, ["text_embeds"]);
      assert.deepEqual(vision.inputNames, ["pixel_values"]);
      assert.deepEqual(vision.outputNames, ["image_embeds"]);
      const ids = new ort.Tensor("int64", new BigInt64Array(2 * 77).fill(5n), [2, 77]);
      const t = (await text.run({ input_ids: ids })).text_embeds;
      assert.equal(t.type, "float32");
      assert.deepEqual(t.dims, [2, D]);
      const px = new ort.Tensor("float32", new Float32Array(2 * 3 * 224 * 224).fill(0.25), [2, 3, 224, 224]);
      const v = (await vision.run({ pixel_values: px })).image_embeds;
      assert.equal(v.type, "float32");
      assert.deepEqual(v.dims, [2, D]);
    } finally {
      await text.release();
      await vision.release();
    }
  });

  it("is deterministic for a seed (byte-identical files) and differs between seeds", async () => {
    const a = await folder("a", 11);
    const b = await folder("b", 11);
    const c = await folder("c", 12);
    for (const f of ["onnx/text_model.onnx", "onnx/vision_model.onnx", "vocab.json", "preprocessor_config.json"]) {
      assert.ok((await readFile(join(a, f))).equals(await readFile(join(b, f))), f);
    }
    assert.ok(!(await readFile(join(a, "onnx/text_model.onnx"))).equals(await readFile(join(c, "onnx/text_model.onnx"))));
    assert.ok(!(await readFile(join(a, "onnx/vision_model.onnx"))).equals(await readFile(join(c, "onnx/vision_model.onnx"))));
  });

  it("different texts give different embeddings; the same input gives the same score", async () => {
    const dir = await folder("score", 5);
    const clip = await ClipScorer.load(dir);
    try {
      const cat = await clip.textEmbedding("a photo of a cat");
      const cat2 = await clip.textEmbedding("a photo of a cat");
      const dog = await clip.textEmbedding("a painting of a red dog");
      assert.equal(cat.length, D);
      assert.deepEqual(cat, cat2);
      assert.ok(cat.some((x, i) => Math.abs(x - dog[i]) > 1e-4), "embeddings of different prompts should differ");
      const img = await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 10, g: 200, b: 90 } } }).png().toBuffer();
      const other = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 250, g: 20, b: 20 } } }).png().toBuffer();
      const e1 = await clip.imageEmbedding(img);
      const e2 = await clip.imageEmbedding(other);
      assert.equal(e1.length, D);
      assert.ok(e1.some((x, i) => Math.abs(x - e2[i]) > 1e-4), "embeddings of different images should differ");
      const s1 = await clip.score("a photo of a cat", img);
      const s2 = await clip.score("a photo of a cat", img);
      assert.equal(s1, s2);
      assert.ok(s1 > 0 && s1 < 100, `${s1}`);
      assert.notEqual(await clip.score("a painting of a red dog", img), s1);
      assert.notEqual(await clip.score("a photo of a cat", other), s1);
    } finally {
      await clip.release();
    }
  });

  it("clipScoreOf is 100·max(0, cos)", () => {
    assert.equal(clipScoreOf([1, 0], [2, 0]), 100);
    assert.equal(clipScoreOf([1, 0], [-1, 0]), 0);
    assert.ok(Math.abs(clipScoreOf([1, 0], [1, 1]) - 100 / Math.SQRT2) < 1e-9);
    assert.equal(clipScoreOf([0, 0], [1, 1]), 0);
  });
});
