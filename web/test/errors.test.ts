import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cleanMessage, describeHttpFailure, describeStreamError, parseErrorBody, retryAfterSeconds } from "../src/errors.js";

/** OVMS's text for a calculator's error, and graphserve's: the reason first, then OVMS's text. */
const ovmsWrapped = (msg: string) =>
  `Mediapipe execution failed. MP status - INVALID_ARGUMENT: CalculatorGraph::Run() failed: \nCalculator::Process() for node "ImageGenExecutor" failed: ${msg}`;
const wrapped = (msg: string) => `${msg}\n${ovmsWrapped(msg)}`;
const failure = (status: number, message: string, param: string | null = null, extra: { code?: string; retryAfter?: string } = {}) =>
  describeHttpFailure({ status, error: { message, type: "invalid_request_error", param, code: extra.code ?? null }, retryAfter: extra.retryAfter ?? null });

describe("error wording", () => {
  it("reads OpenAI's error shape and OVMS's plain one, and refuses other bodies", () => {
    assert.deepEqual(parseErrorBody('{"error":{"message":"m","type":"t","param":"size","code":null}}'), { message: "m", type: "t", param: "size", code: null });
    assert.deepEqual(parseErrorBody('{"error":"Mediapipe is retired"}'), { message: "Mediapipe is retired" });
    assert.equal(parseErrorBody("<html>Bad gateway</html>"), null);
    assert.equal(parseErrorBody('{"detail":"x"}'), null);
  });

  it("strips MediaPipe's wrapping", () => {
    assert.equal(cleanMessage(wrapped("num_inference_steps must be higher than 0")), "num_inference_steps must be higher than 0");
    assert.equal(cleanMessage(ovmsWrapped("num_inference_steps must be higher than 0")), "num_inference_steps must be higher than 0");
    assert.equal(
      cleanMessage("Inpainting pipeline is not available for this model\nMediapipe graph precondition failed - FAILED_PRECONDITION: CalculatorGraph::Run() failed: \nCalculator::Process() for node \"ImageGenExecutor\" failed: Inpainting pipeline is not available for this model"),
      "Inpainting pipeline is not available for this model",
    );
    assert.equal(cleanMessage("Mediapipe graph precondition failed - FAILED_PRECONDITION: Inpainting pipeline is not available for this model"), "Inpainting pipeline is not available for this model");
  });

  it("names the field and the limit for 400s", () => {
    assert.equal(failure(400, wrapped("requested resolution 4000x4000 exceeds maxResolution: 1024x1024"), "size"), "Size 4000x4000 is larger than this model allows (max 1024x1024)");
    assert.equal(failure(400, wrapped("size 65x64 is not supported by this model: width and height must be multiples of 8"), "size"), "Size 65x64 is not supported: Width and Height must be multiples of 8");
    assert.equal(failure(400, wrapped("num_inference_steps is greater than maxNumInferenceSteps: 500"), "num_inference_steps"), "Steps: this model allows at most 500");
    assert.equal(failure(400, wrapped("num_images_per_prompt/n is greater than maxNumImagesPerPrompt: 4"), "n"), "Images: this model makes at most 4 per request");
    assert.equal(failure(400, wrapped("num_inference_steps must be higher than 0"), "num_inference_steps"), "Steps must be greater than 0");
    assert.equal(failure(400, wrapped("strength is greater than maxStrength: 1"), "strength"), "Strength must be greater than 0 and at most 1");
    assert.equal(failure(400, wrapped("strength is less than minStrength: 0"), "strength"), "Strength must be greater than 0 and at most 1");
    assert.equal(failure(400, "guidance_scale field is not a float", "guidance_scale"), "Guidance scale must be a number");
    assert.equal(failure(400, wrapped("Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead."), "prompt"), "Prompt: enter a prompt");
    assert.equal(
      failure(400, wrapped("Invalid 'negative_prompt': string too long. Expected a string with maximum length 32000, but got a string with length 32001 instead."), "negative_prompt"),
      "Negative prompt: at most 32000 characters",
    );
    assert.equal(failure(400, "Unhandled parameter: stream_progress", "stream_progress"), 'This server does not accept "stream_progress" (is it an older graphserve?)');
    // Unknown message with a param: the field's label, then the server's words.
    assert.equal(failure(400, wrapped("rng_seed must be an integer in [0, 2^53), got -1"), "rng_seed"), "Seed: rng_seed must be an integer in [0, 2^53), got -1");
    assert.equal(failure(400, "the answer would hold 9 images", "image[0]"), "Source image: the answer would hold 9 images");
  });

  it("explains auth, missing models, preconditions, size limits and busy servers", () => {
    assert.match(failure(401, "Unauthorized request due to invalid or missing api-key", null, { code: "invalid_api_key" }), /API key is missing or wrong/);
    assert.match(failure(404, "Mediapipe graph definition with requested name is not found", "model", { code: "model_not_found" }), /selected model is not served here/);
    assert.equal(failure(412, "Inpainting pipeline is not available for this model"), "This model cannot do inpainting (editing with a mask): clear the mask to edit the whole image");
    assert.equal(failure(413, "Request body is larger than the server's limit of 1048576 bytes"), "The upload is too large: the server accepts at most 1 MB");
    assert.equal(failure(429, 'Servable "demo" is at capacity', null, { retryAfter: "3" }), "The server is busy (every generation slot and queue place is taken): try again in 3 s");
    assert.equal(failure(429, "busy"), "The server is busy (every generation slot and queue place is taken): try again in a moment");
    assert.equal(failure(503, "Mediapipe is not loaded yet", null, { retryAfter: "1" }), "The model is still loading: try again in 1 s");
  });

  it("says a servable failed to load, with the reason, when retrying will not help", () => {
    const failed = (message: string, headers: { shouldRetry?: string; code?: string; model?: string }) =>
      describeHttpFailure({ status: 503, error: { message, type: "server_error", param: null, code: headers.code ?? null }, shouldRetry: headers.shouldRetry ?? null, model: headers.model });
    assert.equal(
      failed('Servable "sd" failed to load: model.onnx is missing in /models/sd/unet.', { shouldRetry: "false", code: "model_failed", model: "sd" }),
      "sd failed to load: model.onnx is missing in /models/sd/unet",
    );
    // The server's own shape (src/server/servable-errors.ts): OVMS's text first, then the reason.
    assert.equal(
      failed('Mediapipe is not loaded yet - servable "broken" failed to load: ValidatedGraphConfig Initialization failed.\ngraph.pbtxt:1:8: Unable to find Calculator "NoSuchCalculator"', { shouldRetry: "false", code: "model_failed", model: "broken" }),
      'broken failed to load: ValidatedGraphConfig Initialization failed.\ngraph.pbtxt:1:8: Unable to find Calculator "NoSuchCalculator"',
    );
    // The code alone is enough; so is the header alone, the message then being the reason.
    assert.equal(failed("graph.pbtxt: unknown calculator Foo", { code: "model_failed", model: "x" }), "x failed to load: graph.pbtxt: unknown calculator Foo");
    assert.equal(failed("unet: out of memory", { shouldRetry: "false" }), "The model failed to load: unet: out of memory");
    // Today's server: the header without a reason.
    assert.equal(failed("Mediapipe is not loaded yet", { shouldRetry: "false", model: "sd" }), "sd failed to load: the server gave no reason; its log has it");
    // Still loading (retrying helps): not a failure.
    assert.equal(
      describeHttpFailure({ status: 503, error: { message: "Mediapipe is not loaded yet" }, retryAfter: "1", model: "sd" }),
      "sd is still loading: try again in 1 s",
    );
  });

  it("words 5xx and bodies that are not OpenAI's shape without dumping them", () => {
    assert.equal(failure(500, "Internal server error: boom"), "The server failed: Internal server error: boom");
    assert.equal(describeHttpFailure({ status: 502, statusText: "Bad Gateway", error: null }), "The server failed (502 Bad Gateway): try again, and check the server's log if it keeps failing");
    assert.equal(describeHttpFailure({ status: 418, error: null }), "The server refused the request (418)");
  });

  it("reads Retry-After as seconds or an HTTP date", () => {
    assert.equal(retryAfterSeconds("7"), 7);
    assert.equal(retryAfterSeconds(new Date(10_000 + 4_500).toUTCString(), 10_000), 4);
    assert.equal(retryAfterSeconds("soon"), null);
    assert.equal(retryAfterSeconds(null), null);
  });

  it("words stream error events", () => {
    assert.equal(describeStreamError('{"error":{"message":"Internal server error: onnx failed","type":"server_error","param":null,"code":null}}'), "The generation failed: Internal server error: onnx failed");
    assert.equal(describeStreamError("not json"), "The generation failed: the server sent an error it did not explain");
  });
});
