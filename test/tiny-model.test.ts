import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { decodeModel, GraphBuilder, ONNX_IR_VERSION, ONNX_OPSET, Rng } from "../src/backends/onnx/tiny/onnx-writer.js";
import { bytesToUnicode, makeTinyModel, TINY_DIMS, tinyModelFiles, tinyVocab, type TinyModelOptions } from "../src/backends/onnx/tiny/make-tiny-model.js";

// --- onnxruntime-node is optional (not a dependency yet): those subtests skip when it is absent.
interface OrtTensor {
  readonly dims: readonly number[];
  readonly data: ArrayLike<number | bigint>;
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  InferenceSession: { create(path: string): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array | Int32Array | BigInt64Array, dims: number[]) => OrtTensor;
}
const ORT_SPECIFIER = "onnxruntime-node";
let ort: Ort | undefined;
try {
  ort = (await import(ORT_SPECIFIER)) as Ort;
} catch {
  ort = undefined;
}
const ORT_SKIP = ort ? false : "onnxruntime-node is not installed (optional); skipping inference checks";

const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

const VARIANTS: Record<string, TinyModelOptions> = {
  sd: { family: "sd", seed: 1 },
  sdxl: { family: "sdxl", seed: 1 },
  inpaint: { family: "sd", inpainting: true, seed: 1 },
};

let root: string;
const dirs: Record<string, string> = {};

before(async () => {
  root = mkdtempSync(join(tmpdir(), "graphserve-tiny-"));
  for (const [k, opts] of Object.entries(VARIANTS)) {
    dirs[k] = join(root, k);
    await makeTinyModel(dirs[k], opts);
  }
});

after(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const TOKENIZER_FILES = ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"];
const SD_FILES = [
  "model_index.json",
  "scheduler/scheduler_config.json",
  ...TOKENIZER_FILES.map((f) => `tokenizer/${f}`),
  "text_encoder/config.json",
  "text_encoder/model.onnx",
  "unet/config.json",
  "unet/model.onnx",
  "vae_decoder/config.json",
  "vae_decoder/model.onnx",
  "vae_encoder/config.json",
  "vae_encoder/model.onnx",
].sort();
const SDXL_FILES = [
  ...SD_FILES,
  ...TOKENIZER_FILES.map((f) => `tokenizer_2/${f}`),
  "text_encoder_2/config.json",
  "text_encoder_2/model.onnx",
].sort();

describe("tiny model folder layout and JSON", () => {
  test("sd: files, model_index, scheduler, configs", () => {
    const d = dirs.sd;
    assert.deepEqual(listFiles(d), SD_FILES);
    const index = readJson(join(d, "model_index.json"));
    assert.equal(index._class_name, "StableDiffusionPipeline");
    assert.deepEqual(index.scheduler, ["diffusers", "PNDMScheduler"]);
    assert.deepEqual(index.text_encoder, ["transformers", "CLIPTextModel"]);
    assert.deepEqual(index.tokenizer, ["transformers", "CLIPTokenizer"]);
    assert.deepEqual(index.unet, ["diffusers", "UNet2DConditionModel"]);
    assert.deepEqual(index.vae, ["diffusers", "AutoencoderKL"]);
    assert.equal(index.text_encoder_2, undefined);

    const sched = readJson(join(d, "scheduler/scheduler_config.json"));
    assert.equal(sched._class_name, "PNDMScheduler");
    assert.equal(sched.beta_schedule, "scaled_linear");
    assert.equal(sched.beta_start, 0.00085);
    assert.equal(sched.beta_end, 0.012);
    assert.equal(sched.num_train_timesteps, 1000);
    assert.equal(sched.steps_offset, 1);
    assert.equal(sched.skip_prk_steps, true);

    const unet = readJson(join(d, "unet/config.json"));
    assert.equal(unet.in_channels, 4);
    assert.equal(unet.out_channels, 4);
    assert.equal(unet.sample_size, TINY_DIMS.sampleSize);
    assert.equal(unet.cross_attention_dim, TINY_DIMS.te1Hidden);
    assert.equal(unet.addition_embed_type, null);
    for (const c of ["vae_encoder", "vae_decoder"]) {
      const vae = readJson(join(d, c, "config.json"));
      assert.equal(vae.scaling_factor, 0.18215);
      assert.equal(vae.latent_channels, 4);
      assert.equal(2 ** ((vae.block_out_channels as number[]).length - 1), 8);
    }
    const te = readJson(join(d, "text_encoder/config.json"));
    assert.equal(te.hidden_size, TINY_DIMS.te1Hidden);
    assert.equal(te.projection_dim, TINY_DIMS.te1Hidden);
    assert.equal(te.vocab_size, tinyVocab().size);
    assert.equal(te.max_position_embeddings, 77);
  });

  test("sdxl: files, model_index, Euler scheduler, text_time unet, 0.13025 vae", () => {
    const d = dirs.sdxl;
    assert.deepEqual(listFiles(d), SDXL_FILES);
    const index = readJson(join(d, "model_index.json"));
    assert.equal(index._class_name, "StableDiffusionXLPipeline");
    assert.deepEqual(index.scheduler, ["diffusers", "EulerDiscreteScheduler"]);
    assert.deepEqual(index.text_encoder_2, ["transformers", "CLIPTextModelWithProjection"]);
    assert.deepEqual(index.tokenizer_2, ["transformers", "CLIPTokenizer"]);
    const sched = readJson(join(d, "scheduler/scheduler_config.json"));
    assert.equal(sched._class_name, "EulerDiscreteScheduler");
    assert.equal(sched.steps_offset, 1);
    assert.equal(sched.beta_schedule, "scaled_linear");
    const unet = readJson(join(d, "unet/config.json"));
    assert.equal(unet.addition_embed_type, "text_time");
    assert.equal(unet.cross_attention_dim, TINY_DIMS.te1Hidden + TINY_DIMS.te2Hidden);
    assert.equal(
      unet.projection_class_embeddings_input_dim,
      (unet.addition_time_embed_dim as number) * 6 + TINY_DIMS.te2Projection,
    );
    assert.equal(readJson(join(d, "vae_decoder/config.json")).scaling_factor, 0.13025);
    const te2 = readJson(join(d, "text_encoder_2/config.json"));
    assert.equal(te2.hidden_size, TINY_DIMS.te2Hidden);
    assert.equal(te2.projection_dim, TINY_DIMS.te2Projection);
    assert.deepEqual(te2.architectures, ["CLIPTextModelWithProjection"]);
    // SDXL's second tokenizer pads with "!".
    assert.equal(readJson(join(d, "tokenizer_2/tokenizer_config.json")).pad_token, "!");
    assert.equal(readJson(join(d, "tokenizer/tokenizer_config.json")).pad_token, "<|endoftext|>");
  });

  test("sd inpainting: pipeline class and 9-channel unet", () => {
    const d = dirs.inpaint;
    assert.deepEqual(listFiles(d), SD_FILES);
    assert.equal(readJson(join(d, "model_index.json"))._class_name, "StableDiffusionInpaintPipeline");
    assert.equal(readJson(join(d, "unet/config.json")).in_channels, 9);
  });

  test("the whole folder stays small", () => {
    for (const d of Object.values(dirs)) {
      const total = listFiles(d).reduce((n, f) => n + statSync(join(d, f)).size, 0);
      assert.ok(total < 2_000_000, `${d}: ${total} bytes`);
    }
  });
});

/** A minimal CLIP BPE (lowercase, whitespace/punctuation split, byte-level, </w>) over the written files. */
function clipEncode(dir: string, text: string): string[] {
  const vocab = readJson(join(dir, "vocab.json")) as Record<string, number>;
  const ranks = new Map(
    readFileSync(join(dir, "merges.txt"), "utf8").trimEnd().split("\n").slice(1).map((l, i) => [l, i] as const),
  );
  const byteChar = new Map(bytesToUnicode().map((b) => [b.byte, b.char]));
  const out: string[] = ["<|startoftext|>"];
  for (const word of text.toLowerCase().match(/[a-z]+|[0-9]|[^\sa-z0-9]+/g) ?? []) {
    const chars = [...new TextEncoder().encode(word)].map((b) => byteChar.get(b)!);
    let parts = chars.map((c, i) => (i === chars.length - 1 ? c + "</w>" : c));
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    for (const p of parts) assert.ok(p in vocab, `token ${p} not in vocab`);
    out.push(...parts);
  }
  out.push("<|endoftext|>");
  return out;
}

describe("tiny CLIP tokenizer files", () => {
  test("ASCII prompts tokenise with the written vocab and merges", () => {
    const dir = join(dirs.sd, "tokenizer");
    assert.deepEqual(clipEncode(dir, "A photo of the Cat"), ["<|startoftext|>", "a</w>", "photo</w>", "of</w>", "the</w>", "cat</w>", "<|endoftext|>"]);
    assert.deepEqual(clipEncode(dir, "zebra, 42!"), ["<|startoftext|>", "z", "e", "b", "r", "a</w>", ",</w>", "4</w>", "2</w>", "!</w>", "<|endoftext|>"]);
    let ascii = "";
    for (let c = 33; c < 127; c++) ascii += String.fromCharCode(c);
    assert.ok(clipEncode(dir, ascii).length > 10);
  });

  test("vocab holds every byte token, its </w> form, merges and the special tokens (last)", () => {
    const vocab = readJson(join(dirs.sd, "tokenizer/vocab.json")) as Record<string, number>;
    const bytes = bytesToUnicode();
    assert.equal(bytes.length, 256);
    for (const { char } of bytes) {
      assert.ok(char in vocab, `missing ${char}`);
      assert.ok(`${char}</w>` in vocab, `missing ${char}</w>`);
    }
    const size = Object.keys(vocab).length;
    assert.equal(vocab["<|startoftext|>"], size - 2);
    assert.equal(vocab["<|endoftext|>"], size - 1);
    assert.deepEqual(new Set(Object.values(vocab)).size, size);
    // Every ASCII character maps to a byte token.
    const byChar = new Map(bytes.map((b) => [b.byte, b.char]));
    for (let c = 0; c < 128; c++) assert.ok(byChar.get(c)! in vocab);

    const merges = readFileSync(join(dirs.sd, "tokenizer/merges.txt"), "utf8").trimEnd().split("\n");
    assert.equal(merges[0], "#version: 0.2");
    assert.ok(merges.length > 10);
    for (const line of merges.slice(1)) {
      const [a, b] = line.split(" ");
      assert.ok(a in vocab && b in vocab && a + b in vocab, `bad merge ${line}`);
    }
    assert.ok("cat</w>" in vocab && "photo</w>" in vocab);

    const cfg = readJson(join(dirs.sd, "tokenizer/tokenizer_config.json"));
    assert.equal(cfg.model_max_length, 77);
    assert.equal(cfg.bos_token, "<|startoftext|>");
    assert.equal(cfg.eos_token, "<|endoftext|>");
    const special = readJson(join(dirs.sd, "tokenizer/special_tokens_map.json"));
    assert.equal(special.eos_token, "<|endoftext|>");
  });
});

type IO = { name: string; dtype: string; dims: (string | number)[] };
const io = (name: string, dtype: string, dims: (string | number)[]): IO => ({ name, dtype, dims });
const onnx = (d: string, c: string) => decodeModel(readFileSync(join(d, c, "model.onnx")));

describe("ONNX files decode through our schema", () => {
  test("header: ir_version and opset", () => {
    const m = onnx(dirs.sd, "unet");
    assert.equal(m.irVersion, ONNX_IR_VERSION);
    assert.equal(m.opset, ONNX_OPSET);
    assert.ok(m.opTypes.includes("Conv"));
  });

  test("sd text_encoder, unet, vae", () => {
    const D = TINY_DIMS.te1Hidden;
    const te = onnx(dirs.sd, "text_encoder");
    assert.deepEqual(te.inputs, [io("input_ids", "int32", ["batch_size", "sequence_length"])]);
    assert.deepEqual(te.outputs, [
      io("last_hidden_state", "float32", ["batch_size", "sequence_length", D]),
      io("pooler_output", "float32", ["batch_size", D]),
    ]);
    const unet = onnx(dirs.sd, "unet");
    assert.deepEqual(unet.inputs, [
      io("sample", "float32", ["batch_size", "num_channels", "height", "width"]),
      io("timestep", "float32", []),
      io("encoder_hidden_states", "float32", ["batch_size", "sequence_length", D]),
    ]);
    assert.deepEqual(unet.outputs, [io("out_sample", "float32", ["batch_size", 4, "height", "width"])]);
    assert.deepEqual(unet.initializers.find((i) => i.name === "conv_in.weight")?.dims, [4, 4, 3, 3]);
    const enc = onnx(dirs.sd, "vae_encoder");
    assert.deepEqual(enc.inputs, [io("sample", "float32", ["batch_size", "num_channels", "height", "width"])]);
    assert.deepEqual(enc.outputs, [io("latent_sample", "float32", ["batch_size", "num_channels_latent", "height_latent", "width_latent"])]);
    const dec = onnx(dirs.sd, "vae_decoder");
    assert.deepEqual(dec.inputs, [io("latent_sample", "float32", ["batch_size", "num_channels_latent", "height_latent", "width_latent"])]);
    assert.deepEqual(dec.outputs, [io("sample", "float32", ["batch_size", "num_channels", "height", "width"])]);
    assert.ok(dec.opTypes.includes("Resize"));
  });

  test("sdxl text encoders export hidden_states.N; unet has text_embeds and time_ids", () => {
    const L = TINY_DIMS.numHiddenLayers;
    const hs = (D: number) => Array.from({ length: L + 1 }, (_, i) => io(`hidden_states.${i}`, "float32", ["batch_size", "sequence_length", D]));
    const te1 = onnx(dirs.sdxl, "text_encoder");
    assert.deepEqual(te1.outputs, [
      io("last_hidden_state", "float32", ["batch_size", "sequence_length", TINY_DIMS.te1Hidden]),
      io("pooler_output", "float32", ["batch_size", TINY_DIMS.te1Hidden]),
      ...hs(TINY_DIMS.te1Hidden),
    ]);
    const te2 = onnx(dirs.sdxl, "text_encoder_2");
    assert.deepEqual(te2.inputs, [io("input_ids", "int32", ["batch_size", "sequence_length"])]);
    assert.deepEqual(te2.outputs, [
      io("text_embeds", "float32", ["batch_size", TINY_DIMS.te2Projection]),
      io("last_hidden_state", "float32", ["batch_size", "sequence_length", TINY_DIMS.te2Hidden]),
      ...hs(TINY_DIMS.te2Hidden),
    ]);
    const unet = onnx(dirs.sdxl, "unet");
    assert.deepEqual(
      unet.inputs.map((i) => i.name),
      ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"],
    );
    assert.deepEqual(unet.inputs[2], io("encoder_hidden_states", "float32", ["batch_size", "sequence_length", TINY_DIMS.te1Hidden + TINY_DIMS.te2Hidden]));
    assert.deepEqual(unet.inputs[3], io("text_embeds", "float32", ["batch_size", TINY_DIMS.te2Projection]));
    assert.deepEqual(unet.inputs[4], io("time_ids", "float32", ["batch_size", 6]));
  });

  test("inpainting unet convolves 9 channels", () => {
    const unet = onnx(dirs.inpaint, "unet");
    assert.deepEqual(unet.initializers.find((i) => i.name === "conv_in.weight")?.dims, [4, 9, 3, 3]);
  });

  test("dtype and vae-encoder output options", () => {
    const files = tinyModelFiles({ family: "sd", timestepDtype: "int64", inputIdsDtype: "int64", vaeEncoderOutput: "latent_parameters" });
    const unet = decodeModel(files.get("unet/model.onnx") as Uint8Array);
    assert.deepEqual(unet.inputs[1], io("timestep", "int64", ["steps"]));
    const te = decodeModel(files.get("text_encoder/model.onnx") as Uint8Array);
    assert.equal(te.inputs[0].dtype, "int64");
    const enc = decodeModel(files.get("vae_encoder/model.onnx") as Uint8Array);
    assert.equal(enc.outputs[0].name, "latent_parameters");
    assert.deepEqual(enc.initializers.find((i) => i.name === "encoder.conv.weight")?.dims, [8, 3, 8, 8]);
  });
});

describe("determinism", () => {
  test("the same seed writes byte-identical files; another seed changes the weights", async () => {
    for (const [k, opts] of Object.entries(VARIANTS)) {
      const again = join(root, `${k}-again`);
      await makeTinyModel(again, opts);
      for (const f of listFiles(dirs[k])) {
        assert.ok(readFileSync(join(dirs[k], f)).equals(readFileSync(join(again, f))), `${k}/${f} differs`);
      }
    }
    const other = tinyModelFiles({ ...VARIANTS.sd, seed: 2 });
    const base = tinyModelFiles(VARIANTS.sd);
    for (const c of ["text_encoder", "unet", "vae_encoder", "vae_decoder"]) {
      const a = base.get(`${c}/model.onnx`) as Uint8Array;
      const b = other.get(`${c}/model.onnx`) as Uint8Array;
      assert.ok(!Buffer.from(a).equals(Buffer.from(b)), `${c} did not change with the seed`);
    }
    assert.equal(base.get("model_index.json"), other.get("model_index.json"));
  });

  test("Rng is seeded", () => {
    assert.deepEqual(new Rng(7).floats(5, 1), new Rng(7).floats(5, 1));
    assert.notDeepEqual(new Rng(7).floats(5, 1), new Rng(8).floats(5, 1));
  });

  test("GraphBuilder rejects unknown and duplicate tensor names", () => {
    const g = new GraphBuilder("g");
    const x = g.input("x", "float32", [1]);
    assert.throws(() => g.add(x, "nope"), /unknown input/);
    assert.throws(() => g.input("x", "float32", [1]), /already used/);
    assert.throws(() => g.encode(), /no outputs/);
  });
});

// --- onnxruntime inference -------------------------------------------------

type Feeds = Record<string, { type: "float32" | "int32" | "int64"; dims: number[]; data: number[] }>;

function seededValues(n: number, seed: number, scale = 1): number[] {
  return Array.from(new Rng(seed).floats(n, scale));
}

function toTensor(o: Ort, f: Feeds[string]): OrtTensor {
  if (f.type === "float32") return new o.Tensor("float32", Float32Array.from(f.data), f.dims);
  if (f.type === "int32") return new o.Tensor("int32", Int32Array.from(f.data), f.dims);
  return new o.Tensor("int64", BigInt64Array.from(f.data.map((v) => BigInt(v))), f.dims);
}

async function runModel(s: OrtSession, feeds: Feeds): Promise<Record<string, OrtTensor>> {
  const o = ort!;
  return s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(o, v)])));
}

function sameData(a: OrtTensor, b: OrtTensor): boolean {
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/** Runs the model, checks output names/shapes, then perturbs each input and checks that `watch` changes. */
async function checkModel(path: string, feeds: Feeds, expected: Record<string, number[]>, watch: string[]): Promise<void> {
  const s = await ort!.InferenceSession.create(path);
  try {
    assert.deepEqual([...s.inputNames], Object.keys(feeds));
    assert.deepEqual([...s.outputNames], Object.keys(expected));
    const base = await runModel(s, feeds);
    for (const [name, dims] of Object.entries(expected)) {
      assert.deepEqual([...base[name].dims], dims, `${path}: ${name} dims`);
      for (let i = 0; i < base[name].data.length; i++) assert.ok(Number.isFinite(base[name].data[i] as number), `${name} not finite`);
    }
    for (const input of Object.keys(feeds)) {
      const changed: Feeds = { ...feeds, [input]: { ...feeds[input], data: [...feeds[input].data] } };
      const d = changed[input].data;
      // Perturb one element (token ids: another valid id; floats: add 0.5).
      d[d.length - 1] = feeds[input].type === "float32" ? d[d.length - 1] + 0.5 : (d[d.length - 1] + 7) % tinyVocab().size;
      const out = await runModel(s, changed);
      for (const w of watch) assert.ok(!sameData(base[w], out[w]), `${path}: changing ${input} did not change ${w}`);
    }
  } finally {
    await s.release();
  }
}

function idsFeed(batch: number, seq: number, type: "int32" | "int64" = "int32"): Feeds[string] {
  const v = tinyVocab();
  const data: number[] = [];
  for (let b = 0; b < batch; b++) for (let i = 0; i < seq; i++) data.push(i === 0 ? v.bosId : i === seq - 1 ? v.eosId : (b * 31 + i * 17) % 500);
  return { type, dims: [batch, seq], data };
}

describe("onnxruntime-node inference", { skip: ORT_SKIP }, () => {
  const B = 2;
  const S = 77;
  const h = 8;
  const w = 8;

  test("sd text_encoder", async () => {
    const D = TINY_DIMS.te1Hidden;
    await checkModel(join(dirs.sd, "text_encoder/model.onnx"), { input_ids: idsFeed(B, S) }, { last_hidden_state: [B, S, D], pooler_output: [B, D] }, ["last_hidden_state", "pooler_output"]);
  });

  test("sdxl text encoders", async () => {
    const L = TINY_DIMS.numHiddenLayers;
    const hs = (D: number) => Object.fromEntries(Array.from({ length: L + 1 }, (_, i) => [`hidden_states.${i}`, [B, S, D]]));
    const D1 = TINY_DIMS.te1Hidden;
    const D2 = TINY_DIMS.te2Hidden;
    await checkModel(
      join(dirs.sdxl, "text_encoder/model.onnx"),
      { input_ids: idsFeed(B, S) },
      { last_hidden_state: [B, S, D1], pooler_output: [B, D1], ...hs(D1) },
      ["last_hidden_state", "pooler_output", `hidden_states.${L - 1}`],
    );
    await checkModel(
      join(dirs.sdxl, "text_encoder_2/model.onnx"),
      { input_ids: idsFeed(B, S) },
      { text_embeds: [B, TINY_DIMS.te2Projection], last_hidden_state: [B, S, D2], ...hs(D2) },
      ["text_embeds", "last_hidden_state", `hidden_states.${L - 1}`],
    );
  });

  test("sd unet (scalar timestep, as optimum ≥ 1.24 exports)", async () => {
    const D = TINY_DIMS.te1Hidden;
    const feeds: Feeds = {
      sample: { type: "float32", dims: [B, 4, h, w], data: seededValues(B * 4 * h * w, 1) },
      timestep: { type: "float32", dims: [], data: [981] },
      encoder_hidden_states: { type: "float32", dims: [B, S, D], data: seededValues(B * S * D, 2) },
    };
    await checkModel(join(dirs.sd, "unet/model.onnx"), feeds, { out_sample: [B, 4, h, w] }, ["out_sample"]);
  });

  test("sd inpainting unet (9 channels)", async () => {
    const D = TINY_DIMS.te1Hidden;
    const feeds: Feeds = {
      sample: { type: "float32", dims: [B, 9, h, w], data: seededValues(B * 9 * h * w, 1) },
      timestep: { type: "float32", dims: [], data: [500] },
      encoder_hidden_states: { type: "float32", dims: [B, S, D], data: seededValues(B * S * D, 2) },
    };
    await checkModel(join(dirs.inpaint, "unet/model.onnx"), feeds, { out_sample: [B, 4, h, w] }, ["out_sample"]);
  });

  test("sdxl unet", async () => {
    const D = TINY_DIMS.te1Hidden + TINY_DIMS.te2Hidden;
    const P = TINY_DIMS.te2Projection;
    const feeds: Feeds = {
      sample: { type: "float32", dims: [B, 4, h, w], data: seededValues(B * 4 * h * w, 1) },
      timestep: { type: "float32", dims: [], data: [999] },
      encoder_hidden_states: { type: "float32", dims: [B, S, D], data: seededValues(B * S * D, 2) },
      text_embeds: { type: "float32", dims: [B, P], data: seededValues(B * P, 3) },
      time_ids: { type: "float32", dims: [B, 6], data: [64, 64, 0, 0, 64, 64, 64, 64, 0, 0, 64, 64] },
    };
    await checkModel(join(dirs.sdxl, "unet/model.onnx"), feeds, { out_sample: [B, 4, h, w] }, ["out_sample"]);
  });

  test("int64 timestep / input_ids and latent_parameters variants", async () => {
    const dir = join(root, "variant");
    await makeTinyModel(dir, { family: "sd", timestepDtype: "int64", inputIdsDtype: "int64", vaeEncoderOutput: "latent_parameters" });
    const D = TINY_DIMS.te1Hidden;
    await checkModel(
      join(dir, "unet/model.onnx"),
      {
        sample: { type: "float32", dims: [B, 4, h, w], data: seededValues(B * 4 * h * w, 1) },
        timestep: { type: "int64", dims: [1], data: [981] },
        encoder_hidden_states: { type: "float32", dims: [B, S, D], data: seededValues(B * S * D, 2) },
      },
      { out_sample: [B, 4, h, w] },
      ["out_sample"],
    );
    await checkModel(join(dir, "text_encoder/model.onnx"), { input_ids: idsFeed(1, S, "int64") }, { last_hidden_state: [1, S, D], pooler_output: [1, D] }, ["last_hidden_state"]);
    await checkModel(
      join(dir, "vae_encoder/model.onnx"),
      { sample: { type: "float32", dims: [1, 3, 8 * h, 8 * w], data: seededValues(3 * 64 * h * w, 4) } },
      { latent_parameters: [1, 8, h, w] },
      ["latent_parameters"],
    );
  });

  for (const k of ["sd", "sdxl"]) {
    test(`${k} vae encoder and decoder`, async () => {
      const H = 8 * h;
      const W = 8 * w;
      await checkModel(
        join(dirs[k], "vae_encoder/model.onnx"),
        { sample: { type: "float32", dims: [B, 3, H, W], data: seededValues(B * 3 * H * W, 5) } },
        { latent_sample: [B, 4, h, w] },
        ["latent_sample"],
      );
      await checkModel(
        join(dirs[k], "vae_decoder/model.onnx"),
        { latent_sample: { type: "float32", dims: [B, 4, h, w], data: seededValues(B * 4 * h * w, 6) } },
        { sample: [B, 3, H, W] },
        ["sample"],
      );
      // Non-square, batch 1.
      const s = await ort!.InferenceSession.create(join(dirs[k], "vae_decoder/model.onnx"));
      const out = await runModel(s, { latent_sample: { type: "float32", dims: [1, 4, 4, 6], data: seededValues(96, 7) } });
      assert.deepEqual([...out.sample.dims], [1, 3, 32, 48]);
      for (let i = 0; i < out.sample.data.length; i++) assert.ok(Math.abs(out.sample.data[i] as number) < 1);
      await s.release();
    });
  }

  test("writer numerics: a hand-checked graph (Transpose, MatMul, Add, Sigmoid, Concat, ReduceMean, Cast, Reshape, Conv, Resize)", async () => {
    const g = new GraphBuilder("check", 3);
    const x = g.input("x", "float32", ["rows", 3]);
    const xx = g.matMul(x, g.transpose(x, [1, 0])); // x·xᵀ [rows, rows]
    const bias = g.initializer("bias", "float32", [1], [0.25]);
    g.sigmoid(g.add(xx, bias), "y");
    g.output("y", "float32", ["rows", "rows"]);
    const cat = g.concat([x, g.constFloat([7, 8, 9], [1, 3])], 0); // [rows+1, 3]
    g.cast(g.reduceMean(cat, [0], false), "int64", "m");
    g.output("m", "int64", [3]);
    // 1×1 Conv with weight 2 then nearest ×2 resize, on x reshaped to [1,1,rows,3].
    const img = g.reshape(x, [1, 1, -1, 3]);
    const conv = g.conv(img, g.initializer("w", "float32", [1, 1, 1, 1], [2]), undefined, { kernel_shape: [1, 1] });
    g.resizeNearest(conv, [1, 1, 2, 2], "up");
    g.output("up", "float32", [1, 1, "r2", 6]);
    const path = join(root, "check.onnx");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(path, g.encode());
    const s = await ort!.InferenceSession.create(path);
    const xs = [1, 2, 3, -1, 0, 0.5];
    const out = await s.run({ x: new ort!.Tensor("float32", Float32Array.from(xs), [2, 3]) });
    const dot = (a: number, b: number) => xs[a * 3] * xs[b * 3] + xs[a * 3 + 1] * xs[b * 3 + 1] + xs[a * 3 + 2] * xs[b * 3 + 2];
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const want = [sig(dot(0, 0) + 0.25), sig(dot(0, 1) + 0.25), sig(dot(1, 0) + 0.25), sig(dot(1, 1) + 0.25)];
    assert.deepEqual([...out.y.dims], [2, 2]);
    for (let i = 0; i < 4; i++) assert.ok(Math.abs((out.y.data[i] as number) - want[i]) < 1e-6);
    // mean over rows of [[1,2,3],[-1,0,0.5],[7,8,9]] = [2.33.., 3.33.., 4.166..] → int64 truncation
    assert.deepEqual([...(out.m.data as BigInt64Array)], [2n, 3n, 4n]);
    assert.deepEqual([...out.up.dims], [1, 1, 4, 6]);
    assert.equal(out.up.data[0], 2); // x[0][0]·2
    assert.equal(out.up.data[1], 2);
    assert.equal(out.up.data[2], 4); // x[0][1]·2
    assert.equal(out.up.data[6], 2); // second upsampled row repeats the first
    assert.equal(out.up.data[12], -2); // x[1][0]·2
    await s.release();
  });

  test("text encoders pool at EOS and are causal, like CLIP", async () => {
    const v = tinyVocab();
    const prompt = [v.bosId, 10, 20, 30, v.eosId];
    const padded = (pad: number) => [...prompt, ...Array.from({ length: 3 }, () => pad)];
    for (const [c, pooledName] of [["text_encoder", "pooler_output"], ["text_encoder_2", "text_embeds"]] as const) {
      const s = await ort!.InferenceSession.create(join(dirs.sdxl, c, "model.onnx"));
      const run = (ids: number[]) => runModel(s, { input_ids: { type: "int32", dims: [1, ids.length], data: ids } });
      const a = await run(padded(v.eosId));
      const b = await run(padded(0)); // "!" padding, as tokenizer_2 does
      const c2 = await run([v.bosId, 10, 21, 30, v.eosId, v.eosId, v.eosId, v.eosId]);
      assert.ok(sameData(a[pooledName], b[pooledName]), `${c}: padding after EOS changed ${pooledName}`);
      assert.ok(!sameData(a[pooledName], c2[pooledName]), `${c}: a prompt token did not change ${pooledName}`);
      assert.ok(!sameData(a.last_hidden_state, b.last_hidden_state), `${c}: padding did not change last_hidden_state`);
      // Causal: the first 5 positions do not see the padding.
      const D = a.last_hidden_state.dims[2];
      for (let i = 0; i < 5 * D; i++) assert.equal(a.last_hidden_state.data[i], b.last_hidden_state.data[i]);
      await s.release();
    }
  });

  test("text encoder accepts short sequences; metadata keeps symbolic dims", async () => {
    const s = await ort!.InferenceSession.create(join(dirs.sdxl, "text_encoder_2/model.onnx"));
    const out = await runModel(s, { input_ids: idsFeed(1, 5) });
    assert.deepEqual([...out.last_hidden_state.dims], [1, 5, TINY_DIMS.te2Hidden]);
    assert.deepEqual([...out.text_embeds.dims], [1, TINY_DIMS.te2Projection]);
    const meta = (s as unknown as { inputMetadata?: { name: string; type?: string; shape?: unknown[] }[] }).inputMetadata;
    if (meta) {
      assert.equal(meta[0].name, "input_ids");
      assert.equal(meta[0].type, "int32");
      assert.deepEqual(meta[0].shape, ["batch_size", "sequence_length"]);
    }
    await s.release();
  });

  test("models exist where a loader looks for them", () => {
    for (const d of Object.values(dirs)) assert.ok(existsSync(join(d, "unet/model.onnx")));
  });
});
