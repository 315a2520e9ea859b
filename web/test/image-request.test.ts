import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { editFields, editSizeFor, fieldOfParam, generationBody, parseSettings, resultFileName, reuseInput, type SettingsInput } from "../src/image-request.js";

const input: SettingsInput = {
  mode: "generate", model: "demo", prompt: "three cats", negativePrompt: "", width: "512", height: "384",
  steps: "20", guidanceScale: "7.5", seed: "", n: "1", strength: "0.75",
};

function settings(over: Partial<SettingsInput> = {}) {
  const r = parseSettings({ ...input, ...over });
  assert.ok(r.ok, JSON.stringify(r));
  return r.settings;
}

describe("form → request", () => {
  it("builds the streaming generation body with progress, partials and no seed when empty", () => {
    assert.deepEqual(generationBody(settings()), {
      model: "demo", prompt: "three cats", size: "512x384", n: 1, num_inference_steps: 20, guidance_scale: 7.5,
      response_format: "b64_json", stream: true, stream_progress: true, partial_images: 3,
    });
  });

  it("adds rng_seed and negative_prompt when given, and asks no partials for one step", () => {
    const body = generationBody(settings({ seed: "42", negativePrompt: "blurry", steps: "1", n: "2" }));
    assert.equal(body.rng_seed, 42);
    assert.equal(body.negative_prompt, "blurry");
    assert.equal(body.partial_images, 0);
    assert.equal(body.n, 2);
  });

  it("sends edits as text parts, strength included", () => {
    const fields = new Map(editFields(settings({ mode: "edit", strength: "0.6", seed: "7" })));
    assert.equal(fields.get("strength"), "0.6");
    assert.equal(fields.get("stream"), "true");
    assert.equal(fields.get("stream_progress"), "true");
    assert.equal(fields.get("size"), "512x384");
    assert.equal(fields.get("rng_seed"), "7");
    assert.equal(fields.has("image"), false);
  });

  it("names the first bad field", () => {
    const problem = (over: Partial<SettingsInput>) => {
      const r = parseSettings({ ...input, ...over });
      assert.equal(r.ok, false);
      return r.ok ? null : r.problem;
    };
    assert.deepEqual(problem({ prompt: "  " }), { field: "prompt", message: "Prompt: enter a prompt" });
    assert.equal(problem({ width: "" })?.field, "width");
    assert.equal(problem({ width: "12.5" })?.field, "width");
    assert.equal(problem({ steps: "0" })?.field, "steps");
    assert.equal(problem({ guidanceScale: "-1" })?.field, "guidanceScale");
    assert.equal(problem({ seed: "-3" })?.field, "seed");
    assert.equal(problem({ seed: "9007199254740992" })?.field, "seed");
    assert.equal(problem({ n: "0" })?.field, "n");
    assert.equal(problem({ model: "" })?.field, "model");
    assert.equal(problem({ mode: "edit", strength: "1.5" })?.field, "strength");
    // 0 would keep the source unchanged, and the server refuses it.
    assert.deepEqual(problem({ mode: "edit", strength: "0" }), { field: "strength", message: "Strength must be a number greater than 0 and at most 1 (e.g. 0.75)" });
    assert.equal(problem({ mode: "edit", strength: "0.0" })?.field, "strength");
    assert.equal(problem({ mode: "edit", strength: "" })?.field, "strength");
    assert.equal(settings({ mode: "edit", strength: "0.01" }).strength, 0.01);
    assert.equal(settings({ mode: "edit", strength: "1" }).strength, 1);
    // Strength only matters in Edit mode.
    assert.equal(parseSettings({ ...input, strength: "x" }).ok, true);
  });

  it("round-trips settings through the form text, leaving the mode as it is", () => {
    const s = settings({ mode: "edit", strength: "0.4", seed: "123", guidanceScale: "4", negativePrompt: "dark" });
    const values = reuseInput(s);
    assert.equal(values.mode, undefined);
    assert.deepEqual(settings({ ...values, mode: "edit" }), s);
  });

  it("leaves Strength alone when reusing a generation", () => {
    const s = settings({ strength: "0.3" });
    assert.equal(s.strength, null);
    const values = reuseInput(s);
    assert.equal("strength" in values, false);
    assert.equal(values.prompt, "three cats");
    // The user's strength survives: Edit mode then runs with it.
    assert.equal(settings({ ...input, strength: "0.3", ...values, mode: "edit" }).strength, 0.3);
  });

  it("asks without stream, stream_progress and partial_images when the servable cannot stream", () => {
    const body = generationBody(settings({ seed: "5" }), { stream: false });
    assert.deepEqual(body, {
      model: "demo", prompt: "three cats", size: "512x384", n: 1, num_inference_steps: 20, guidance_scale: 7.5,
      response_format: "b64_json", rng_seed: 5,
    });
    const fields = new Map(editFields(settings({ mode: "edit", strength: "0.5" }), { stream: false }));
    assert.equal(fields.has("stream"), false);
    assert.equal(fields.has("stream_progress"), false);
    assert.equal(fields.has("partial_images"), false);
    assert.equal(fields.get("strength"), "0.5");
  });

  it("maps the server's param to the form field to focus", () => {
    assert.equal(fieldOfParam("size"), "width");
    assert.equal(fieldOfParam("num_inference_steps"), "steps");
    assert.equal(fieldOfParam("negative_prompt"), "negativePrompt");
    assert.equal(fieldOfParam("image[0]"), "image");
    assert.equal(fieldOfParam("mask"), "mask");
    assert.equal(fieldOfParam("stream"), null);
  });

  it("names downloads after model, seed and position", () => {
    assert.equal(resultFileName("demo", 1234, 0, "png"), "demo-seed1234-1.png");
    assert.equal(resultFileName("org/sd turbo", 5, 1, "jpeg"), "org_sd_turbo-seed5-2.jpg");
    assert.equal(resultFileName("x", null, 0, "webp"), "x-seedunknown-1.webp");
  });

  it("rounds a source image down to multiples of 8", () => {
    assert.deepEqual(editSizeFor(1000, 751), { width: 1000, height: 744 });
    assert.deepEqual(editSizeFor(5, 17), { width: 8, height: 16 });
  });
});
