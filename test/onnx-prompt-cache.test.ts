/**
 * The prompt-embedding cache (src/backends/onnx/prompt-cache.ts): a repeated prompt runs no text
 * encoder, anything that changes the conditioning does, and the images are bit for bit those of a
 * pipeline without the cache. Text-encoder runs are counted on the ORT sessions themselves.
 */
import { strict as assert } from "node:assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { OnnxBackend } from "../src/backends/onnx/onnx-backend.js";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { DEFAULT_PROMPT_CACHE, PromptCache, promptCacheKey, promptCacheLimits, tileConditioning } from "../src/backends/onnx/prompt-cache.js";
import type { Conditioning } from "../src/backends/onnx/families/types.js";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { BackendError, type GenerationRequest } from "../src/backends/types.js";
import { CONFORMANCE_ROOT } from "./helpers/conformance.js";
import { countRuns } from "./helpers/session-runs.js";

let root: string;
const pipelines: OnnxPipeline[] = [];
before(async () => {
  root = await mkdtemp(join(tmpdir(), "onnx-prompt-cache-"));
});
after(async () => {
  for (const p of pipelines) await p.dispose();
  await rm(root, { recursive: true, force: true });
});

async function load(dir: string, opts: { promptCacheEntries?: number; promptCacheMiB?: number } = {}): Promise<OnnxPipeline> {
  const p = await OnnxPipeline.load(dir, { intraOpNumThreads: 1, ...opts });
  pipelines.push(p);
  return p;
}


function cond(rows: number, seq: number, dim: number, fill: number, pooledDim?: number): Conditioning {
  const hidden = new Float32Array(rows * seq * dim).map((_, i) => fill + i);
  return { hidden, seq, dim, ...(pooledDim ? { pooled: new Float32Array(rows * pooledDim).map((_, i) => -fill - i), pooledDim } : {}) };
}

describe("PromptCache", () => {
  it("evicts the least recently used entry past the entry bound, and past the byte bound", () => {
    const c = new PromptCache({ maxEntries: 2, maxBytes: 1 << 20 });
    const a = cond(2, 3, 4, 0);
    c.set("a", a);
    c.set("b", cond(2, 3, 4, 1));
    assert.equal(c.get("a"), a); // a is now the most recent
    c.set("c", cond(2, 3, 4, 2));
    assert.equal(c.get("b"), undefined, "b was the least recently used");
    assert.ok(c.get("a") && c.get("c"));
    assert.deepEqual(c.stats(), { hits: 3, misses: 1, evictions: 1, entries: 2, bytes: 2 * 24 * 4 });

    // 3 entries of 96 bytes fit 300 bytes; a fourth pushes the oldest out.
    const b = new PromptCache({ maxEntries: 10, maxBytes: 300 });
    for (const k of ["1", "2", "3", "4"]) b.set(k, cond(2, 3, 4, 0));
    assert.equal(b.get("1"), undefined);
    assert.deepEqual(b.stats().entries, 3);
    // An entry alone over the bound is not kept, and pushes nothing out.
    b.set("big", cond(4, 3, 8, 0));
    assert.equal(b.get("big"), undefined);
    assert.equal(b.stats().entries, 3);
    // Pooled embeddings count too.
    assert.equal(new PromptCache().enabled, true);
    const p = new PromptCache({ maxEntries: 10, maxBytes: 24 * 4 + 2 * 5 * 4 });
    p.set("x", cond(2, 3, 4, 0, 5));
    assert.equal(p.stats().bytes, 24 * 4 + 2 * 5 * 4);
    p.set("y", cond(2, 3, 4, 0, 5));
    assert.equal(p.get("x"), undefined);
  });

  it("0 entries or 0 MiB disables it", () => {
    for (const limits of [{ maxEntries: 0, maxBytes: 1 << 20 }, { maxEntries: 8, maxBytes: 0 }]) {
      const c = new PromptCache(limits);
      c.set("a", cond(1, 2, 2, 0));
      assert.equal(c.get("a"), undefined);
      assert.deepEqual(c.stats(), { hits: 0, misses: 0, evictions: 0, entries: 0, bytes: 0 });
    }
  });

  it("limits: defaults, MiB, and bad values refused naming the option", () => {
    assert.deepEqual(promptCacheLimits(undefined, undefined), DEFAULT_PROMPT_CACHE);
    assert.deepEqual(promptCacheLimits(3, 0.5), { maxEntries: 3, maxBytes: 512 * 1024 });
    assert.deepEqual(promptCacheLimits(0, undefined), { ...DEFAULT_PROMPT_CACHE, maxEntries: 0 });
    for (const [entries, mib, name] of [[-1, undefined, "promptCacheEntries"], [1.5, undefined, "promptCacheEntries"], ["8", undefined, "promptCacheEntries"], [undefined, -2, "promptCacheMiB"], [undefined, Number.NaN, "promptCacheMiB"], [undefined, "64", "promptCacheMiB"]] as const) {
      assert.throws(() => promptCacheLimits(entries, mib), (e: Error) => e instanceof BackendError && e.message.startsWith(`${name} must be a non-negative`), `${String(entries)} ${String(mib)}`);
    }
  });

  it("keys every prompt field (absent apart from empty), guidance and the T5 length", () => {
    const base: GenerationRequest = { mode: "text2image", prompt: "a cat" };
    const k = (r: Partial<GenerationRequest>, cfg = true, L = 0) => promptCacheKey({ ...base, ...r }, cfg, L);
    const keys = [
      k({}),
      k({}, false),
      k({}, true, 77),
      k({ negativePrompt: "" }),
      k({ negativePrompt: "dog" }),
      k({ negativePrompt2: "" }),
      k({ negativePrompt3: "" }),
      k({ prompt2: "a cat" }),
      k({ prompt3: "a cat" }),
      k({ prompt: "a cat " }),
    ];
    assert.equal(new Set(keys).size, keys.length);
    // What a request holds besides its prompts does not matter.
    assert.equal(k({ rngSeed: 4, numImagesPerPrompt: 3, width: 128, guidanceScale: 9 }), k({}));
    // A long prompt makes a key as short as any other.
    assert.equal(k({ prompt: "x".repeat(32_000) }).length, keys[0].length);
  });

  it("tiles one image's rows to n, each row n times in order, pooled included", () => {
    const one = cond(2, 2, 3, 10, 4);
    const t = tileConditioning(one, 3);
    const rowLen = 6;
    assert.equal(t.hidden.length, 6 * rowLen);
    for (let r = 0; r < 2; r++) for (let k = 0; k < 3; k++) assert.deepEqual([...t.hidden.subarray((r * 3 + k) * rowLen, (r * 3 + k + 1) * rowLen)], [...one.hidden.subarray(r * rowLen, (r + 1) * rowLen)]);
    for (let r = 0; r < 2; r++) for (let k = 0; k < 3; k++) assert.deepEqual([...t.pooled!.subarray((r * 3 + k) * 4, (r * 3 + k + 1) * 4)], [...one.pooled!.subarray(r * 4, (r + 1) * 4)]);
    assert.notEqual(tileConditioning(one, 1).hidden, one.hidden, "even n = 1 gets a copy");
  });
});

describe("the pipeline's prompt cache", () => {
  it("SD: a repeated prompt runs no text encoder, for any n and seed; a new negative prompt does; images equal the uncached pipeline's", async () => {
    const dir = join(root, "sd");
    await makeTinyModel(dir, { family: "sd" });
    const cached = await load(dir);
    const plain = await load(dir, { promptCacheEntries: 0 });
    const runs = countRuns(cached.sessions.textEncoders.map((e) => e?.session));
    const plainRuns = countRuns(plain.sessions.textEncoders.map((e) => e?.session));
    const base: GenerationRequest = { mode: "text2image", prompt: "a red dog", numInferenceSteps: 2, guidanceScale: 3, rngSeed: 1 };
    const sequence: [GenerationRequest, number][] = [
      [base, 1],
      [base, 0],
      [{ ...base, rngSeed: 2, numImagesPerPrompt: 4 }, 0], // n = 4 shares n = 1's entry
      [{ ...base, negativePrompt: "blurry" }, 1],
      [{ ...base, negativePrompt: "blurry", numImagesPerPrompt: 2 }, 0],
      [{ ...base, negativePrompt: "" }, 1], // "" is not an absent negative prompt
      [{ ...base, guidanceScale: 1 }, 1], // no guided batch: the positive row alone
      [{ ...base, guidanceScale: 8 }, 0], // any scale above 1 conditions alike
      [{ ...base, prompt: "a blue dog" }, 1],
      [base, 0],
    ];
    for (const [i, [req, want]] of sequence.entries()) {
      const before = runs.runs;
      const a = await cached.generate(req);
      assert.equal(runs.runs - before, want, `request ${i}: text-encoder runs`);
      assert.equal(cached.stats.textEncoderRuns, want, `request ${i}: the pipeline's own count`);
      const b = await plain.generate(req);
      assert.deepEqual(a.data, b.data, `request ${i}: the cached conditioning gives the same bytes`);
    }
    assert.equal(plainRuns.runs, sequence.length, "without the cache every request encodes");
    assert.deepEqual(cached.promptCache.stats(), { hits: 5, misses: 5, evictions: 0, entries: 5, bytes: cached.promptCache.stats().bytes });
  });

  it("SDXL: both encoders skipped on a hit; an absent negative prompt (zeroed) and an empty one are cached apart", async () => {
    const dir = join(root, "sdxl");
    await makeTinyModel(dir, { family: "sdxl" });
    const cached = await load(dir);
    const plain = await load(dir, { promptCacheMiB: 0 });
    const runs = countRuns(cached.sessions.textEncoders.map((e) => e?.session));
    const base: GenerationRequest = { mode: "text2image", prompt: "a photo of a cat", numInferenceSteps: 2, rngSeed: 4, guidanceScale: 3 };
    for (const [req, want] of [[base, 2], [{ ...base, negativePrompt: "" }, 2], [base, 0], [{ ...base, negativePrompt: "" }, 0], [{ ...base, prompt2: "a red horse" }, 2]] as const) {
      const before = runs.runs;
      const a = await cached.generate(req);
      assert.equal(runs.runs - before, want);
      assert.deepEqual(a.data, (await plain.generate(req)).data);
    }
  });

  it("FLUX: the T5 length is part of the key; a repeated request runs neither CLIP nor T5", async () => {
    const cached = await load(join(CONFORMANCE_ROOT, "flux-schnell/optimum-onnx-fp32"));
    const plain = await load(join(CONFORMANCE_ROOT, "flux-schnell/optimum-onnx-fp32"), { promptCacheEntries: 0 });
    const runs = countRuns(cached.sessions.textEncoders.map((e) => e?.session));
    const base: GenerationRequest = { mode: "text2image", prompt: "three cats", width: 64, height: 64, numInferenceSteps: 2, rngSeed: 3, maxSequenceLength: 16 };
    for (const [req, want] of [[base, 2], [base, 0], [{ ...base, maxSequenceLength: 32 }, 2], [{ ...base, numImagesPerPrompt: 2 }, 0], [{ ...base, prompt2: "a dog" }, 2]] as const) {
      const before = runs.runs;
      const a = await cached.generate(req);
      assert.equal(runs.runs - before, want, JSON.stringify(req));
      assert.deepEqual(a.data, (await plain.generate(req)).data);
    }
  });

  it("evicts by bytes: SD3 conditioning past the bound is encoded again", async () => {
    // One SD3 entry under guidance at T5 length 16 on the tiny export: 2 rows × (77 + 16) × 32 floats + pooled.
    const dir = join(CONFORMANCE_ROOT, "sd3/optimum-onnx-fp32");
    const probe = await load(dir);
    const base: GenerationRequest = { mode: "text2image", prompt: "three cats", width: 64, height: 64, numInferenceSteps: 1, rngSeed: 3, maxSequenceLength: 16, guidanceScale: 7 };
    await probe.generate(base);
    const entry = probe.promptCache.stats().bytes;
    assert.ok(entry > 0);
    // Room for one entry and a half: the second prompt pushes the first out.
    const small = await load(dir, { promptCacheMiB: (1.5 * entry) / 1024 ** 2 });
    const runs = countRuns(small.sessions.textEncoders.map((e) => e?.session));
    const encoders = small.sessions.textEncoders.filter(Boolean).length;
    for (const [req, want] of [[base, encoders], [base, 0], [{ ...base, prompt: "a dog" }, encoders], [base, encoders]] as const) {
      const before = runs.runs;
      await small.generate(req);
      assert.equal(runs.runs - before, want, req.prompt);
    }
    assert.equal(small.promptCache.stats().evictions, 2);
  });
});

describe("OnnxBackend prompt-cache options", () => {
  it("refuses bad bounds at load, from options or properties, before any worker starts", async () => {
    const dir = join(root, "sd-backend");
    await makeTinyModel(dir, { family: "sd" });
    await assert.rejects(OnnxBackend.load(dir, { promptCacheEntries: -1 }), (e: Error) => e instanceof BackendError && /promptCacheEntries must be a non-negative integer/.test(e.message));
    await assert.rejects(OnnxBackend.load(dir, { properties: { promptCacheMiB: "lots" } }), (e: Error) => e instanceof BackendError && /promptCacheMiB must be a non-negative number/.test(e.message));
  });
});
