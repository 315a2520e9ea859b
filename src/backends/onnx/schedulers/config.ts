/**
 * Parsing and validation of a diffusers-style `scheduler_config.json`.
 *
 * The raw config is untyped JSON; {@link resolveSchedulerConfig} checks every
 * field this package reads, fills per-class defaults (the documented defaults
 * of each scheduler class), and rejects options that would change the maths in
 * a way that is not implemented here (rather than silently ignoring them).
 * Keys that do not affect the maths (`_diffusers_version`, ...) are ignored.
 */

export const SUPPORTED_SCHEDULERS = [
  "EulerDiscreteScheduler",
  "EulerAncestralDiscreteScheduler",
  "DDIMScheduler",
  "PNDMScheduler",
  "LCMScheduler",
  "DPMSolverMultistepScheduler",
] as const;

export type SchedulerClassName = (typeof SUPPORTED_SCHEDULERS)[number];
export type BetaSchedule = "linear" | "scaled_linear" | "squaredcos_cap_v2";
export type PredictionType = "epsilon" | "v_prediction" | "sample";
export type TimestepSpacing = "leading" | "trailing" | "linspace";
export type DpmSolverType = "midpoint" | "heun";
export type FinalSigmasType = "zero" | "sigma_min";

/** The raw (snake_case) config as found in `scheduler/scheduler_config.json`. */
export interface SchedulerConfig {
  _class_name: string;
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: string;
  trained_betas?: number[] | null;
  prediction_type?: string;
  timestep_spacing?: string;
  steps_offset?: number;
  set_alpha_to_one?: boolean;
  clip_sample?: boolean;
  clip_sample_range?: number;
  skip_prk_steps?: boolean;
  original_inference_steps?: number;
  timestep_scaling?: number;
  solver_order?: number;
  algorithm_type?: string;
  solver_type?: string;
  lower_order_final?: boolean;
  euler_at_final?: boolean;
  final_sigmas_type?: string;
  use_karras_sigmas?: boolean;
  [key: string]: unknown;
}

/** A validated config with every default filled in (camelCase). */
export interface ResolvedSchedulerConfig {
  readonly className: SchedulerClassName;
  readonly numTrainTimesteps: number;
  readonly betaStart: number;
  readonly betaEnd: number;
  readonly betaSchedule: BetaSchedule;
  /** Explicit betas (length numTrainTimesteps) overriding the schedule, or null. */
  readonly trainedBetas: Float64Array | null;
  readonly predictionType: PredictionType;
  readonly timestepSpacing: TimestepSpacing;
  readonly stepsOffset: number;
  /** DDIM/PNDM/LCM: ᾱ used "after" the last step is 1 (true) or ᾱ[0] (false). */
  readonly setAlphaToOne: boolean;
  /** DDIM/LCM: clamp the predicted x₀ to ±clipSampleRange. */
  readonly clipSample: boolean;
  readonly clipSampleRange: number;
  /** LCM: size of the origin timestep grid. */
  readonly originalInferenceSteps: number;
  /** LCM: boundary-condition time scaling. */
  readonly timestepScaling: number;
  /** DPM-Solver++: 1 or 2. */
  readonly solverOrder: 1 | 2;
  readonly solverType: DpmSolverType;
  readonly lowerOrderFinal: boolean;
  readonly eulerAtFinal: boolean;
  readonly finalSigmasType: FinalSigmasType;
  /** Euler / Euler ancestral / DPM-Solver++: Karras et al. (2022) σ ramp with ρ = 7. */
  readonly useKarrasSigmas: boolean;
  /** PNDM: PLMS only (true) or a Runge–Kutta warm-up first (false, diffusers' default). */
  readonly skipPrkSteps: boolean;
}

/** Thrown for any unknown class, unsupported option or invalid value. */
export class SchedulerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SchedulerConfigError";
  }
}

interface ClassDefaults {
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  timestepSpacing: TimestepSpacing;
  setAlphaToOne: boolean;
  clipSample: boolean;
  skipPrkSteps: boolean;
}

const COMMON_DEFAULTS: ClassDefaults = {
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: "linear",
  timestepSpacing: "leading",
  setAlphaToOne: true,
  clipSample: false,
  skipPrkSteps: true,
};

const CLASS_DEFAULTS: Record<SchedulerClassName, ClassDefaults> = {
  EulerDiscreteScheduler: { ...COMMON_DEFAULTS, timestepSpacing: "linspace" },
  EulerAncestralDiscreteScheduler: { ...COMMON_DEFAULTS, timestepSpacing: "linspace" },
  DDIMScheduler: { ...COMMON_DEFAULTS, clipSample: true },
  PNDMScheduler: { ...COMMON_DEFAULTS, setAlphaToOne: false, skipPrkSteps: false },
  LCMScheduler: { ...COMMON_DEFAULTS, betaStart: 0.00085, betaEnd: 0.012, betaSchedule: "scaled_linear" },
  DPMSolverMultistepScheduler: { ...COMMON_DEFAULTS, timestepSpacing: "linspace" },
};

function fail(className: string, message: string): never {
  throw new SchedulerConfigError(`scheduler config (${className}): ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function pickEnum<T extends string>(
  cls: string,
  raw: Record<string, unknown>,
  key: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
    fail(cls, `${key} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}; got ${JSON.stringify(v)}`);
  }
  return v as T;
}

function pickBool(cls: string, raw: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") fail(cls, `${key} must be a boolean; got ${JSON.stringify(v)}`);
  return v;
}

function pickNumber(
  cls: string,
  raw: Record<string, unknown>,
  key: string,
  fallback: number,
  check: { integer?: boolean; min?: number; max?: number; exclusiveMin?: number; exclusiveMax?: number },
): number {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) fail(cls, `${key} must be a finite number; got ${typeof v === "number" ? v : JSON.stringify(v)}`);
  if (check.integer && !Number.isInteger(v)) fail(cls, `${key} must be an integer; got ${v}`);
  if (check.min !== undefined && v < check.min) fail(cls, `${key} must be >= ${check.min}; got ${v}`);
  if (check.max !== undefined && v > check.max) fail(cls, `${key} must be <= ${check.max}; got ${v}`);
  if (check.exclusiveMin !== undefined && v <= check.exclusiveMin) fail(cls, `${key} must be > ${check.exclusiveMin}; got ${v}`);
  if (check.exclusiveMax !== undefined && v >= check.exclusiveMax) fail(cls, `${key} must be < ${check.exclusiveMax}; got ${v}`);
  return v;
}

const KARRAS_CLASSES: readonly SchedulerClassName[] = [
  "EulerDiscreteScheduler",
  "EulerAncestralDiscreteScheduler",
  "DPMSolverMultistepScheduler",
];

/** Options that must be absent or at their "off" value because the maths is not implemented. */
function rejectUnsupported(cls: SchedulerClassName, raw: Record<string, unknown>): void {
  const mustBeFalse = [
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "thresholding",
    "rescale_betas_zero_snr",
    "use_lu_lambdas",
  ];
  for (const key of mustBeFalse) {
    const v = raw[key];
    if (v === undefined || v === null || v === false) continue;
    if (v === true) fail(cls, `${key}=true is not supported by graphserve's ${cls} (only ${key}=false)`);
    fail(cls, `${key} must be a boolean; got ${JSON.stringify(v)}`);
  }
  if (!KARRAS_CLASSES.includes(cls)) {
    const v = raw["use_karras_sigmas"];
    if (v === true) fail(cls, `use_karras_sigmas=true is not supported by graphserve's ${cls} (supported by: ${KARRAS_CLASSES.join(", ")})`);
  }
  for (const key of ["sigma_min", "sigma_max"]) {
    const v = raw[key];
    if (v !== undefined && v !== null) fail(cls, `${key} overrides are not supported (only null)`);
  }
  const ts = raw["timestep_type"];
  if (ts !== undefined && ts !== null && ts !== "discrete") {
    fail(cls, `timestep_type ${JSON.stringify(ts)} is not supported (only "discrete")`);
  }
  const it = raw["interpolation_type"];
  if (it !== undefined && it !== null && it !== "linear") {
    fail(cls, `interpolation_type ${JSON.stringify(it)} is not supported (only "linear")`);
  }
  const vt = raw["variance_type"];
  if (cls === "DPMSolverMultistepScheduler" && vt !== undefined && vt !== null) {
    fail(cls, `variance_type ${JSON.stringify(vt)} is not supported (learned variance models are not handled)`);
  }
  const lmc = raw["lambda_min_clipped"];
  if (lmc !== undefined && lmc !== null && lmc !== -Infinity && lmc !== "-inf" && lmc !== "-Infinity") {
    fail(cls, `lambda_min_clipped ${JSON.stringify(lmc)} is not supported (only -inf)`);
  }
}

/**
 * Validate a parsed `scheduler_config.json` and fill in defaults.
 * @throws SchedulerConfigError naming the offending field (or the unknown class
 *   together with the supported class names).
 */
export function resolveSchedulerConfig(config: unknown): ResolvedSchedulerConfig {
  if (!isRecord(config)) {
    throw new SchedulerConfigError(`scheduler config must be a JSON object; got ${config === null ? "null" : typeof config}`);
  }
  const name = config["_class_name"];
  if (typeof name !== "string" || !(SUPPORTED_SCHEDULERS as readonly string[]).includes(name)) {
    throw new SchedulerConfigError(
      `unsupported scheduler _class_name ${JSON.stringify(name)}; supported: ${SUPPORTED_SCHEDULERS.join(", ")}`,
    );
  }
  const cls = name as SchedulerClassName;
  const d = CLASS_DEFAULTS[cls];
  rejectUnsupported(cls, config);

  const numTrainTimesteps = pickNumber(cls, config, "num_train_timesteps", 1000, { integer: true, min: 2, max: 100000 });
  const betaStart = pickNumber(cls, config, "beta_start", d.betaStart, { exclusiveMin: 0, exclusiveMax: 1 });
  const betaEnd = pickNumber(cls, config, "beta_end", d.betaEnd, { exclusiveMin: 0, exclusiveMax: 1 });
  const betaSchedule = pickEnum(cls, config, "beta_schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"] as const, d.betaSchedule);

  let trainedBetas: Float64Array | null = null;
  const tb = config["trained_betas"];
  if (tb !== undefined && tb !== null) {
    if (!Array.isArray(tb) || tb.length !== numTrainTimesteps) {
      fail(cls, `trained_betas must be an array of num_train_timesteps (${numTrainTimesteps}) numbers`);
    }
    trainedBetas = new Float64Array(numTrainTimesteps);
    for (let i = 0; i < tb.length; i++) {
      const b: unknown = tb[i];
      if (typeof b !== "number" || !(b > 0 && b < 1)) fail(cls, `trained_betas[${i}] must be a number in (0, 1); got ${JSON.stringify(b)}`);
      trainedBetas[i] = b;
    }
  }

  const predictionType = pickEnum(cls, config, "prediction_type", ["epsilon", "v_prediction", "sample"] as const, "epsilon");
  const timestepSpacing = pickEnum(cls, config, "timestep_spacing", ["leading", "trailing", "linspace"] as const, d.timestepSpacing);
  const stepsOffset = pickNumber(cls, config, "steps_offset", 0, { integer: true, min: 0, max: numTrainTimesteps - 1 });
  const setAlphaToOne = pickBool(cls, config, "set_alpha_to_one", d.setAlphaToOne);
  const clipSample = pickBool(cls, config, "clip_sample", d.clipSample);
  const clipSampleRange = pickNumber(cls, config, "clip_sample_range", 1, { exclusiveMin: 0 });

  const skipPrkSteps = pickBool(cls, config, "skip_prk_steps", d.skipPrkSteps);

  const originalInferenceSteps = pickNumber(cls, config, "original_inference_steps", 50, { integer: true, min: 1, max: numTrainTimesteps });
  const timestepScaling = pickNumber(cls, config, "timestep_scaling", 10, { exclusiveMin: 0 });

  const solverOrderRaw = config["solver_order"];
  if (cls === "DPMSolverMultistepScheduler" && solverOrderRaw !== undefined && solverOrderRaw !== null && solverOrderRaw !== 1 && solverOrderRaw !== 2) {
    fail(cls, `solver_order ${JSON.stringify(solverOrderRaw)} is not supported (supported: 1, 2)`);
  }
  const solverOrder: 1 | 2 = solverOrderRaw === 1 ? 1 : 2;
  if (cls === "DPMSolverMultistepScheduler") {
    const alg = config["algorithm_type"];
    if (alg !== undefined && alg !== null && alg !== "dpmsolver++") {
      fail(cls, `algorithm_type ${JSON.stringify(alg)} is not supported (supported: "dpmsolver++")`);
    }
  }
  const solverType = pickEnum(cls, config, "solver_type", ["midpoint", "heun"] as const, "midpoint");
  const lowerOrderFinal = pickBool(cls, config, "lower_order_final", true);
  const eulerAtFinal = pickBool(cls, config, "euler_at_final", false);
  const finalSigmasType = pickEnum(cls, config, "final_sigmas_type", ["zero", "sigma_min"] as const, "zero");
  const useKarrasSigmas = pickBool(cls, config, "use_karras_sigmas", false);

  return Object.freeze({
    className: cls,
    numTrainTimesteps,
    betaStart,
    betaEnd,
    betaSchedule,
    trainedBetas,
    predictionType,
    timestepSpacing,
    stepsOffset,
    setAlphaToOne,
    clipSample,
    clipSampleRange,
    originalInferenceSteps,
    timestepScaling,
    solverOrder,
    solverType,
    lowerOrderFinal,
    eulerAtFinal,
    finalSigmasType,
    useKarrasSigmas,
    skipPrkSteps,
  });
}
