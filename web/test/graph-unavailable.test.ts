import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError } from "../src/api.js";
import { graphUnavailable } from "../src/graph-unavailable.js";

describe("a graph the server no longer serves", () => {
  it("tells a retired servable from an unknown name, in the graph view's words", () => {
    const retired = graphUnavailable("flow", new ApiError("The selected model is not served here (any more)", 404, null, "Mediapipe is retired"));
    assert.equal(retired?.state, "retired");
    assert.match(retired!.text, /^flow is no longer served: it was retired/);
    const unknown = graphUnavailable("nope", new ApiError("…", 404, null, "Mediapipe graph definition with requested name is not found"));
    assert.equal(unknown?.state, "not found");
    assert.match(unknown!.text, /no graph named nope/);
    // Never the playground's advice.
    assert.doesNotMatch(retired!.text + unknown!.text, /pick another model|reload the page/);
  });

  it("says a servable failed to load, as errors.ts worded it", () => {
    const failed = graphUnavailable("broken", new ApiError("broken failed to load: unknown calculator Foo", 503, null, "…", "model_failed"));
    assert.deepEqual(failed, { state: "failed to load", text: "broken failed to load: unknown calculator Foo." });
  });

  it("leaves other failures to the usual wording", () => {
    assert.equal(graphUnavailable("x", new ApiError("busy", 503)), null);
    assert.equal(graphUnavailable("x", new ApiError("still loading", 503, null, "Mediapipe is not loaded yet")), null);
    assert.equal(graphUnavailable("x", new ApiError("down", null)), null);
    assert.equal(graphUnavailable("x", new Error("404")), null);
  });
});
