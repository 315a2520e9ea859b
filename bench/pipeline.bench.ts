/**
 * ONNX pipeline overhead bench: on tiny SD/SDXL models and the committed tiny
 * FLUX.1-schnell and SD3 exports, with 64×64 latents (512×512 requests), how
 * much time per denoising step is our own work (scheduler, CFG, packing,
 * buffer copies: step time minus the denoiser's `run`), and the
 * whole pipeline's time vs the sum of every `run` call. Goal: < 0.5 ms of our
 * own work per step.
 *
 *   node dist/bench/pipeline.bench.js [--steps 30] [--reps 15]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { OnnxBackend } from "../src/backends/onnx/onnx-backend.js";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { makeTinyModel, type TinyModelOptions } from "../src/backends/onnx/tiny/make-tiny-model.js";
import type { GenerationRequest } from "../src/backends/types.js";

const { values } = parseArgs({ options: { steps: { type: "string", default: "30" }, reps: { type: "string", default: "15" } } });
const steps = Number(values.steps);
const reps = Number(values.reps);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The reference tool's exports (test/fixtures/conformance), from dist/bench or bench/. */
const CONFORMANCE = fileURLToPath(new URL(import.meta.url.includes("/dist/") ? "../../test/fixtures/conformance/" : "../test/fixtures/conformance/", import.meta.url));

interface Case {
  name: string;
  /** A tiny model made here, or a committed export folder under test/fixtures/conformance. */
  model: TinyModelOptions | { readonly export: string };
  scheduler?: string;
  request: Partial<GenerationRequest>;
}

const cases: Case[] = [
  { name: "sd pndm cfg7.5 512²", model: { family: "sd" }, request: { guidanceScale: 7.5 } },
  { name: "sd euler cfg7.5 512²", model: { family: "sd", scheduler: "euler" }, request: { guidanceScale: 7.5 } },
  { name: "sd dpm++ no-cfg 512²", model: { family: "sd" }, scheduler: "DPMSolverMultistepScheduler", request: { guidanceScale: 1 } },
  { name: "sd euler cfg 512² ×2 images", model: { family: "sd", scheduler: "euler" }, request: { guidanceScale: 7.5, numImagesPerPrompt: 2 } },
  { name: "sdxl euler cfg5 512²", model: { family: "sdxl" }, request: { guidanceScale: 5 } },
  { name: "sd 4ch inpainting cfg 512²", model: { family: "sd", scheduler: "euler" }, request: { guidanceScale: 7.5, mode: "inpainting" } },
  { name: "flux-schnell packed 512²", model: { export: "flux-schnell/optimum-onnx-fp32" }, request: { maxSequenceLength: 256 } },
  { name: "flux-dev guidance 512²", model: { export: "flux-dev/optimum-onnx-fp32" }, request: { guidanceScale: 3.5, maxSequenceLength: 256 } },
  { name: "sd3 cfg7 512²", model: { export: "sd3/optimum-onnx-fp32" }, request: { guidanceScale: 7 } },
  { name: "sd3 inpainting cfg7 512²", model: { export: "sd3/optimum-onnx-fp32" }, request: { guidanceScale: 7, mode: "inpainting" } },
];

const root = await mkdtemp(join(tmpdir(), "pipeline-bench-"));
try {
  console.log(`steps=${steps} reps=${reps} (median over reps; ms)`);
  console.log(["case", "own/step", "denoiser/step", "step", "total", "Σ run", "total−Σrun"].map((s, i) => (i === 0 ? s.padEnd(30) : s.padStart(14))).join(""));
  let k = 0;
  for (const c of cases) {
    let dir = join(root, `m${k++}`);
    if ("export" in c.model) dir = join(CONFORMANCE, c.model.export);
    else await makeTinyModel(dir, c.model);
    const p = await OnnxPipeline.load(dir, { scheduler: c.scheduler });
    const size = 512;
    const image = { width: size, height: size, data: new Uint8Array(size * size * 3).fill(100) };
    const mask = { width: size, height: size, data: new Uint8Array(size * size * 3).map((_, i) => ((i / 3) % size < size / 2 ? 255 : 0)) };
    const req: GenerationRequest = {
      mode: "text2image",
      prompt: "a photo of an astronaut riding a horse",
      width: size,
      height: size,
      numInferenceSteps: steps,
      rngSeed: 1,
      ...c.request,
      ...(c.request.mode === "inpainting" ? { image, mask, strength: 1 } : {}),
    };
    await p.generate(req); // warm-up
    const own: number[] = [];
    const unet: number[] = [];
    const step: number[] = [];
    const total: number[] = [];
    const runs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const res = await p.generate(req);
      const n = res.timings.stepMs.length;
      const stepSum = res.timings.stepMs.reduce((a, b) => a + b, 0);
      const unetSum = p.stats.denoiserRunMs.reduce((a, b) => a + b, 0);
      own.push((stepSum - unetSum) / n);
      unet.push(unetSum / n);
      step.push(stepSum / n);
      total.push(res.timings.totalMs);
      runs.push(p.stats.runMs);
    }
    const row = [median(own), median(unet), median(step), median(total), median(runs), median(total) - median(runs)];
    console.log(c.name.padEnd(30) + row.map((v) => v.toFixed(3).padStart(14)).join(""));
    await p.dispose();
  }

  // The same generation through the worker pool: what the thread hop, progress messages and transfers add.
  const dir = join(root, "pool");
  await makeTinyModel(dir, { family: "sd", scheduler: "euler" });
  const req: GenerationRequest = { mode: "text2image", prompt: "a photo of an astronaut", width: 512, height: 512, numInferenceSteps: steps, rngSeed: 1 };
  const local = await OnnxPipeline.load(dir);
  const backend = await OnnxBackend.load(dir, { parallelism: 1 });
  const time = async (f: () => Promise<unknown>): Promise<number> => {
    await f();
    const xs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      await f();
      xs.push(performance.now() - t);
    }
    return median(xs);
  };
  const tLocal = await time(() => local.generate(req));
  const tPool = await time(() => backend.generate(req));
  const tPoolSteps = await time(() => backend.generate(req, { onStep: () => ({}) }));
  console.log(`\nsd euler cfg 512², ${steps} steps, wall ms: in-process ${tLocal.toFixed(2)}; pool ${tPool.toFixed(2)}; pool + onStep answered per step ${tPoolSteps.toFixed(2)}`);
  console.log(`  pool overhead per generation ${(tPool - tLocal).toFixed(2)} ms; per-step answer round trip ${((tPoolSteps - tPool) / steps).toFixed(3)} ms`);
  await local.dispose();
  await backend.dispose();
} finally {
  await rm(root, { recursive: true, force: true });
}
