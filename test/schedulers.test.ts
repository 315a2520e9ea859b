/**
 * Diffusion schedulers: timesteps, σ/ᾱ, single steps and short trajectories,
 * each compared against a float64 reference written out plainly below from the
 * published formulas (never by calling the implementation).
 */
import { parseConfigJson } from "../src/backends/onnx/config-json.js";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  DDIMScheduler,
  DPMSolverMultistepScheduler,
  EulerDiscreteScheduler,
  LCMScheduler,
  PNDMScheduler,
  SchedulerConfigError,
  SUPPORTED_SCHEDULERS,
  createScheduler,
  type SchedulerConfig,
} from "../src/backends/onnx/schedulers/index.js";

// ---------------------------------------------------------------------------
// Reference maths (float64, plain arrays)
// ---------------------------------------------------------------------------

const T = 1000;

function refAlphasCumprod(betaStart: number, betaEnd: number, schedule: "linear" | "scaled_linear"): number[] {
  const out: number[] = [];
  let prod = 1;
  for (let i = 0; i < T; i++) {
    const frac = i / (T - 1);
    const beta =
      schedule === "linear"
        ? betaStart + frac * (betaEnd - betaStart)
        : (Math.sqrt(betaStart) + frac * (Math.sqrt(betaEnd) - Math.sqrt(betaStart))) ** 2;
    prod = prod * (1 - beta);
    out.push(prod);
  }
  return out;
}

const SD_AC = refAlphasCumprod(0.00085, 0.012, "scaled_linear");

/** σ = √((1−ᾱ)/ᾱ), linear interpolation in t. */
function refSigma(ac: number[], t: number): number {
  const f = (i: number) => Math.sqrt((1 - ac[i]) / ac[i]);
  const lo = Math.floor(t);
  if (lo >= ac.length - 1) return f(ac.length - 1);
  return f(lo) + (t - lo) * (f(lo + 1) - f(lo));
}

/** A fixed, varied input vector (Float32-representable). */
function vec(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.sin(seed * 12.9898 + i * 78.233) * 1.7;
  return v;
}

/** Deterministic "standard normal" stream for ancestral tests. */
function fixedRng(values: number[]): () => number {
  let k = 0;
  return () => values[k++ % values.length];
}

/** |a − e| ≤ rel·max(|e|, 1) element-wise. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-6, what = ""): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.max(Math.abs(expected[i]), 1);
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tol ${tol})`,
    );
  }
}

// SD 1.5's scheduler_config.json (PNDM), with the class swapped as a pipeline would.
const SD15 = {
  _class_name: "PNDMScheduler",
  _diffusers_version: "0.6.0",
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
} satisfies SchedulerConfig;

const sd = (cls: string, extra: Record<string, unknown> = {}) => ({ ...SD15, _class_name: cls, ...extra });

// SD-Turbo style: Euler, trailing spacing.
const TURBO = sd("EulerDiscreteScheduler", { timestep_spacing: "trailing", steps_offset: 1, prediction_type: "epsilon" });

const leading50 = Array.from({ length: 50 }, (_, k) => (49 - k) * 20 + 1);

// ---------------------------------------------------------------------------

describe("schedulers: noise schedule", () => {
  test("ᾱ of SD 1.5 (scaled_linear 0.00085–0.012) matches the reference", () => {
    const s = createScheduler(SD15);
    assertClose(s.alphasCumprod, SD_AC, 1e-12, "alphasCumprod");
    // Sanity anchors for the published schedule.
    assert.ok(Math.abs(s.alphasCumprod[0] - (1 - 0.00085)) < 1e-15);
    assert.ok(Math.abs(s.alphasCumprod[999] - 0.0046) < 1e-4);
  });

  test("linear and squaredcos_cap_v2 schedules", () => {
    const lin = createScheduler({ _class_name: "DDIMScheduler", beta_schedule: "linear", beta_start: 0.0001, beta_end: 0.02 });
    assertClose(lin.alphasCumprod, refAlphasCumprod(0.0001, 0.02, "linear"), 1e-12, "linear");
    const cos = createScheduler({ _class_name: "DDIMScheduler", beta_schedule: "squaredcos_cap_v2" });
    const f = (t: number) => Math.cos(((t / T + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    const ref: number[] = [];
    let p = 1;
    for (let i = 0; i < T; i++) {
      p *= 1 - Math.min(1 - f(i + 1) / f(i), 0.999);
      ref.push(p);
    }
    assertClose(cos.alphasCumprod, ref, 1e-12, "cosine");
  });
});

describe("schedulers: Euler discrete", () => {
  test("SD 1.5 leading: timesteps, σ, init noise σ, model-input scaling", () => {
    const s = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "leading" })) as EulerDiscreteScheduler;
    s.setTimesteps(50);
    assert.deepEqual(Array.from(s.timesteps), leading50);
    const refSig = leading50.map((t) => refSigma(SD_AC, t)).concat([0]);
    assertClose(s.sigmas, refSig, 1e-12, "sigmas");
    assert.ok(Math.abs(s.initNoiseSigma - Math.sqrt(refSig[0] ** 2 + 1)) < 1e-12);
    const x = vec(16, 1);
    const scaled = s.scaleModelInput(x, 3);
    assertClose(scaled, Array.from(x, (v) => v / Math.sqrt(refSig[3] ** 2 + 1)), 1e-6, "scaled");
  });

  test("one epsilon step matches x + (σ' − σ)·(x − x₀)/σ", () => {
    const s = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "leading" })) as EulerDiscreteScheduler;
    s.setTimesteps(50);
    const x = vec(32, 2);
    const eps = vec(32, 3);
    const i = 7;
    const sig = refSigma(SD_AC, leading50[i]);
    const sigNext = refSigma(SD_AC, leading50[i + 1]);
    const expected = Array.from(x, (xv, k) => {
      const x0 = xv - sig * eps[k];
      const d = (xv - x0) / sig;
      return xv + (sigNext - sig) * d;
    });
    assertClose(s.step(eps, i, x), expected, 1e-6, "euler");
  });

  test("SD-Turbo trailing: 1 and 4 steps, init noise σ = σ_max", () => {
    const s = createScheduler(TURBO) as EulerDiscreteScheduler;
    s.setTimesteps(1);
    assert.deepEqual(Array.from(s.timesteps), [999]);
    assert.ok(Math.abs(s.initNoiseSigma - refSigma(SD_AC, 999)) < 1e-12);
    assert.ok(Math.abs(s.initNoiseSigma - 14.6146) < 1e-4); // the well-known SD σ_max
    s.setTimesteps(4);
    assert.deepEqual(Array.from(s.timesteps), [999, 749, 499, 249]);
    // numpy-style half-to-even rounding: 16 steps gives 1000 − 62.5k.
    s.setTimesteps(16);
    const ref16 = Array.from({ length: 16 }, (_, k) => {
      const v = 1000 - 62.5 * k;
      const f = Math.floor(v);
      const r = v - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(v);
      return r - 1;
    });
    assert.deepEqual(Array.from(s.timesteps), ref16);
    assert.equal(s.timesteps[1], 937); // 937.5 → 938 → 937
    assert.equal(s.timesteps[3], 811); // 812.5 → 812 → 811
  });

  test("1-step SD-Turbo: epsilon step lands on x₀ = x − σ·ε", () => {
    const s = createScheduler(TURBO);
    s.setTimesteps(1);
    const x = vec(8, 4);
    const eps = vec(8, 5);
    const sig = refSigma(SD_AC, 999);
    assertClose(s.step(eps, 0, x), Array.from(x, (v, k) => v - sig * eps[k]), 1e-6, "turbo");
  });

  test("linspace: fractional timesteps and interpolated σ", () => {
    const s = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "linspace" })) as EulerDiscreteScheduler;
    s.setTimesteps(25);
    const ts = Array.from({ length: 25 }, (_, k) => ((24 - k) * 999) / 24);
    assertClose(s.timesteps, ts, 1e-12, "timesteps");
    assertClose(s.sigmas, ts.map((t) => refSigma(SD_AC, t)).concat([0]), 1e-12, "sigmas");
    assert.ok(Math.abs(s.initNoiseSigma - refSigma(SD_AC, 999)) < 1e-12);
  });

  test("trajectory: zero ε keeps x; zero x₀-prediction scales x by σ_k/σ_0", () => {
    const s = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "leading" })) as EulerDiscreteScheduler;
    s.setTimesteps(20);
    const x0 = vec(64, 6);
    const zero = new Float32Array(64);
    let x = x0;
    for (let i = 0; i < s.timesteps.length; i++) x = s.step(zero, i, x);
    assertClose(x, x0, 0, "epsilon-zero");

    const p = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "leading", prediction_type: "sample" })) as EulerDiscreteScheduler;
    p.setTimesteps(20);
    const sig = Array.from({ length: 20 }, (_, k) => refSigma(SD_AC, (19 - k) * 50 + 1)).concat([0]);
    x = x0;
    for (let i = 0; i < 20; i++) {
      x = p.step(zero, i, x);
      assertClose(x, Array.from(x0, (v) => (v * sig[i + 1]) / sig[0]), 1e-5, `sample-zero step ${i}`);
    }
    assert.ok(x.every((v) => v === 0));
  });

  test("v_prediction step", () => {
    const s = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "trailing", prediction_type: "v_prediction" }));
    s.setTimesteps(10);
    const x = vec(16, 7);
    const v = vec(16, 8);
    const i = 2;
    const t = [999, 899, 799, 699];
    const sig = refSigma(SD_AC, t[i]);
    const sigNext = refSigma(SD_AC, t[i + 1]);
    const expected = Array.from(x, (xv, k) => {
      const x0 = v[k] * (-sig / Math.sqrt(sig * sig + 1)) + xv / (sig * sig + 1);
      return xv + (sigNext - sig) * ((xv - x0) / sig);
    });
    assert.deepEqual(Array.from(s.timesteps.slice(0, 4)), t);
    assertClose(s.step(v, i, x), expected, 1e-6, "v");
  });

  test("img2img strength cuts the schedule; addNoise = x₀ + σ·ε", () => {
    const s = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "leading" })) as EulerDiscreteScheduler;
    s.setTimesteps(50, { strength: 0.6 });
    assert.deepEqual(Array.from(s.timesteps), leading50.slice(20));
    assert.equal(s.timesteps[0], 581);
    assert.equal(s.sigmas.length, 31);
    const x0 = vec(16, 9);
    const n = vec(16, 10);
    const sig = refSigma(SD_AC, 581);
    assertClose(s.addNoise(x0, n, 0), Array.from(x0, (v, k) => v + sig * n[k]), 1e-6, "addNoise");
    s.setTimesteps(10, { strength: 1 });
    assert.equal(s.timesteps.length, 10);
    s.setTimesteps(10, { strength: 0.35 });
    assert.equal(s.timesteps.length, 3);
  });

  test("out buffer may alias the sample", () => {
    const s = createScheduler(TURBO);
    s.setTimesteps(4);
    const x = vec(16, 11);
    const eps = vec(16, 12);
    const expected = s.step(eps, 1, x);
    const inPlace = Float32Array.from(x);
    assert.equal(s.step(eps, 1, inPlace, undefined, inPlace), inPlace);
    assert.deepEqual(inPlace, expected);
  });
});

/** Karras et al. eq. 5 (ρ = 7), written out. */
function refKarras(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const f = n === 1 ? 0 : i / (n - 1);
    out.push((Math.pow(sigmaMax, 1 / 7) + f * (Math.pow(sigmaMin, 1 / 7) - Math.pow(sigmaMax, 1 / 7))) ** 7);
  }
  return out;
}

/** Invert σ(t) by linear interpolation of ln σ between integer t (linear scan). */
function refTimestepForSigma(sigma: number): number {
  const ls = (i: number) => Math.log(Math.sqrt((1 - SD_AC[i]) / SD_AC[i]));
  const target = Math.log(sigma);
  for (let i = 0; i < T - 1; i++) {
    if (ls(i) <= target && target <= ls(i + 1)) return i + (target - ls(i)) / (ls(i + 1) - ls(i));
  }
  return target < ls(0) ? 0 : T - 1;
}

describe("schedulers: Karras sigmas", () => {
  test("Euler: σ ramp, fractional timesteps, one step", () => {
    const s = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "leading", use_karras_sigmas: true })) as EulerDiscreteScheduler;
    s.setTimesteps(20);
    const sig = refKarras(refSigma(SD_AC, 1), refSigma(SD_AC, 951), 20);
    assertClose(s.sigmas, sig.concat([0]), 1e-12, "karras sigmas");
    assertClose(s.timesteps, sig.map(refTimestepForSigma), 1e-9, "karras timesteps");
    assert.ok(Math.abs(s.timesteps[0] - 951) < 1e-6 && Math.abs(s.timesteps[19] - 1) < 1e-6);
    assert.ok(Math.abs(s.initNoiseSigma - Math.sqrt(sig[0] ** 2 + 1)) < 1e-12);
    const x = vec(16, 40);
    const e = vec(16, 41);
    assertClose(s.step(e, 4, x), Array.from(x, (v, k) => v + (sig[5] - sig[4]) * e[k]), 1e-6, "karras step");
  });

  test("DPM++ 2M Karras: rounded timesteps and trajectory", () => {
    const s = createScheduler(sd("DPMSolverMultistepScheduler", { timestep_spacing: "leading", use_karras_sigmas: true })) as DPMSolverMultistepScheduler;
    s.setTimesteps(20);
    // diffusers ramps over the whole training range, σ(0) … σ(999), whatever the spacing.
    const sig = refKarras(refSigma(SD_AC, 0), refSigma(SD_AC, 999), 20);
    // diffusers 0.39 gives 999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0.
    assert.deepEqual(Array.from(s.timesteps), [999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0]);
    const ts = sig.map((v) => {
      const t = refTimestepForSigma(v);
      const f = Math.floor(t);
      return t - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(t);
    });
    assert.deepEqual(Array.from(s.timesteps), ts);
    assertClose(s.sigmas, sig.concat([0]), 1e-12, "sigmas");
    const x0 = vec(24, 42);
    assertClose(runScheduler(s, x0), refDpm2M(sig.concat([0]), x0, ts, false, "epsilon"), 1e-5, "dpm karras");
  });
});

describe("schedulers: Euler ancestral", () => {
  test("step = x + (σ_down − σ)·d + σ_up·z", () => {
    const s = createScheduler(sd("EulerAncestralDiscreteScheduler", { timestep_spacing: "leading" }));
    s.setTimesteps(50);
    const x = vec(12, 13);
    const eps = vec(12, 14);
    const z = Array.from(vec(12, 15));
    const i = 10;
    const sig = refSigma(SD_AC, leading50[i]);
    const next = refSigma(SD_AC, leading50[i + 1]);
    const up = Math.sqrt((next ** 2 * (sig ** 2 - next ** 2)) / sig ** 2);
    const down = Math.sqrt(next ** 2 - up ** 2);
    const expected = Array.from(x, (xv, k) => {
      const x0 = xv - sig * eps[k];
      return xv + (down - sig) * ((xv - x0) / sig) + up * z[k];
    });
    assertClose(s.step(eps, i, x, fixedRng(z)), expected, 1e-6, "ancestral");
    assert.throws(() => s.step(eps, i, x), /needs an rng/);
    // Last step (σ_next = 0): still draws (as diffusers does) but σ_up = 0, so it returns x₀.
    const last = s.step(eps, 49, x, fixedRng(z));
    const sigL = refSigma(SD_AC, 1);
    assertClose(last, Array.from(x, (v, k) => v - sigL * eps[k]), 1e-6, "last");
  });
});

describe("schedulers: DDIM", () => {
  const cfg = sd("DDIMScheduler");

  test("timesteps and one step, epsilon and v_prediction", () => {
    const s = createScheduler(cfg) as DDIMScheduler;
    s.setTimesteps(50);
    assert.equal(s.initNoiseSigma, 1);
    assert.deepEqual(Array.from(s.timesteps), leading50);
    const x = vec(20, 16);
    const m = vec(20, 17);
    for (const [i, t, tp] of [
      [5, leading50[5], leading50[5] - 20],
      [49, 1, -19],
    ]) {
      const at = SD_AC[t];
      const ap = tp >= 0 ? SD_AC[tp] : SD_AC[0]; // set_alpha_to_one: false
      const expected = Array.from(x, (xv, k) => {
        const x0 = (xv - Math.sqrt(1 - at) * m[k]) / Math.sqrt(at);
        return Math.sqrt(ap) * x0 + Math.sqrt(1 - ap) * m[k];
      });
      assertClose(s.step(m, i, x), expected, 1e-6, `ddim step ${i}`);
    }
    const v = createScheduler({ ...cfg, prediction_type: "v_prediction", timestep_spacing: "trailing" });
    v.setTimesteps(4);
    assert.deepEqual(Array.from(v.timesteps), [999, 749, 499, 249]);
    const at = SD_AC[749];
    const ap = SD_AC[499];
    const expected = Array.from(x, (xv, k) => {
      const x0 = Math.sqrt(at) * xv - Math.sqrt(1 - at) * m[k];
      const e = Math.sqrt(at) * m[k] + Math.sqrt(1 - at) * xv;
      return Math.sqrt(ap) * x0 + Math.sqrt(1 - ap) * e;
    });
    assertClose(v.step(m, 1, x), expected, 1e-6, "ddim v");
  });

  test("linspace rounds timesteps half-to-even", () => {
    const s = createScheduler({ ...cfg, timestep_spacing: "linspace" });
    s.setTimesteps(3);
    assert.deepEqual(Array.from(s.timesteps), [999, 500, 0]); // 499.5 → 500
  });

  test("trajectory with zero ε telescopes to √(ᾱ_final/ᾱ_first)·x", () => {
    const s = createScheduler({ ...cfg, set_alpha_to_one: true });
    s.setTimesteps(25);
    const x0 = vec(32, 18);
    const zero = new Float32Array(32);
    let x = x0;
    for (let i = 0; i < 25; i++) x = s.step(zero, i, x);
    const first = 24 * 40 + 1;
    assertClose(x, Array.from(x0, (v) => v * Math.sqrt(1 / SD_AC[first])), 1e-5, "telescoped");
  });

  test("clip_sample clamps x₀ only", () => {
    const s = createScheduler({ ...cfg, clip_sample: true, clip_sample_range: 0.5 });
    s.setTimesteps(10);
    const x = vec(16, 19);
    const m = vec(16, 20);
    const at = SD_AC[901];
    const ap = SD_AC[801];
    const expected = Array.from(x, (xv, k) => {
      const x0 = Math.min(0.5, Math.max(-0.5, (xv - Math.sqrt(1 - at) * m[k]) / Math.sqrt(at)));
      return Math.sqrt(ap) * x0 + Math.sqrt(1 - ap) * m[k];
    });
    assertClose(s.step(m, 0, x), expected, 1e-6, "clip");
  });

  test("img2img: strength and addNoise = √ᾱ·x₀ + √(1−ᾱ)·ε", () => {
    const s = createScheduler(cfg);
    s.setTimesteps(50, { strength: 0.3 });
    assert.deepEqual(Array.from(s.timesteps), leading50.slice(35));
    const x0 = vec(8, 21);
    const n = vec(8, 22);
    const a = SD_AC[leading50[35]];
    assertClose(s.addNoise(x0, n, 0), Array.from(x0, (v, k) => Math.sqrt(a) * v + Math.sqrt(1 - a) * n[k]), 1e-6, "noise");
  });
});

/** Plain float64 PLMS reference for a full run over grid g (epsilon or v). */
/**
 * diffusers' PNDMScheduler.step_plms on the timestep list [g₀, g₁, g₁, g₂, …] cut at `start`
 * (img2img): raw outputs are stored; the combination is converted to ε at the step's start.
 */
function refPlms(
  grid: number[],
  ratio: number,
  x0: Float32Array,
  model: (x: number[], t: number) => number[],
  finalAlpha: number,
  prediction: "epsilon" | "v_prediction",
  start = 0,
): { timesteps: number[]; x: number[] } {
  const a = (t: number) => (t >= 0 ? SD_AC[t] : finalAlpha);
  const transfer = (x: number[], from: number, to: number, m: number[]) => {
    const at = a(from);
    const ap = a(to);
    const e = prediction === "v_prediction" ? m.map((v, j) => Math.sqrt(at) * v + Math.sqrt(1 - at) * x[j]) : m;
    return x.map((xv, k) => {
      const coef = Math.sqrt(ap / at);
      const den = at * Math.sqrt(1 - ap) + Math.sqrt(at * (1 - at) * ap);
      return coef * xv - ((ap - at) * e[k]) / den;
    });
  };
  const list = (grid.length === 1 ? grid.slice() : [grid[0], grid[1], ...grid.slice(1)]).slice(start);
  let x = Array.from(x0);
  let saved: number[] = [];
  const history: number[][] = [];
  for (let k = 0; k < list.length; k++) {
    const t = list[k];
    const e = model(x, t);
    if (k === 1) {
      const avg = e.map((v, j) => (v + history[0][j]) / 2);
      x = transfer(saved, t + ratio, t, avg);
      continue;
    }
    if (k === 0) saved = x.slice();
    history.push(e);
    const h = history.slice(-4).reverse(); // newest first
    let comb: number[];
    if (h.length === 1) comb = h[0];
    else if (h.length === 2) comb = h[0].map((_, j) => (3 * h[0][j] - h[1][j]) / 2);
    else if (h.length === 3) comb = h[0].map((_, j) => (23 * h[0][j] - 16 * h[1][j] + 5 * h[2][j]) / 12);
    else comb = h[0].map((_, j) => (55 * h[0][j] - 59 * h[1][j] + 37 * h[2][j] - 9 * h[3][j]) / 24);
    x = transfer(x, t, t - ratio, comb);
  }
  return { timesteps: list, x };
}

/** A toy "model": depends on both the sample and the timestep. */
const toyModel = (x: ArrayLike<number>, t: number): number[] =>
  Array.from(x, (v, k) => 0.4 * v + 0.3 * Math.sin(k + t / 97));

function runScheduler(s: ReturnType<typeof createScheduler>, x0: Float32Array, rng?: () => number): Float32Array {
  let x = x0;
  for (let i = 0; i < s.timesteps.length; i++) {
    const m = Float32Array.from(toyModel(s.scaleModelInput(x, i), s.timesteps[i]));
    x = s.step(m, i, x, rng);
  }
  return x;
}

describe("schedulers: PNDM (PLMS)", () => {
  test("SD 1.5, 10 steps: timesteps repeat the second grid point; trajectory matches", () => {
    const s = createScheduler(SD15) as PNDMScheduler;
    s.setTimesteps(10);
    const grid = Array.from({ length: 10 }, (_, k) => (9 - k) * 100 + 1);
    const x0 = vec(24, 23);
    const ref = refPlms(grid, 100, x0, toyModel, SD_AC[0], "epsilon");
    assert.deepEqual(Array.from(s.timesteps), ref.timesteps);
    assert.deepEqual(Array.from(s.timesteps.slice(0, 4)), [901, 801, 801, 701]);
    assertClose(runScheduler(s, x0), ref.x, 1e-5, "plms");
    // Running again (restart at step 0) gives the same result.
    assertClose(runScheduler(s, x0), ref.x, 1e-5, "plms rerun");
  });

  test("first step alone matches the PNDM transfer formula (1e-6)", () => {
    const s = createScheduler(SD15);
    s.setTimesteps(50);
    const x = vec(16, 24);
    const e = vec(16, 25);
    const at = SD_AC[981];
    const ap = SD_AC[961];
    const expected = Array.from(x, (xv, k) => {
      const den = at * Math.sqrt(1 - ap) + Math.sqrt(at * (1 - at) * ap);
      return Math.sqrt(ap / at) * xv - ((ap - at) * e[k]) / den;
    });
    assertClose(s.step(e, 0, x), expected, 1e-6, "pndm step0");
  });

  test("v_prediction and img2img strength", () => {
    const s = createScheduler({ ...SD15, prediction_type: "v_prediction" });
    s.setTimesteps(20, { strength: 0.5 });
    // diffusers: the 21-entry list [951, 901, 901, 851, …, 1] cut at index 10.
    const grid = Array.from({ length: 20 }, (_, k) => (19 - k) * 50 + 1);
    const x0 = vec(16, 26);
    const ref = refPlms(grid, 50, x0, toyModel, SD_AC[0], "v_prediction", 10);
    assert.deepEqual(ref.timesteps, [501, 451, 401, 351, 301, 251, 201, 151, 101, 51, 1]);
    assert.deepEqual(Array.from(s.timesteps), ref.timesteps);
    assertClose(runScheduler(s, x0), ref.x, 1e-5, "plms v img2img");
  });

  test("steps must run in order", () => {
    const s = createScheduler(SD15);
    s.setTimesteps(5);
    const x = vec(4, 27);
    s.step(x, 0, x);
    assert.throws(() => s.step(x, 2, x), /expected stepIndex 1/);
  });
});

describe("schedulers: LCM", () => {
  const cfg = { ...sd("LCMScheduler"), original_inference_steps: 50, set_alpha_to_one: true, timestep_scaling: 10 };

  test("timesteps from the 50-point origin grid", () => {
    const s = createScheduler(cfg);
    const pick = (n: number, L = 50) => Array.from({ length: n }, (_, j) => (L - Math.floor((j * L) / n)) * 20 - 1);
    s.setTimesteps(4);
    assert.deepEqual(Array.from(s.timesteps), [999, 759, 499, 259]);
    assert.deepEqual(Array.from(s.timesteps), pick(4));
    s.setTimesteps(8);
    assert.deepEqual(Array.from(s.timesteps), pick(8));
    s.setTimesteps(4, { strength: 0.5 });
    assert.deepEqual(Array.from(s.timesteps), pick(4, 25));
    assert.equal(s.timesteps[0], 499);
    assert.throws(() => s.setTimesteps(51), /original_inference_steps/);
  });

  test("steps: boundary scalings, fresh noise, last step returns denoised", () => {
    const s = createScheduler(cfg) as LCMScheduler;
    s.setTimesteps(4);
    const x = vec(16, 28);
    const e = vec(16, 29);
    const z = Array.from(vec(16, 30));
    const ts = [999, 759, 499, 259];
    const denoised = (t: number) => {
      const at = SD_AC[t];
      const sc = 10 * t;
      const cSkip = 0.25 / (sc * sc + 0.25);
      const cOut = sc / Math.sqrt(sc * sc + 0.25);
      return Array.from(x, (xv, k) => cOut * ((xv - Math.sqrt(1 - at) * e[k]) / Math.sqrt(at)) + cSkip * xv);
    };
    const d1 = denoised(ts[1]);
    const ap = SD_AC[ts[2]];
    assertClose(s.step(e, 1, x, fixedRng(z)), d1.map((v, k) => Math.sqrt(ap) * v + Math.sqrt(1 - ap) * z[k]), 1e-6, "lcm mid");
    assertClose(s.step(e, 3, x), denoised(ts[3]), 1e-6, "lcm last");
    assert.throws(() => s.step(e, 0, x), /needs an rng/);
  });
});

/** Plain DPM-Solver++ (2M) reference in λ form, over σ list `sig` (last entry = final σ). */
function refDpm2M(
  sig: number[],
  x0: Float32Array,
  ts: number[],
  lowerFinal: boolean,
  prediction: "epsilon" | "v_prediction",
): number[] {
  let x = Array.from(x0);
  let prevD: number[] | null = null;
  const lam = (s: number) => {
    const al = 1 / Math.sqrt(s * s + 1);
    return Math.log(al) - Math.log(s * al);
  };
  for (let i = 0; i < ts.length; i++) {
    const s0 = sig[i];
    const s1 = sig[i + 1];
    const aS = 1 / Math.sqrt(s0 * s0 + 1);
    const sS = s0 * aS;
    const m = toyModel(x, ts[i]);
    const d = prediction === "epsilon" ? x.map((v, k) => (v - sS * m[k]) / aS) : x.map((v, k) => aS * v - sS * m[k]);
    let next: number[];
    if (s1 === 0) {
      next = d.slice(); // α_t = 1, σ_t = 0: the first-order update gives x₀
    } else {
      const aT = 1 / Math.sqrt(s1 * s1 + 1);
      const sT = s1 * aT;
      const h = lam(s1) - lam(s0);
      const first = prevD === null || (lowerFinal && i === ts.length - 1);
      if (first) {
        next = x.map((v, k) => (sT / sS) * v - aT * (Math.exp(-h) - 1) * d[k]);
      } else {
        const hPrev = lam(s0) - lam(sig[i - 1]);
        const r = hPrev / h;
        const pd = prevD as number[];
        next = x.map((v, k) => {
          const D1 = (d[k] - pd[k]) / r;
          return (sT / sS) * v - aT * (Math.exp(-h) - 1) * d[k] - 0.5 * aT * (Math.exp(-h) - 1) * D1;
        });
      }
    }
    prevD = d;
    x = next;
  }
  return x;
}

describe("schedulers: DPM++ 2M", () => {
  test("SD 1.5 leading 20 steps (final σ 0): σ and trajectory", () => {
    const s = createScheduler(sd("DPMSolverMultistepScheduler", { timestep_spacing: "leading" })) as DPMSolverMultistepScheduler;
    s.setTimesteps(20);
    // diffusers spaces 21 points (ratio 1000 // 21 = 47) and drops the last.
    const ts = Array.from({ length: 20 }, (_, k) => (20 - k) * 47 + 1);
    assert.deepEqual(ts.slice(0, 3), [941, 894, 847]);
    assert.deepEqual(Array.from(s.timesteps), ts);
    const sig = ts.map((t) => refSigma(SD_AC, t)).concat([0]);
    assertClose(s.sigmas, sig, 1e-12, "sigmas");
    assert.equal(s.initNoiseSigma, 1);
    const x0 = vec(24, 31);
    assertClose(runScheduler(s, x0), refDpm2M(sig, x0, ts, false, "epsilon"), 1e-5, "dpm 2M");
  });

  test("trailing, sigma_min final, v_prediction, lower_order_final (< 15 steps)", () => {
    const s = createScheduler(
      sd("DPMSolverMultistepScheduler", { timestep_spacing: "trailing", final_sigmas_type: "sigma_min", prediction_type: "v_prediction" }),
    ) as DPMSolverMultistepScheduler;
    s.setTimesteps(8);
    const ts = Array.from({ length: 8 }, (_, k) => 999 - 125 * k);
    assert.deepEqual(Array.from(s.timesteps), ts);
    const sig = ts.map((t) => refSigma(SD_AC, t)).concat([refSigma(SD_AC, 0)]);
    assertClose(s.sigmas, sig, 1e-12, "sigmas");
    const x0 = vec(24, 32);
    assertClose(runScheduler(s, x0), refDpm2M(sig, x0, ts, true, "v_prediction"), 1e-5, "dpm v");
  });

  test("second step alone (second-order midpoint) at 1e-6", () => {
    const s = createScheduler(sd("DPMSolverMultistepScheduler", { timestep_spacing: "leading" })) as DPMSolverMultistepScheduler;
    s.setTimesteps(20);
    const xa = vec(16, 33);
    const ma = vec(16, 34);
    const xb = vec(16, 35);
    const mb = vec(16, 36);
    s.step(ma, 0, xa);
    const got = s.step(mb, 1, xb);
    const sg = [941, 894, 847].map((t) => refSigma(SD_AC, t));
    const a = sg.map((v) => 1 / Math.sqrt(v * v + 1));
    const lam = sg.map((v, k) => Math.log(a[k]) - Math.log(v * a[k]));
    const dA = Array.from(xa, (v, k) => (v - sg[0] * a[0] * ma[k]) / a[0]);
    const dB = Array.from(xb, (v, k) => (v - sg[1] * a[1] * mb[k]) / a[1]);
    const h = lam[2] - lam[1];
    const r = (lam[1] - lam[0]) / h;
    const expected = Array.from(xb, (v, k) => {
      const D1 = (dB[k] - dA[k]) / r;
      const E = a[2] * (Math.exp(-h) - 1);
      return ((sg[2] * a[2]) / (sg[1] * a[1])) * v - E * dB[k] - 0.5 * E * D1;
    });
    assertClose(got, expected, 1e-6, "dpm step 1");
  });

  test("heun solver type: second step alone", () => {
    const s = createScheduler(sd("DPMSolverMultistepScheduler", { timestep_spacing: "leading", solver_type: "heun" }));
    s.setTimesteps(20);
    const xa = vec(16, 43);
    const ma = vec(16, 44);
    const xb = vec(16, 45);
    const mb = vec(16, 46);
    s.step(ma, 0, xa);
    const got = s.step(mb, 1, xb);
    const sg = [941, 894, 847].map((t) => refSigma(SD_AC, t));
    const a = sg.map((v) => 1 / Math.sqrt(v * v + 1));
    const lam = sg.map((v, k) => Math.log(a[k]) - Math.log(v * a[k]));
    const dA = Array.from(xa, (v, k) => (v - sg[0] * a[0] * ma[k]) / a[0]);
    const dB = Array.from(xb, (v, k) => (v - sg[1] * a[1] * mb[k]) / a[1]);
    const h = lam[2] - lam[1];
    const r = (lam[1] - lam[0]) / h;
    const expected = Array.from(xb, (v, k) => {
      const D1 = (dB[k] - dA[k]) / r;
      return (
        ((sg[2] * a[2]) / (sg[1] * a[1])) * v -
        a[2] * (Math.exp(-h) - 1) * dB[k] +
        a[2] * ((Math.exp(-h) - 1) / h + 1) * D1
      );
    });
    assertClose(got, expected, 1e-6, "dpm heun");
  });

  test("linspace spaces n+1 points and drops the last, as diffusers", () => {
    const s = createScheduler(sd("DPMSolverMultistepScheduler", { timestep_spacing: "linspace" }));
    s.setTimesteps(10);
    assert.deepEqual(Array.from(s.timesteps), [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]);
  });

  test("lambda_min_clipped: -Infinity as diffusers writes it parses and is accepted", () => {
    const cfg = parseConfigJson('{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "variance_type": null, "x": "NaN -Infinity"}');
    assert.equal((cfg as Record<string, unknown>).lambda_min_clipped, -Infinity);
    assert.equal((cfg as Record<string, unknown>).x, "NaN -Infinity");
    assert.ok(createScheduler({ ...sd("DPMSolverMultistepScheduler"), lambda_min_clipped: (cfg as Record<string, unknown>).lambda_min_clipped }));
  });

  test("img2img: strength cut and VP addNoise", () => {
    const s = createScheduler(sd("DPMSolverMultistepScheduler", { timestep_spacing: "leading" }));
    s.setTimesteps(20, { strength: 0.75 });
    assert.deepEqual(Array.from(s.timesteps), Array.from({ length: 15 }, (_, k) => (15 - k) * 47 + 1));
    const x0 = vec(8, 37);
    const n = vec(8, 38);
    const a = SD_AC[706];
    assertClose(s.addNoise(x0, n, 0), Array.from(x0, (v, k) => Math.sqrt(a) * v + Math.sqrt(1 - a) * n[k]), 1e-6, "noise");
  });
});

describe("schedulers: config validation", () => {
  const err = (cfg: unknown, re: RegExp) =>
    assert.throws(
      () => createScheduler(cfg),
      (e: unknown) => e instanceof SchedulerConfigError && re.test(e.message),
    );

  test("unknown class names it and lists the supported ones", () => {
    err({ ...SD15, _class_name: "UniPCMultistepScheduler" }, /"UniPCMultistepScheduler".*EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DDIMScheduler, PNDMScheduler, LCMScheduler, DPMSolverMultistepScheduler/);
    err({}, /_class_name undefined/);
    err(null, /must be a JSON object/);
    assert.equal(SUPPORTED_SCHEDULERS.length, 6);
  });

  test("unsupported options are rejected by name", () => {
    err(sd("DDIMScheduler", { use_karras_sigmas: true }), /use_karras_sigmas=true is not supported by graphserve's DDIMScheduler \(supported by: EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler\)/);
    err(sd("EulerDiscreteScheduler", { use_exponential_sigmas: true }), /use_exponential_sigmas=true/);
    err(sd("EulerDiscreteScheduler", { sigma_max: 10 }), /sigma_max overrides/);
    err(sd("DPMSolverMultistepScheduler", { algorithm_type: "sde-dpmsolver++" }), /algorithm_type "sde-dpmsolver\+\+".*dpmsolver\+\+/);
    err(sd("DPMSolverMultistepScheduler", { solver_order: 3 }), /solver_order 3 is not supported \(supported: 1, 2\)/);
    err(sd("DDIMScheduler", { thresholding: true }), /thresholding=true/);
    err(sd("DDIMScheduler", { rescale_betas_zero_snr: true }), /rescale_betas_zero_snr/);
    err(sd("EulerDiscreteScheduler", { timestep_type: "continuous" }), /timestep_type/);
  });

  test("bad values are rejected with the field name", () => {
    err(sd("DDIMScheduler", { beta_schedule: "cosine" }), /beta_schedule must be one of "linear", "scaled_linear", "squaredcos_cap_v2"; got "cosine"/);
    err(sd("DDIMScheduler", { prediction_type: "flow" }), /prediction_type must be one of/);
    err(sd("DDIMScheduler", { timestep_spacing: "even" }), /timestep_spacing must be one of/);
    err(sd("DDIMScheduler", { steps_offset: 1.5 }), /steps_offset must be an integer/);
    err(sd("DDIMScheduler", { num_train_timesteps: "1000" }), /num_train_timesteps must be a finite number/);
    err(sd("DDIMScheduler", { beta_start: 0 }), /beta_start must be > 0/);
    err(sd("DDIMScheduler", { beta_end: 1 }), /beta_end must be < 1/);
    err(sd("DDIMScheduler", { set_alpha_to_one: "no" }), /set_alpha_to_one must be a boolean/);
    err(sd("LCMScheduler", { original_inference_steps: 0 }), /original_inference_steps must be >= 1/);
    err(sd("DDIMScheduler", { trained_betas: [0.1] }), /trained_betas must be an array of num_train_timesteps/);
    err(sd("DDIMScheduler", { clip_sample_range: -1 }), /clip_sample_range must be > 0/);
  });

  test("bad setTimesteps / step arguments", () => {
    const s = createScheduler(sd("DDIMScheduler"));
    assert.throws(() => s.step(new Float32Array(2), 0, new Float32Array(2)), /setTimesteps/);
    assert.throws(() => s.setTimesteps(0), /positive integer/);
    assert.throws(() => s.setTimesteps(1001), /exceeds num_train_timesteps/);
    assert.throws(() => s.setTimesteps(10, { strength: 0 }), /strength must be a number in \(0, 1\]/);
    assert.throws(() => s.setTimesteps(10, { strength: 1.5 }), /strength/);
    assert.throws(() => s.setTimesteps(10, { strength: 0.05 }), /leaves no denoising step/);
    s.setTimesteps(10);
    assert.throws(() => s.step(new Float32Array(2), 10, new Float32Array(2)), /stepIndex must be an integer in \[0, 9\]/);
    assert.throws(() => s.step(new Float32Array(2), 0, new Float32Array(3)), /length mismatch/);
  });
});

describe("schedulers: PNDM with the Runge–Kutta warm-up (skip_prk_steps false, diffusers' class default)", () => {
  test("timesteps laid out as diffusers 0.39 lays them out", () => {
    const s = createScheduler({ ...SD15, skip_prk_steps: false });
    s.setTimesteps(10);
    assert.deepEqual(Array.from(s.timesteps), [901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1]);
    // The class default is the warm-up.
    const d = createScheduler({ _class_name: "PNDMScheduler", steps_offset: 1 });
    d.setTimesteps(10);
    assert.equal(d.timesteps.length, 19);
  });
});

describe("schedulers: Euler final_sigmas_type", () => {
  test("EulerDiscrete ends at σ(0) with sigma_min; EulerAncestral always at 0", () => {
    const e = createScheduler(sd("EulerDiscreteScheduler", { timestep_spacing: "trailing", final_sigmas_type: "sigma_min" })) as EulerDiscreteScheduler;
    e.setTimesteps(4);
    assert.equal(e.sigmas[4], refSigma(SD_AC, 0));
    const a = createScheduler(sd("EulerAncestralDiscreteScheduler", { timestep_spacing: "trailing", final_sigmas_type: "sigma_min" })) as EulerDiscreteScheduler;
    a.setTimesteps(4);
    assert.equal(a.sigmas[4], 0);
  });
});
