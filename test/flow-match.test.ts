/**
 * FlowMatchEulerDiscreteScheduler against diffusers: schedules (static shift, dynamic
 * shift from the image sequence length, exponential and linear μ, FLUX's own sigmas,
 * the img2img cut), Euler steps and scale_noise, all bit for bit. The values come
 * from tools/reference/flow_match.py (test/fixtures/flow-match/diffusers.json).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { FlowMatchEulerDiscreteScheduler, resolveFlowMatchConfig, schedulerFor, SchedulerConfigError } from "../src/backends/onnx/schedulers/index.js";

interface Case {
  name: string;
  config: Record<string, unknown>;
  steps: number;
  strength: number;
  image_seq_len: number | null;
  sigmas_passed: number[] | null;
  mu: number | null;
  timesteps: number[];
  sigmas: number[];
  x0: number[];
  noise: number[];
  steps_run: { model_output: number[]; latents: number[] }[];
  renoised: number[][];
}

const FIXTURE = join(import.meta.dirname, "..", "..", "test", "fixtures", "flow-match", "diffusers.json");
const { cases } = JSON.parse(readFileSync(FIXTURE, "utf8")) as { cases: Case[] };

function scheduled(c: Case): FlowMatchEulerDiscreteScheduler {
  const s = schedulerFor({ _class_name: "FlowMatchEulerDiscreteScheduler", ...c.config });
  assert.ok(s instanceof FlowMatchEulerDiscreteScheduler);
  s.setTimesteps(c.steps, { strength: c.strength, sigmas: c.sigmas_passed ?? undefined, imageSeqLen: c.image_seq_len ?? undefined });
  return s;
}

const label = (c: Case) => `${c.name}, ${c.steps} steps, strength ${c.strength}${c.image_seq_len ? `, ${c.image_seq_len} tokens` : ""}`;

describe("FlowMatchEulerDiscreteScheduler vs diffusers", () => {
  test("the fixture covers static and dynamic shifting, both μ formulas, FLUX's sigmas and the img2img cut", () => {
    assert.ok(cases.some((c) => c.config.use_dynamic_shifting === true && c.config.time_shift_type === undefined));
    assert.ok(cases.some((c) => c.config.time_shift_type === "linear"));
    assert.ok(cases.some((c) => c.sigmas_passed === null && c.config.shift === 3));
    assert.ok(cases.some((c) => c.sigmas_passed !== null));
    assert.ok(cases.some((c) => c.strength < 1));
  });

  for (const c of cases) {
    test(`schedule: ${label(c)}`, () => {
      const s = scheduled(c);
      assert.deepEqual([...s.timesteps], c.timesteps);
      assert.deepEqual([...s.sigmas], c.sigmas);
      assert.equal(s.numInferenceSteps, c.steps);
    });

    test(`steps and scale_noise: ${label(c)}`, () => {
      const s = scheduled(c);
      const x0 = Float32Array.from(c.x0);
      const noise = Float32Array.from(c.noise);
      let latents = c.strength < 1 ? s.addNoise(x0, noise, 0) : Float32Array.from(noise);
      assert.equal(c.steps_run.length, s.timesteps.length);
      c.steps_run.forEach((r, i) => {
        latents = s.step(Float32Array.from(r.model_output), i, latents, undefined, latents);
        assert.deepEqual([...latents], r.latents, `latents after step ${i}`);
        if (i + 1 < s.timesteps.length) assert.deepEqual([...s.addNoise(x0, noise, i + 1)], c.renoised[i], `re-noised original for step ${i + 1}`);
      });
    });
  }
});

describe("FlowMatchEulerDiscreteScheduler: bad configs and calls", () => {
  test("options that would change the maths are refused, naming the key", () => {
    for (const key of ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas", "stochastic_sampling"]) {
      assert.throws(() => resolveFlowMatchConfig({ [key]: true }), (e: unknown) => e instanceof SchedulerConfigError && e.message.includes(key));
    }
    assert.throws(() => resolveFlowMatchConfig({ shift_terminal: 0.1 }), /shift_terminal/);
    assert.throws(() => resolveFlowMatchConfig({ time_shift_type: "cubic" }), /time_shift_type/);
    assert.throws(() => resolveFlowMatchConfig({ shift: -1 }), /shift/);
  });

  test("dynamic shifting needs the sequence length; the img2img cut keeps at least one step", () => {
    const dev = new FlowMatchEulerDiscreteScheduler(resolveFlowMatchConfig({ use_dynamic_shifting: true }));
    assert.throws(() => dev.setTimesteps(4), /sequence length/);
    const sd3 = new FlowMatchEulerDiscreteScheduler(resolveFlowMatchConfig({ shift: 3 }));
    // t_start = int(max(n − n·strength, 0)) < n for any strength > 0 (SD's floor(n·strength) would leave none).
    sd3.setTimesteps(1, { strength: 0.2 });
    assert.equal(sd3.timesteps.length, 1);
    assert.throws(() => sd3.setTimesteps(2, { strength: 0 }), /strength/);
    assert.throws(() => sd3.setTimesteps(3, { sigmas: [1, 0.5] }), /2 sigmas for 3 steps/);
  });

  test("a β-schedule config still builds its own class", () => {
    assert.equal(schedulerFor({ _class_name: "DDIMScheduler" }).className, "DDIMScheduler");
  });
});
