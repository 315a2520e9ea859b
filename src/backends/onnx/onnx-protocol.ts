/**
 * Messages between OnnxBackend (main thread) and onnx-worker.ts (piscina
 * worker). Control goes through a SharedArrayBuffer of Int32 slots so the
 * worker can check it between steps without a message round trip.
 */
import type { MessagePort } from "node:worker_threads";
import type { NoiseKind } from "../noise/types.js";
import type { GenerationRequest, GenerationTimings } from "../types.js";
import type { PreviewMode } from "./latent-preview.js";

/** Int32 slots of the control SharedArrayBuffer. */
export const CTRL = {
  /** 1 = stop at the next step boundary. */
  CANCEL: 0,
  /** Steps finished so far. */
  STEP: 1,
  /** step + 1 once the main thread has answered the step's onStep. */
  ACK: 2,
  /** The answer's flags: 1 = preview. */
  DECISION: 3,
} as const;
export const CTRL_SLOTS = 4;

export interface WorkerInit {
  readonly dir: string;
  readonly intraOpNumThreads: number;
  readonly allowSpinning: boolean;
  readonly scheduler?: string;
  readonly noise?: NoiseKind;
  readonly maxPixels?: number;
  readonly maxImagesPerPrompt?: number;
  readonly previews: PreviewMode;
  readonly promptCacheEntries?: number;
  readonly promptCacheMiB?: number;
}

/** How a worker's pipeline makes previews (see PreviewInfo): the map's source, or why they are VAE decodes. */
export interface WorkerPreviews {
  readonly mode: PreviewMode;
  /** "approx": the published set's name or "fitted"; "vae": "asked" or "fit" (the fit fell short or failed). */
  readonly source: string;
  /** A fitted map's PSNR on held-out probes (dB). */
  readonly validationPsnr?: number;
  readonly fitMs?: number;
}

export type WorkerTask =
  | { readonly kind: "ping" }
  /**
   * Sent once per worker by dispose(): releases the worker's ORT sessions.
   * `barrier` (one Int32, shared by the close tasks) holds each task until all
   * have started, so every worker takes exactly one.
   */
  | { readonly kind: "close"; readonly barrier: SharedArrayBuffer; readonly workers: number }
  | {
      readonly kind: "generate";
      readonly request: GenerationRequest;
      readonly control: SharedArrayBuffer;
      readonly port: MessagePort;
      /** The main thread answers each step (onStep given): the worker waits for the ACK. */
      readonly waitForStepAnswer: boolean;
    };

export type PingResult =
  | { readonly ok: true; readonly staticSize?: { readonly width: number; readonly height: number }; readonly previews: WorkerPreviews }
  | { readonly ok: false; readonly message: string };

export type WorkerMessage =
  | { readonly type: "step"; readonly step: number; readonly totalSteps: number; readonly stepMs: number }
  | { readonly type: "preview"; readonly step: number; readonly width: number; readonly height: number; readonly count: number; readonly data: Uint8Array }
  | {
      readonly type: "result";
      readonly data: Uint8Array;
      readonly count: number;
      readonly width: number;
      readonly height: number;
      readonly timings: GenerationTimings;
    }
  | { readonly type: "error"; readonly kind: "cancelled"; readonly step: number }
  | { readonly type: "error"; readonly kind: "backend" | "other"; readonly message: string; readonly stack?: string };
