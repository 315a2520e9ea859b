import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import type { GenerationRequest } from "../src/backends/types.js";

const dir = await mkdtemp(join(tmpdir(), "graphserve-lcm-"));
const model = join(dir, "lcm");
await makeTinyModel(model, { family: "sd", lcm: true, seed: 5 });
test.after(() => rm(dir, { recursive: true, force: true }));

test("an LCM-distilled UNet: LCMScheduler config and a timestep_cond input", async () => {
  const scheduler = JSON.parse(await readFile(join(model, "scheduler/scheduler_config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(scheduler._class_name, "LCMScheduler");
  const unet = JSON.parse(await readFile(join(model, "unet/config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(unet.time_cond_proj_dim, 16);
});

test("LCM generation runs end to end: guidance goes in as an embedding, seeded, 4 steps", async () => {
  const pipeline = await OnnxPipeline.load(model);
  try {
    const request: GenerationRequest = { mode: "text2image", prompt: "a lighthouse", numInferenceSteps: 4, guidanceScale: 8, rngSeed: 11 };
    const steps: number[] = [];
    const a = await pipeline.generate(request, { onStep: (p) => void steps.push(p.step) });
    assert.deepEqual(steps, [0, 1, 2, 3]);
    assert.equal(a.data.length, a.count * a.width * a.height * 3);
    const again = await pipeline.generate(request);
    assert.deepEqual(again.data, a.data, "same seed, same bytes");
    const otherGuidance = await pipeline.generate({ ...request, guidanceScale: 2 });
    assert.notDeepEqual(otherGuidance.data, a.data, "the guidance embedding reaches the UNet");
  } finally {
    await pipeline.dispose();
  }
});
