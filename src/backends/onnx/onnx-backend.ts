/**
 * OnnxBackend: the diffusion pipeline (SD, SDXL, SD3, FLUX) on onnxruntime-node, run on a piscina
 * pool so the event loop stays free (ORT's `session.run` blocks its thread).
 *
 * - `parallelism` workers (default 1 below 8 cores, else 2, fewer when they
 *   would not fit in memory: memory-budget.ts), minThreads =
 *   maxThreads, idleTimeout Infinity; each loads every session once (ORT
 *   intraOpNumThreads = max(1, ⌊cores / workers⌋)) and keeps them.
 * - generate() sends the request with a SharedArrayBuffer control block and a
 *   MessagePort; per-step progress and previews come back on the port so
 *   `onStep` / `onPreview` run on the main thread. When `onStep` is given the
 *   worker waits for its answer after each step, so "stop" and "preview"
 *   apply to exactly that step.
 * - Cancel (onStep stop, AbortSignal, dispose) sets the shared flag; the
 *   worker stops at the next step boundary. A task is never aborted.
 * - Results come back by transfer (no copy).
 */
import { availableParallelism } from "node:os";
import { MessageChannel } from "node:worker_threads";
import { checkGenerationRequest, familyScheduler, type RequestRules } from "./pipeline.js";
import { familyModule } from "./families/index.js";
import type { Piscina } from "piscina";
import { CancelFlag, fixedPool, onEveryThread, workerFile } from "../../threads/index.js";
import {
  BackendError,
  type BackendCapabilities,
  type BackendLoadOptions,
  type DiffusionBackend,
  type GenerateOptions,
  type GenerationMode,
  type GenerationRequest,
  type GenerationResult,
  GenerationCancelledError,
  type RgbImage,
  requestLimits,
} from "../types.js";
import { readAvailableMemory } from "../host-memory.js";
import { planWorkers, readMemoryFacts } from "./memory-budget.js";
import { type ModelFolderInfo, readModelFolder } from "./model-folder.js";
import { CTRL, CTRL_SLOTS, type PingResult, type WorkerInit, type WorkerMessage, type WorkerPreviews, type WorkerTask } from "./onnx-protocol.js";
import { type PreviewMode, previewMode } from "./latent-preview.js";
import { promptCacheLimits } from "./prompt-cache.js";
import { NOISE_KINDS, isNoiseKind } from "../noise/index.js";
import { SUPPORTED_SCHEDULERS } from "./schedulers/index.js";

// Compiled: onnx-worker.js beside this file. From source (tsx), the .ts one; workers inherit the parent's loader flags.
const WORKER = workerFile(import.meta.url, "onnx-worker");

export interface OnnxLoadOptions extends BackendLoadOptions {
  /** ORT intra-op threads per worker (default max(1, ⌊cores / parallelism⌋)). */
  readonly intraOpNumThreads?: number;
  /** Let ORT intra-op threads spin between runs (default false; `properties.allowSpinning` also sets it). */
  readonly allowSpinning?: boolean;
  /** Step previews: "approx" (default; latent→RGB map, no VAE decode) or "vae" (`properties.previews` also sets it). */
  readonly previews?: PreviewMode;
  /** Prompt-embedding cache per worker: most entries (default 64) and MiB (default 64); 0 disables (`properties` of the same names also set them). */
  readonly promptCacheEntries?: number;
  readonly promptCacheMiB?: number;
  /** Receives load warnings (fewer workers than the default, to fit in memory). */
  readonly onWarning?: (message: string) => void;
}

export class OnnxBackend implements DiffusionBackend {
  private readonly inflight = new Set<{ control: Int32Array; done: Promise<unknown> }>();
  private disposed: Promise<void> | undefined;

  private constructor(
    readonly info: ModelFolderInfo,
    private readonly pool: Piscina<WorkerTask, PingResult | void>,
    private readonly caps: BackendCapabilities,
    private readonly workers: number,
    private readonly rules: RequestRules,
    /** How the workers make previews (the first worker's answer; all load the same folder). */
    readonly previews: WorkerPreviews,
  ) {}

  /** Reads and validates the folder, starts the workers and waits until each has loaded its sessions. */
  static async load(modelDir: string, opts: OnnxLoadOptions = {}): Promise<OnnxBackend> {
    if (opts.backend === "openvino") throw new BackendError("OnnxBackend cannot load with backend \"openvino\"");
    if (opts.device !== undefined && opts.device.toUpperCase() !== "CPU") throw new BackendError(`device ${opts.device} is not supported by the ONNX Runtime backend (CPU only)`);
    const limits = requestLimits(opts);
    const info = await readModelFolder(modelDir);
    const family = familyModule(info.family);
    if (opts.scheduler !== undefined) {
      try {
        familyScheduler(family, { ...info.schedulerConfig, _class_name: opts.scheduler });
      } catch (e) {
        throw new BackendError(`scheduler ${opts.scheduler}: ${(e as Error).message}`, { cause: e });
      }
    }
    if (opts.noise !== undefined && !isNoiseKind(opts.noise)) throw new BackendError(`noise generator "${opts.noise}" is not one of ${NOISE_KINDS.join(", ")}`);
    const cores = availableParallelism();
    let workers = opts.parallelism ?? (cores >= 8 ? 2 : 1);
    if (!Number.isInteger(workers) || workers < 1) throw new BackendError(`parallelism must be a positive integer, got ${workers}`);
    // Before any worker starts: every worker loads every component, so a model that does not fit is refused here, not OOM-killed later.
    if (opts.memoryCheck?.skip !== true) {
      const facts = await readMemoryFacts(modelDir);
      const available = (opts.memoryCheck?.readAvailable ?? readAvailableMemory)();
      const plan = planWorkers(facts, available, { workers, explicit: opts.parallelism !== undefined, ...opts.memoryCheck?.imageSize });
      if (plan.lowered !== undefined) opts.onWarning?.(plan.lowered);
      workers = plan.workers;
    }
    const props = opts.properties ?? {};
    const propThreads = typeof props.intraOpNumThreads === "number" ? props.intraOpNumThreads : undefined;
    const intraOpNumThreads = opts.intraOpNumThreads ?? propThreads ?? Math.max(1, Math.floor(cores / workers));
    if (!Number.isInteger(intraOpNumThreads) || intraOpNumThreads < 1) throw new BackendError(`intraOpNumThreads must be a positive integer, got ${intraOpNumThreads}`);
    const allowSpinning = opts.allowSpinning ?? props.allowSpinning === true;
    // Checked here so a bad value fails the load before any worker starts.
    const previews = previewMode(opts.previews ?? props.previews);
    const cache = promptCacheLimits(opts.promptCacheEntries ?? props.promptCacheEntries, opts.promptCacheMiB ?? props.promptCacheMiB);
    const workerData: WorkerInit = {
      dir: modelDir,
      intraOpNumThreads,
      allowSpinning,
      scheduler: opts.scheduler,
      noise: opts.noise,
      ...limits,
      previews,
      promptCacheEntries: cache.maxEntries,
      promptCacheMiB: cache.maxBytes / 1024 ** 2,
    };
    const pool = fixedPool<WorkerTask, PingResult | void>(WORKER, workers, { concurrentTasksPerWorker: 1, workerData });
    // One ping per worker: a busy worker takes no second task, so each thread answers once its sessions are loaded.
    let pings: (PingResult | void)[];
    try {
      pings = await Promise.all(Array.from({ length: workers }, () => pool.run({ kind: "ping" })));
    } catch (e) {
      await pool.destroy();
      throw new BackendError(`${modelDir}: a worker failed to start (${(e as Error).message})`, { cause: e });
    }
    const failed = pings.find((p): p is { ok: false; message: string } => !!p && !p.ok);
    if (failed) {
      await pool.destroy();
      throw new BackendError(failed.message);
    }
    const first = pings[0] as Extract<PingResult, { ok: true }>;
    const staticSize = first.staticSize;
    const modes: GenerationMode[] = info.inpainting ? ["inpainting"] : info.hasVaeEncoder ? ["text2image", "image2image", "inpainting"] : ["text2image"];
    const caps: BackendCapabilities = {
      backend: "onnxruntime",
      family: info.family,
      modes,
      schedulers: family.scheduleKind === "flow-match" ? ["FlowMatchEulerDiscreteScheduler"] : [...SUPPORTED_SCHEDULERS],
      lora: false,
      staticResolutions: staticSize ? [staticSize] : [],
      sizeMultiple: info.sizeMultiple,
      defaultWidth: staticSize?.width ?? info.sampleSize * info.vaeScaleFactor,
      defaultHeight: staticSize?.height ?? info.sampleSize * info.vaeScaleFactor,
      guidance: family.takesGuidance(info),
      parallelism: workers,
    };
    const rules: RequestRules = {
      info,
      hasVaeEncoder: info.hasVaeEncoder,
      staticLatentSize: staticSize && { width: staticSize.width / info.vaeScaleFactor, height: staticSize.height / info.vaeScaleFactor },
      limits,
      schedulerConfig: opts.scheduler !== undefined ? { ...info.schedulerConfig, _class_name: opts.scheduler } : info.schedulerConfig,
    };
    return new OnnxBackend(info, pool, caps, workers, rules, first.previews);
  }

  capabilities(): BackendCapabilities {
    return this.caps;
  }

  check(request: GenerationRequest): void {
    if (this.disposed) throw new BackendError("the backend has been disposed");
    if (!this.caps.modes.includes(request.mode)) throw new BackendError(`mode ${request.mode} is not supported by this model (supports ${this.caps.modes.join(", ")})`);
    checkGenerationRequest(this.rules, request);
  }

  async generate(request: GenerationRequest, options: GenerateOptions = {}): Promise<GenerationResult> {
    this.check(request);
    const { signal, onStep, onPreview } = options;
    if (signal?.aborted) throw new GenerationCancelledError(-1, { cause: signal.reason });

    const control = new Int32Array(new SharedArrayBuffer(CTRL_SLOTS * 4));
    // Raising it also wakes a worker waiting for its step's answer.
    const cancel = () => new CancelFlag(control.buffer as SharedArrayBuffer, CTRL.CANCEL).raise(CTRL.ACK);
    const { port1, port2 } = new MessageChannel();
    let callbackError: unknown;
    const final = new Promise<GenerationResult>((resolve, reject) => {
      port1.on("message", (m: WorkerMessage) => {
        switch (m.type) {
          case "step": {
            if (onStep) {
              let flags = 0;
              try {
                const d = onStep({ step: m.step, totalSteps: m.totalSteps, stepMs: m.stepMs });
                if (d?.preview && onPreview) flags |= 1;
                if (d?.stop) Atomics.store(control, CTRL.CANCEL, 1);
              } catch (e) {
                callbackError ??= e;
                Atomics.store(control, CTRL.CANCEL, 1);
              }
              Atomics.store(control, CTRL.DECISION, flags);
              Atomics.store(control, CTRL.ACK, m.step + 1);
              Atomics.notify(control, CTRL.ACK);
            }
            break;
          }
          case "preview": {
            const images: RgbImage[] = [];
            const size = m.width * m.height * 3;
            for (let k = 0; k < m.count; k++) images.push({ width: m.width, height: m.height, data: m.data.subarray(k * size, (k + 1) * size) });
            try {
              onPreview?.(m.step, images);
            } catch (e) {
              callbackError ??= e;
              cancel();
            }
            break;
          }
          case "result":
            // A callback that threw after the worker's last check still fails the call.
            if (callbackError !== undefined) reject(callbackFailed(callbackError));
            else resolve({ data: m.data, count: m.count, width: m.width, height: m.height, timings: m.timings });
            break;
          case "error":
            if (callbackError !== undefined) reject(callbackFailed(callbackError));
            else if (m.kind === "cancelled") reject(new GenerationCancelledError(m.step, signal?.aborted ? { cause: signal.reason } : undefined));
            else if (m.kind === "backend") reject(new BackendError(m.message));
            else reject(new BackendError(`generation failed: ${m.message}`));
            break;
        }
      });
    });
    signal?.addEventListener("abort", cancel, { once: true });
    const task: WorkerTask = { kind: "generate", request, control: control.buffer as SharedArrayBuffer, port: port2, waitForStepAnswer: onStep !== undefined };
    const ran = this.pool.run(task, { transferList: [port2] });
    const done = Promise.all([final, ran]).then(([r]) => r);
    const entry = { control, done };
    this.inflight.add(entry);
    try {
      return await done;
    } catch (e) {
      if (e instanceof GenerationCancelledError || e instanceof BackendError) throw e;
      throw new BackendError(`generation failed: ${(e as Error).message}`, { cause: e });
    } finally {
      this.inflight.delete(entry);
      signal?.removeEventListener("abort", cancel);
      port1.close();
    }
  }

  /** Cancels in-flight generations, waits for them to stop, then ends the workers. */
  dispose(): Promise<void> {
    this.disposed ??= (async () => {
      for (const { control } of this.inflight) new CancelFlag(control.buffer as SharedArrayBuffer, CTRL.CANCEL).raise(CTRL.ACK);
      await Promise.allSettled([...this.inflight].map((e) => e.done));
      // One close task per worker releases its ORT sessions before the threads end.
      await onEveryThread(this.workers, (barrier) => this.pool.run({ kind: "close", barrier, workers: this.workers }));
      await this.pool.destroy();
    })();
    return this.disposed;
  }
}

/** An exception from onStep/onPreview, as the BackendError generate() rejects with (OpenVINO words it the same). */
function callbackFailed(e: unknown): BackendError {
  const text = e instanceof Error ? e.message : String(e);
  return new BackendError(`the step callback failed: ${text}`, { cause: e });
}
