/**
 * Diffusion schedulers for the ONNX Runtime pipeline.
 * `createScheduler(parsed scheduler_config.json)` picks the class by `_class_name`.
 */
import { type SchedulerConfig, resolveSchedulerConfig } from "./config.js";
import { DDIMScheduler } from "./ddim.js";
import { DPMSolverMultistepScheduler } from "./dpm-solver.js";
import { EulerDiscreteScheduler } from "./euler.js";
import { FlowMatchEulerDiscreteScheduler, resolveFlowMatchConfig } from "./flow-match.js";
import { LCMScheduler } from "./lcm.js";
import { PNDMScheduler } from "./pndm.js";
import type { BetaScheduler, Scheduler } from "./types.js";

export {
  SUPPORTED_SCHEDULERS,
  SchedulerConfigError,
  resolveSchedulerConfig,
  type BetaSchedule,
  type DpmSolverType,
  type FinalSigmasType,
  type PredictionType,
  type ResolvedSchedulerConfig,
  type SchedulerClassName,
  type SchedulerConfig,
  type TimestepSpacing,
} from "./config.js";
export { type NormalRng, type SetTimestepsOptions, makeAlphasCumprod, makeBetas, spacedTimesteps } from "./common.js";
export type { BetaScheduler, Scheduler } from "./types.js";
export { type FlowMatchConfig, type FlowMatchTimestepsOptions, FlowMatchEulerDiscreteScheduler, flowMatchMu, resolveFlowMatchConfig } from "./flow-match.js";
export { DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, LCMScheduler, PNDMScheduler };

/**
 * Build a scheduler from a parsed `scheduler_config.json` (validated here; the
 * argument may be untyped JSON).
 * @throws SchedulerConfigError for an unknown `_class_name` (listing the supported
 *   ones), an unsupported option, or an invalid value.
 */
export function createScheduler(config: SchedulerConfig | unknown): BetaScheduler {
  const cfg = resolveSchedulerConfig(config);
  switch (cfg.className) {
    case "EulerDiscreteScheduler":
    case "EulerAncestralDiscreteScheduler":
      return new EulerDiscreteScheduler(cfg);
    case "DDIMScheduler":
      return new DDIMScheduler(cfg);
    case "PNDMScheduler":
      return new PNDMScheduler(cfg);
    case "LCMScheduler":
      return new LCMScheduler(cfg);
    case "DPMSolverMultistepScheduler":
      return new DPMSolverMultistepScheduler(cfg);
  }
}

/**
 * Any supported scheduler from a parsed `scheduler_config.json`: flow matching
 * (FlowMatchEulerDiscreteScheduler) or one of createScheduler's β-schedule classes.
 */
export function schedulerFor(config: SchedulerConfig | unknown): Scheduler {
  const raw = config as { _class_name?: unknown } | null;
  if (typeof raw === "object" && raw !== null && raw._class_name === "FlowMatchEulerDiscreteScheduler") {
    return new FlowMatchEulerDiscreteScheduler(resolveFlowMatchConfig(raw as Record<string, unknown>));
  }
  return createScheduler(config);
}
