import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { doneText, interpretEvent, interpretUnaryAnswer, ProgressTracker, progressText } from "../src/image-events.js";

const msg = (event: string, data: unknown) => ({ event, data: typeof data === "string" ? data : JSON.stringify(data), id: "" });

describe("stream events", () => {
  it("reads progress, partial and completed events of generations and edits", () => {
    assert.deepEqual(interpretEvent(msg("image_generation.progress", { type: "image_generation.progress", step: 3, num_inference_steps: 20, image_index: 1 })), {
      kind: "progress", step: 3, steps: 20, imageIndex: 1,
    });
    assert.deepEqual(interpretEvent(msg("image_edit.partial_image", { type: "image_edit.partial_image", b64_json: "QQ==", partial_image_index: 2, output_format: "webp" })), {
      kind: "partial", b64: "QQ==", format: "webp", imageIndex: 0, partialIndex: 2,
    });
    assert.deepEqual(interpretEvent(msg("image_generation.completed", { type: "image_generation.completed", b64_json: "QQ==", rng_seed: 99, size: "64x64", image_index: 1 })), {
      kind: "completed", b64: "QQ==", format: "png", imageIndex: 1, seed: 99, size: "64x64",
    });
  });

  it("falls back to the JSON type when the event has no name", () => {
    assert.equal(interpretEvent(msg("message", { type: "image_generation.progress", step: 1, num_inference_steps: 2 })).kind, "progress");
  });

  it("turns error events and error payloads into readable errors", () => {
    const body = { error: { message: "Internal server error: out of memory", type: "server_error", param: null, code: null } };
    assert.deepEqual(interpretEvent(msg("error", body)), { kind: "error", message: "The generation failed: Internal server error: out of memory" });
    assert.deepEqual(interpretEvent(msg("message", body)), { kind: "error", message: "The generation failed: Internal server error: out of memory" });
    assert.equal(interpretEvent(msg("image_generation.completed", "{not json")).kind, "error");
    assert.equal(interpretEvent(msg("image_generation.completed", { type: "image_generation.completed" })).kind, "error");
  });

  it("ignores [DONE] and unknown events", () => {
    assert.equal(interpretEvent(msg("message", "[DONE]")).kind, "other");
    assert.equal(interpretEvent(msg("response.created", { type: "response.created" })).kind, "other");
    assert.equal(interpretEvent(msg("image_generation.progress", { step: 1 })).kind, "other");
  });

  it("words the status line", () => {
    assert.equal(progressText(3, 20, 0, 1), "Step 3 of 20");
    assert.equal(progressText(3, 20, 1, 3), "Step 3 of 20 (image 2 of 3)");
    assert.equal(progressText(3, 20, null, 3), "Step 3 of 20 (3 images)");
    assert.equal(progressText(3, 20, "batch", 3), "Step 3 of 20 (all 3 images)");
    assert.equal(doneText(1234, 42), "Done in 1.2 s (seed 42)");
    assert.equal(doneText(65_400, null), "Done in 65 s");
  });

  it("tells batched images from images made one after another", () => {
    // The first event cannot tell: no image is named yet.
    const seq = new ProgressTracker(2);
    assert.equal(seq.text({ step: 1, steps: 2, imageIndex: 0 }), "Step 1 of 2 (2 images)");
    assert.equal(seq.text({ step: 2, steps: 2, imageIndex: 0 }), "Step 2 of 2 (image 1 of 2)");
    assert.equal(seq.text({ step: 1, steps: 2, imageIndex: 1 }), "Step 1 of 2 (image 2 of 2)");
    const batch = new ProgressTracker(2);
    assert.equal(batch.text({ step: 1, steps: 2, imageIndex: 0 }), "Step 1 of 2 (2 images)");
    assert.equal(batch.text({ step: 1, steps: 2, imageIndex: 1 }), "Step 1 of 2 (all 2 images)");
    assert.equal(batch.text({ step: 2, steps: 2, imageIndex: 0 }), "Step 2 of 2 (all 2 images)");
  });

  it("reads a unary answer's images, and tells other JSON apart", () => {
    assert.deepEqual(interpretUnaryAnswer({ created: 1, data: [{ b64_json: "QQ==" }, { b64_json: "Qg==" }], output_format: "webp", size: "64x64", rng_seed: 7 }), [
      { b64: "QQ==", format: "webp", imageIndex: 0, seed: 7, size: "64x64" },
      { b64: "Qg==", format: "webp", imageIndex: 1, seed: 7, size: "64x64" },
    ]);
    assert.deepEqual(interpretUnaryAnswer({ data: [{ b64_json: "QQ==" }] }), [{ b64: "QQ==", format: "png", imageIndex: 0, seed: null, size: null }]);
    // An echo servable's answer is the request itself.
    assert.equal(interpretUnaryAnswer({ model: "echo", prompt: "x", stream: true }), null);
    assert.equal(interpretUnaryAnswer({ data: [] }), null);
    assert.equal(interpretUnaryAnswer({ data: [{ url: "https://x" }] }), null);
    assert.equal(interpretUnaryAnswer(null), null);
    assert.equal(interpretUnaryAnswer("text"), null);
  });
});
