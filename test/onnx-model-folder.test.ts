/** Model folder loading and validation: broken folders fail at load, naming the file and the problem. */
import { strict as assert } from "node:assert";
import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { OnnxBackend } from "../src/backends/onnx/onnx-backend.js";
import { loadModelSessions, readModelFolder, releaseSessions } from "../src/backends/onnx/model-folder.js";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { buildTextEncoder, makeTinyModel, TINY_DIMS, type TinyModelOptions } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { BackendError } from "../src/backends/types.js";

let root: string;
let n = 0;
async function folder(opts: TinyModelOptions = { family: "sd" }): Promise<string> {
  const dir = join(root, `m${n++}`);
  await makeTinyModel(dir, opts);
  return dir;
}

async function editJson(path: string, edit: (j: Record<string, unknown>) => void): Promise<void> {
  const j = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  edit(j);
  await writeFile(path, JSON.stringify(j));
}

/** Load must fail with a BackendError whose message names `file` and matches `problem`. */
async function failsNaming(dir: string, file: string, problem: RegExp): Promise<void> {
  await assert.rejects(OnnxPipeline.load(dir), (e: unknown) => {
    assert.ok(e instanceof BackendError, `not a BackendError: ${e}`);
    assert.ok(e.message.includes(join(dir, file)), `"${e.message}" does not name ${file}`);
    assert.match(e.message, problem);
    return true;
  });
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), "onnx-folder-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("readModelFolder", () => {
  it("reads SD, SDXL and inpainting folders", async () => {
    const sd = await readModelFolder(await folder());
    assert.equal(sd.family, "sd");
    assert.equal(sd.inpainting, false);
    assert.equal(sd.contextDim, TINY_DIMS.te1Hidden);
    assert.equal(sd.vaeScalingFactor, 0.18215);
    assert.equal(sd.vaeScaleFactor, 8);
    assert.equal(sd.schedulerConfig._class_name, "PNDMScheduler");
    const xl = await readModelFolder(await folder({ family: "sdxl", inpainting: true }));
    assert.equal(xl.family, "sdxl");
    assert.equal(xl.inpainting, true);
    assert.equal(xl.pooledDim, TINY_DIMS.te2Projection);
    assert.equal(xl.vaeScalingFactor, 0.13025);
  });

  it("sessions report their input dtypes", async () => {
    const info = await readModelFolder(await folder({ family: "sd", timestepDtype: "int64", vaeEncoderOutput: "latent_parameters" }));
    const s = await loadModelSessions(info);
    assert.deepEqual(s.timestep, { type: "int64", length: "batch" });
    assert.equal(s.textEncoders[0]?.idsDtype, "int32");
    assert.equal(s.vaeEncoderOutput, "latent_parameters");
    await releaseSessions(s);
  });
});

describe("broken folders fail at load, naming the file", () => {
  it("missing model_index.json", async () => {
    const dir = await folder();
    await unlink(join(dir, "model_index.json"));
    await failsNaming(dir, "model_index.json", /missing/);
  });

  it("missing unet/model.onnx", async () => {
    const dir = await folder();
    await unlink(join(dir, "unet", "model.onnx"));
    await failsNaming(dir, "unet/model.onnx", /missing/);
  });

  it("corrupt unet/model.onnx", async () => {
    const dir = await folder();
    await writeFile(join(dir, "unet", "model.onnx"), Buffer.from("this is not a protobuf at all \x00\x01\x02"));
    await failsNaming(dir, "unet/model.onnx", /cannot load the ONNX model/);
  });

  it("truncated vae_decoder/model.onnx", async () => {
    const dir = await folder();
    const path = join(dir, "vae_decoder", "model.onnx");
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await failsNaming(dir, "vae_decoder/model.onnx", /cannot load the ONNX model/);
  });

  it("a text encoder with the wrong input name", async () => {
    const dir = await folder();
    const path = join(dir, "text_encoder", "model.onnx");
    // Rename input_ids → input_idz everywhere in the graph (same length keeps the protobuf valid).
    const bytes = Buffer.from(buildTextEncoder({ hidden: TINY_DIMS.te1Hidden, hiddenStates: false, inputIdsDtype: "int32", seed: 1 }));
    const from = Buffer.from("input_ids");
    const to = Buffer.from("input_idz");
    for (let i = bytes.indexOf(from); i >= 0; i = bytes.indexOf(from, i + 1)) to.copy(bytes, i);
    await writeFile(path, bytes);
    await failsNaming(dir, "text_encoder/model.onnx", /missing input "input_ids".*"input_idz"/);
  });

  it("a text encoder whose hidden size differs from the UNet's (ONNX shapes)", async () => {
    const dir = await folder();
    await writeFile(join(dir, "text_encoder", "model.onnx"), buildTextEncoder({ hidden: 48, hiddenStates: false, inputIdsDtype: "int32", seed: 1 }));
    await failsNaming(dir, "text_encoder/model.onnx", /"last_hidden_state" has width 48, but the UNet.s encoder_hidden_states width is 32/);
  });

  it("a text encoder config whose hidden_size differs from cross_attention_dim", async () => {
    const dir = await folder();
    await editJson(join(dir, "text_encoder", "config.json"), (j) => (j.hidden_size = 40));
    await failsNaming(dir, "text_encoder/config.json", /hidden_size 40 does not match the UNet's cross_attention_dim 32/);
  });

  it("SDXL encoders that do not add up to cross_attention_dim", async () => {
    const dir = await folder({ family: "sdxl" });
    await editJson(join(dir, "text_encoder_2", "config.json"), (j) => (j.hidden_size = 80));
    await failsNaming(dir, "text_encoder_2/config.json", /32 \+ 80 do not add up/);
  });

  it("SDXL text_encoder_2 without hidden states", async () => {
    const dir = await folder({ family: "sdxl" });
    // A CLIPTextModelWithProjection export that lacks hidden_states.N.
    await writeFile(
      join(dir, "text_encoder_2", "model.onnx"),
      buildTextEncoder({ hidden: TINY_DIMS.te2Hidden, projection: TINY_DIMS.te2Projection, hiddenStates: false, inputIdsDtype: "int32", seed: 2 }),
    );
    await failsNaming(dir, "text_encoder_2/model.onnx", /hidden_states/);
  });

  it("UNet in_channels that match nothing", async () => {
    const dir = await folder();
    await editJson(join(dir, "unet", "config.json"), (j) => (j.in_channels = 7));
    await failsNaming(dir, "unet/config.json", /in_channels 7/);
  });

  it("an unknown scheduler class", async () => {
    const dir = await folder();
    await editJson(join(dir, "scheduler", "scheduler_config.json"), (j) => (j._class_name = "KarrasVeScheduler"));
    await failsNaming(dir, "scheduler/scheduler_config.json", /KarrasVeScheduler/);
  });

  it("invalid JSON", async () => {
    const dir = await folder();
    await writeFile(join(dir, "unet", "config.json"), "{ nope");
    await failsNaming(dir, "unet/config.json", /not valid JSON/);
  });

  it("missing tokenizer files", async () => {
    const dir = await folder();
    await unlink(join(dir, "tokenizer", "vocab.json"));
    await failsNaming(dir, "tokenizer", /tokenizer files/);
  });

  it("a folder without vae_encoder loads for text2image only", async () => {
    const dir = await folder();
    await rm(join(dir, "vae_encoder"), { recursive: true });
    const b = await OnnxBackend.load(dir);
    try {
      assert.deepEqual(b.capabilities().modes, ["text2image"]);
      await assert.rejects(b.generate({ mode: "image2image", prompt: "x", image: { width: 8, height: 8, data: new Uint8Array(192) } }), BackendError);
      const r = await b.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 2, rngSeed: 1 });
      assert.equal(r.data.length, 64 * 64 * 3);
    } finally {
      await b.dispose();
    }
  });

  it("OnnxBackend.load reports the worker's load error", async () => {
    const dir = await folder();
    await writeFile(join(dir, "unet", "model.onnx"), Buffer.from("garbage"));
    await assert.rejects(OnnxBackend.load(dir), (e: unknown) => e instanceof BackendError && e.message.includes(join(dir, "unet", "model.onnx")));
  });
});
