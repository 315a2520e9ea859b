/**
 * piscina worker entry of OnnxBackend: loads the pipeline (all ORT sessions)
 * once per thread from `workerData` and keeps it for the pool's lifetime.
 * Generation never gets aborted from outside; it stops cooperatively when the
 * control buffer's CANCEL slot is set, checked between steps.
 */
import { Piscina } from "piscina";
import { awaitEveryThread, CancelFlag } from "../../threads/index.js";
import { BackendError, GenerationCancelledError, type RgbImage, type StepDecision } from "../types.js";
import { CTRL, type PingResult, type WorkerInit, type WorkerMessage, type WorkerTask } from "./onnx-protocol.js";
import { OnnxPipeline } from "./pipeline.js";

/** Longest the worker waits for the main thread to answer a step before going on. */
const ANSWER_TIMEOUT_MS = 30_000;
/** Longest a close task waits for the other workers' close tasks to start. */
const CLOSE_BARRIER_TIMEOUT_MS = 5_000;

let closed: Promise<void> | undefined;

const init = Piscina.workerData as WorkerInit;
const ready: Promise<OnnxPipeline> = OnnxPipeline.load(init.dir, {
  intraOpNumThreads: init.intraOpNumThreads,
  allowSpinning: init.allowSpinning,
  scheduler: init.scheduler,
  noise: init.noise,
  maxPixels: init.maxPixels,
  maxImagesPerPrompt: init.maxImagesPerPrompt,
  previews: init.previews,
  promptCacheEntries: init.promptCacheEntries,
  promptCacheMiB: init.promptCacheMiB,
});
ready.catch(() => {}); // reported by the ping task

export default async function run(task: WorkerTask): Promise<PingResult | void> {
  if (task.kind === "ping") {
    try {
      const p = await ready;
      const fixed = p.sessions.staticLatentSize;
      const f = p.info.vaeScaleFactor;
      const pv = p.previews;
      const previews = { mode: pv.mode, source: pv.mode === "approx" ? pv.map.source : pv.reason, validationPsnr: pv.validationPsnr, fitMs: pv.fitMs };
      return { ok: true, previews, ...(fixed ? { staticSize: { width: fixed.width * f, height: fixed.height * f } } : {}) };
    } catch (e) {
      return { ok: false, message: (e as Error).message };
    }
  }
  if (task.kind === "close") {
    awaitEveryThread(task.barrier, task.workers, CLOSE_BARRIER_TIMEOUT_MS);
    closed ??= ready.then(
      (p) => p.dispose(),
      () => {}, // never loaded: nothing to release
    );
    await closed;
    return;
  }
  const ctrl = new Int32Array(task.control);
  const cancelled = new CancelFlag(task.control, CTRL.CANCEL);
  const port = task.port;
  const post = (m: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  try {
    if (closed) throw new BackendError("the worker's sessions have been released");
    const pipeline = await ready;
    const result = await pipeline.generate(task.request, {
      isCancelled: () => cancelled.raised,
      onStep: (p): StepDecision => {
        Atomics.store(ctrl, CTRL.STEP, p.step + 1);
        post({ type: "step", ...p });
        if (!task.waitForStepAnswer) return {};
        // Wait for the main thread's answer (or a cancel, which also notifies).
        const deadline = Date.now() + ANSWER_TIMEOUT_MS;
        while (Atomics.load(ctrl, CTRL.ACK) < p.step + 1 && Atomics.load(ctrl, CTRL.CANCEL) === 0) {
          const left = deadline - Date.now();
          if (left <= 0) break;
          Atomics.wait(ctrl, CTRL.ACK, p.step, left);
        }
        const flags = Atomics.exchange(ctrl, CTRL.DECISION, 0);
        return { preview: (flags & 1) !== 0, stop: Atomics.load(ctrl, CTRL.CANCEL) !== 0 };
      },
      onPreview: (step: number, images: RgbImage[]) => {
        const { width, height } = images[0];
        const data = new Uint8Array(images.length * width * height * 3);
        images.forEach((im, k) => data.set(im.data, k * width * height * 3));
        post({ type: "preview", step, width, height, count: images.length, data }, [data.buffer]);
      },
    });
    const data = result.data;
    post({ type: "result", data, count: result.count, width: result.width, height: result.height, timings: result.timings }, [data.buffer as ArrayBuffer]);
  } catch (e) {
    if (e instanceof GenerationCancelledError) post({ type: "error", kind: "cancelled", step: e.step });
    else post({ type: "error", kind: e instanceof BackendError ? "backend" : "other", message: (e as Error).message, stack: (e as Error).stack });
  } finally {
    port.close();
  }
}
