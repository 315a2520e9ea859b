/** OnnxBackend on a piscina pool: progress, cancel, concurrency, event-loop freedom, capabilities. */
import { strict as assert } from "node:assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { OnnxBackend } from "../src/backends/onnx/onnx-backend.js";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { BackendError, GenerationCancelledError, type GenerationRequest } from "../src/backends/types.js";

let root: string;
let sdDir: string;
let backend: OnnxBackend;

/** A request whose generation takes a few hundred ms on the tiny model (64×64 latents). */
const SLOW: GenerationRequest = { mode: "text2image", prompt: "a photo of an astronaut", width: 512, height: 512, numInferenceSteps: 30, rngSeed: 11 };

before(async () => {
  root = await mkdtemp(join(tmpdir(), "onnx-backend-"));
  sdDir = join(root, "sd");
  await makeTinyModel(sdDir, { family: "sd" });
  backend = await OnnxBackend.load(sdDir, { parallelism: 2 });
});
after(async () => {
  await backend.dispose();
  await rm(root, { recursive: true, force: true });
});

describe("OnnxBackend (SD)", () => {
  it("reports capabilities", () => {
    const c = backend.capabilities();
    assert.equal(c.backend, "onnxruntime");
    assert.equal(c.family, "sd");
    assert.deepEqual(c.modes, ["text2image", "image2image", "inpainting"]);
    assert.ok(c.schedulers.includes("PNDMScheduler"));
    assert.equal(c.sizeMultiple, 8);
    assert.equal(c.defaultWidth, 64);
    assert.equal(c.defaultHeight, 64);
    assert.equal(c.guidance, true);
    assert.equal(c.lora, false);
    assert.equal(c.parallelism, 2);
  });

  it("text2image gives [N, H, W, 3] u8, the same bytes as in-process for a seed", async () => {
    const req: GenerationRequest = { mode: "text2image", prompt: "a photo of a cat", numInferenceSteps: 4, numImagesPerPrompt: 2, rngSeed: 5 };
    const a = await backend.generate(req);
    const b = await backend.generate(req);
    assert.ok(a.data instanceof Uint8Array);
    assert.equal(a.data.length, 2 * 64 * 64 * 3);
    assert.equal(a.count, 2);
    assert.deepEqual(a.data, b.data);
    const c = await backend.generate({ ...req, rngSeed: 6 });
    assert.notDeepEqual(a.data, c.data);
    const local = await OnnxPipeline.load(sdDir);
    try {
      assert.deepEqual((await local.generate(req)).data, a.data);
    } finally {
      await local.dispose();
    }
  });

  it("calls onStep once per step on the main thread, and previews", async () => {
    const steps: number[] = [];
    const previews: number[] = [];
    const r = await backend.generate(
      { mode: "text2image", prompt: "x", numInferenceSteps: 5, rngSeed: 1 },
      {
        onStep: (p) => {
          steps.push(p.step);
          assert.equal(p.totalSteps, 6);
          return { preview: p.step === 2 };
        },
        onPreview: (step, images) => {
          previews.push(step);
          assert.equal(images.length, 1);
          assert.equal(images[0].data.length, 64 * 64 * 3);
        },
      },
    );
    assert.deepEqual(steps, [0, 1, 2, 3, 4, 5]);
    assert.equal(r.timings.stepMs.length, 6);
    assert.deepEqual(previews, [2]);
  });

  it("stops exactly after the step whose onStep says stop; the pool stays usable", async () => {
    const steps: number[] = [];
    await assert.rejects(
      backend.generate({ ...SLOW, numInferenceSteps: 50 }, { onStep: (p) => (steps.push(p.step), { stop: p.step === 3 }) }),
      (e: unknown) => e instanceof GenerationCancelledError && e.step === 3,
    );
    assert.deepEqual(steps, [0, 1, 2, 3]);
    const r = await backend.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 2, rngSeed: 1 });
    assert.equal(r.data.length, 64 * 64 * 3);
  });

  it("an AbortSignal cancels within one step, without killing the worker", async () => {
    const ac = new AbortController();
    let lastStep = -1;
    let abortedAt = -1;
    const t0 = Date.now();
    const p = backend.generate({ ...SLOW, numInferenceSteps: 500 }, { signal: ac.signal, onStep: (s) => void (lastStep = s.step) });
    setTimeout(() => {
      abortedAt = lastStep;
      ac.abort();
    }, 100);
    await assert.rejects(p, (e: unknown) => e instanceof GenerationCancelledError && e.step <= abortedAt + 1);
    assert.ok(Date.now() - t0 < 2000);
    await assert.rejects(backend.generate(SLOW, { signal: AbortSignal.abort() }), GenerationCancelledError);
    const r = await backend.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 2, rngSeed: 1 });
    assert.equal(r.count, 1);
  });

  it("runs two generations concurrently on one loaded model", async () => {
    const req = (seed: number): GenerationRequest => ({ ...SLOW, numInferenceSteps: 40, rngSeed: seed });
    const log: string[] = [];
    const [a, b] = await Promise.all([
      backend.generate(req(1), { onStep: (p) => void log.push(`a${p.step}`) }),
      backend.generate(req(2), { onStep: (p) => void log.push(`b${p.step}`) }),
    ]);
    // Both ran at once: b's first step came before a's last one.
    assert.ok(log.includes("b0") && log.includes("a40") && log.indexOf("b0") < log.indexOf("a40"), log.join(" "));
    assert.equal(a.data.length, 512 * 512 * 3);
    assert.equal(b.data.length, 512 * 512 * 3);
    assert.notDeepEqual(a.data, b.data);
    const a2 = await backend.generate(req(1));
    assert.deepEqual(a2.data, a.data);
  });

  it("keeps the event loop free while generating", async () => {
    const gen = backend.generate({ ...SLOW, numInferenceSteps: 600 });
    let worst = 0;
    let running = true;
    void gen.finally(() => (running = false));
    while (running) {
      const t = performance.now();
      await new Promise((r) => setTimeout(r, 0));
      worst = Math.max(worst, performance.now() - t);
    }
    const r = await gen;
    assert.ok(r.timings.totalMs > 100, `generation took only ${r.timings.totalMs} ms; the test needs a longer one`);
    // Inference on the event loop would stall it for about the whole generation; a busy machine adds smaller stalls.
    assert.ok(worst < Math.max(50, r.timings.totalMs / 2), `setTimeout(0) took ${worst.toFixed(1)} ms during a ${r.timings.totalMs.toFixed(0)} ms generation`);
  });

  it("rejects unsupported requests with BackendError", async () => {
    await assert.rejects(backend.generate({ mode: "text2image", prompt: "x", width: 30 }), BackendError);
    await assert.rejects(backend.generate({ mode: "image2image", prompt: "x" }), BackendError);
  });

  it("image2image and inpainting through the pool", async () => {
    const image = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(90) };
    const mask = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(255) };
    const a = await backend.generate({ mode: "image2image", prompt: "x", image, strength: 0.5, numInferenceSteps: 4, rngSeed: 1 });
    assert.equal(a.data.length, 64 * 64 * 3);
    const b = await backend.generate({ mode: "inpainting", prompt: "x", image, mask, numInferenceSteps: 4, rngSeed: 1 });
    assert.equal(b.data.length, 64 * 64 * 3);
  });
});

describe("OnnxBackend other families and lifecycle", () => {
  it("SDXL text2image and an SD inpainting model", async () => {
    const xlDir = join(root, "sdxl");
    await makeTinyModel(xlDir, { family: "sdxl" });
    const xl = await OnnxBackend.load(xlDir);
    try {
      assert.equal(xl.capabilities().family, "sdxl");
      assert.equal(xl.capabilities().parallelism, 1);
      const r = await xl.generate({ mode: "text2image", prompt: "a cat", numInferenceSteps: 3, rngSeed: 1, numImagesPerPrompt: 2 });
      assert.equal(r.data.length, 2 * 64 * 64 * 3);
    } finally {
      await xl.dispose();
    }
    const inpDir = join(root, "sd-inpaint");
    await makeTinyModel(inpDir, { family: "sd", inpainting: true });
    const inp = await OnnxBackend.load(inpDir);
    try {
      assert.deepEqual(inp.capabilities().modes, ["inpainting"]);
      await assert.rejects(inp.generate({ mode: "text2image", prompt: "x" }), BackendError);
      const image = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(90) };
      const mask = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(255) };
      const r = await inp.generate({ mode: "inpainting", prompt: "x", image, mask, numInferenceSteps: 3, rngSeed: 1 });
      assert.equal(r.data.length, 64 * 64 * 3);
    } finally {
      await inp.dispose();
    }
  });

  it("a throwing onStep or onPreview rejects with a BackendError that wraps the exception", async () => {
    const boom = new Error("boom");
    const req: GenerationRequest = { mode: "text2image", prompt: "a cat", numInferenceSteps: 3, rngSeed: 1 };
    for (const options of [
      { onStep: () => { throw boom; } },
      { onStep: () => ({ preview: true }), onPreview: () => { throw boom; } },
    ]) {
      await assert.rejects(backend.generate(req, options), (e: Error) => e instanceof BackendError && e.message === "the step callback failed: boom" && e.cause === boom);
    }
    // The backend still works afterwards.
    assert.equal((await backend.generate(req)).count, 1);
  });

  it("noise: the workers draw with the generator the backend was loaded with", async () => {
    const req: GenerationRequest = { mode: "text2image", prompt: "a cat", numInferenceSteps: 2, rngSeed: 42 };
    const torch = await OnnxBackend.load(sdDir, { parallelism: 1, noise: "torch-cpu" });
    const inProcess = await OnnxPipeline.load(sdDir, { noise: "torch-cpu" });
    try {
      const a = await torch.generate(req);
      assert.deepEqual(a.data, (await inProcess.generate(req)).data);
      assert.notDeepEqual(a.data, (await backend.generate(req)).data, "the default is mt19937");
    } finally {
      await torch.dispose();
      await inProcess.dispose();
    }
    await assert.rejects(OnnxBackend.load(sdDir, { noise: "philox" as never }), (e: Error) => e instanceof BackendError && /noise generator "philox" is not one of mt19937, torch-cpu/.test(e.message));
  });

  it("refuses sizes over maxPixels in the worker with a BackendError (no OOM)", async () => {
    await assert.rejects(backend.generate({ mode: "text2image", prompt: "x", width: 80_000_000, height: 8 }), (e: Error) => e instanceof BackendError && /maxPixels/.test(e.message));
    await assert.rejects(backend.generate({ mode: "text2image", prompt: "x", numImagesPerPrompt: 1000 }), (e: Error) => e instanceof BackendError && /maxImagesPerPrompt/.test(e.message));
  });

  it("dispose releases every worker's sessions and ends the pool", async () => {
    const b = await OnnxBackend.load(sdDir, { parallelism: 2, maxImagesPerPrompt: 1 });
    await assert.rejects(b.generate({ mode: "text2image", prompt: "x", numImagesPerPrompt: 2, numInferenceSteps: 1 }), /maxImagesPerPrompt = 1/);
    await b.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 1 });
    const t0 = Date.now();
    await b.dispose();
    assert.ok(Date.now() - t0 < 4000, "close tasks did not wait out the barrier timeout");
    await assert.rejects(b.generate({ mode: "text2image", prompt: "x" }), /disposed/);
  });

  it("dispose cancels an in-flight generation and refuses new ones", async () => {
    const b = await OnnxBackend.load(sdDir);
    const p = assert.rejects(b.generate({ ...SLOW, numInferenceSteps: 500 }), GenerationCancelledError);
    await new Promise((r) => setTimeout(r, 50));
    await b.dispose();
    await p;
    await assert.rejects(b.generate(SLOW), BackendError);
  });
});
