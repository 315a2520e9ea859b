/**
 * FLUX.1 and SD3 on the ONNX pipeline beyond the diffusers goldens (conformance.test.ts): previews
 * decoded from FLUX's packed latents, SD3 without its optional T5 encoder, and the folders and
 * requests these families refuse, each with the file or field at fault.
 */
import { strict as assert } from "node:assert";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { readModelFolder } from "../src/backends/onnx/model-folder.js";
import type { RgbImage } from "../src/backends/types.js";
import { CONFORMANCE_ROOT } from "./helpers/conformance.js";

const SCHNELL = join(CONFORMANCE_ROOT, "flux-schnell/optimum-onnx-fp32");
const DEV = join(CONFORMANCE_ROOT, "flux-dev/optimum-onnx-fp32");
const SD3 = join(CONFORMANCE_ROOT, "sd3/optimum-onnx-fp32");

const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A copy of `folder` changed by `edit` (model_index.json parsed for convenience). */
function variant(folder: string, edit: (dir: string, index: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), "graphserve-family-"));
  temps.push(dir);
  cpSync(folder, dir, { recursive: true });
  const index = JSON.parse(readFileSync(join(dir, "model_index.json"), "utf8")) as Record<string, unknown>;
  edit(dir, index);
  writeFileSync(join(dir, "model_index.json"), JSON.stringify(index));
  return dir;
}

function editJson(path: string, change: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  change(json);
  writeFileSync(path, JSON.stringify(json));
}

describe("FLUX previews", () => {
  it("decode the packed latents: a preview after the last step is the final image", async () => {
    // VAE-decoded previews (approximate ones are in onnx-previews.test.ts).
    const p = await OnnxPipeline.load(SCHNELL, { intraOpNumThreads: 1, previews: "vae" });
    try {
      const previews: { step: number; images: RgbImage[] }[] = [];
      const r = await p.generate(
        { mode: "text2image", prompt: "three cats", width: 96, height: 64, numImagesPerPrompt: 2, numInferenceSteps: 3, rngSeed: 4, maxSequenceLength: 16 },
        { onStep: () => ({ preview: true }), onPreview: (step, images) => previews.push({ step, images: images.map((i) => ({ ...i, data: i.data.slice() })) }) },
      );
      assert.deepEqual(previews.map((x) => x.step), [0, 1, 2]);
      for (const { images } of previews) assert.deepEqual(images.map((i) => `${i.width}x${i.height}`), ["96x64", "96x64"]);
      const last = previews[2].images;
      assert.deepEqual(Buffer.concat(last.map((i) => i.data)), Buffer.from(r.data), "the last preview decodes the final latents");
      assert.ok(!Buffer.from(previews[0].images[0].data).equals(Buffer.from(last[0].data)), "earlier previews show earlier latents");
    } finally {
      await p.dispose();
    }
  });
});

describe("SD3 without T5", () => {
  it("loads a folder that leaves text_encoder_3 out and conditions on zeros in its place", async () => {
    const noT5 = variant(SD3, (dir, index) => {
      rmSync(join(dir, "text_encoder_3"), { recursive: true });
      rmSync(join(dir, "tokenizer_3"), { recursive: true });
      index.text_encoder_3 = [null, null];
      index.tokenizer_3 = [null, null];
    });
    const [a, b] = [await OnnxPipeline.load(SD3, { intraOpNumThreads: 1 }), await OnnxPipeline.load(noT5, { intraOpNumThreads: 1 })];
    try {
      assert.equal(b.info.paths.textEncoders[2], undefined);
      const req = { mode: "text2image" as const, prompt: "three cats", width: 64, height: 64, numInferenceSteps: 2, rngSeed: 1, maxSequenceLength: 8 };
      const [withT5, without] = [await a.generate(req), await b.generate(req)];
      assert.equal(without.data.length, 64 * 64 * 3);
      assert.ok(!Buffer.from(withT5.data).equals(Buffer.from(without.data)), "T5's part of the sequence matters");
      await assert.rejects(b.generate({ ...req, prompt3: "a lake" }), (e: Error & { param?: string }) => e.param === "prompt_3" && /text_encoder_3/.test(e.message));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});

describe("FLUX and SD3 folders and requests that are refused", () => {
  it("a transformer config that disagrees with the text encoders or the VAE, naming the file", async () => {
    const pooled = variant(SCHNELL, (dir) => editJson(join(dir, "transformer/config.json"), (c) => (c.pooled_projection_dim = 48)));
    await assert.rejects(readModelFolder(pooled), /text_encoder\/config\.json: hidden_size 32 does not match the transformer's pooled_projection_dim 48/);
    const channels = variant(SCHNELL, (dir) => editJson(join(dir, "transformer/config.json"), (c) => (c.in_channels = 16)));
    await assert.rejects(readModelFolder(channels), /transformer\/config\.json: in_channels 16 is not 4 × the VAE's latent_channels 16/);
    const guidance = variant(SCHNELL, (dir) => editJson(join(dir, "transformer/config.json"), (c) => (c.guidance_embeds = true)));
    await assert.rejects(OnnxPipeline.load(guidance, { intraOpNumThreads: 1 }), /lacks a "guidance" input, but transformer\/config\.json guidance_embeds is true/);
    const missing = variant(SD3, (dir) => rmSync(join(dir, "transformer/model.onnx")));
    await assert.rejects(readModelFolder(missing), /transformer\/model\.onnx: missing/);
    const t5 = variant(SD3, (dir) => editJson(join(dir, "text_encoder_3/config.json"), (c) => (c.d_model = 64)));
    await assert.rejects(readModelFolder(t5), /text_encoder_3\/config\.json: d_model 64 does not match the transformer's joint_attention_dim 96/);
  });

  it("a β-schedule scheduler on a flow-matching model, and flow matching on SD", async () => {
    await assert.rejects(OnnxPipeline.load(DEV, { scheduler: "EulerDiscreteScheduler" }), /flux models need FlowMatchEulerDiscreteScheduler, not EulerDiscreteScheduler/);
    const euler = variant(SD3, (dir) => editJson(join(dir, "scheduler/scheduler_config.json"), (c) => (c._class_name = "DDIMScheduler")));
    await assert.rejects(OnnxPipeline.load(euler), /sd3 models need FlowMatchEulerDiscreteScheduler, not DDIMScheduler/);
  });

  it("requests: sizes off the 16 grid, T5 lengths over 512, FLUX's unused fields", async () => {
    const p = await OnnxPipeline.load(SCHNELL, { intraOpNumThreads: 1 });
    try {
      const req = { mode: "text2image" as const, prompt: "x", width: 64, height: 64, numInferenceSteps: 1 };
      await assert.rejects(p.generate({ ...req, width: 72 }), /width must be a positive multiple of 16/);
      await assert.rejects(p.generate({ ...req, maxSequenceLength: 513 }), (e: Error & { param?: string }) => e.param === "max_sequence_length");
      await assert.rejects(p.generate({ ...req, maxSequenceLength: 0 }), (e: Error & { param?: string }) => e.param === "max_sequence_length");
      await assert.rejects(p.generate({ ...req, negativePrompt: "blurry" }), (e: Error & { param?: string }) => e.param === "negative_prompt");
      await assert.rejects(p.generate({ ...req, negativePrompt: "blurry", trueCfgScale: Number.NaN }), (e: Error & { param?: string }) => e.param === "true_cfg_scale");
      await assert.rejects(p.generate({ ...req, negativePrompt3: "x" }), (e: Error & { param?: string }) => e.param === "negative_prompt_3");
      await assert.rejects(p.generate({ ...req, mode: "image2image" }), /image2image needs an input image/);
    } finally {
      await p.dispose();
    }
  });
});
