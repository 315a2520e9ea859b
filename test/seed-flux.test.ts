/**
 * The seed's own model family: OVMS's image-generation demo serves
 * black-forest-labs/FLUX.1-schnell. graphserve serves a real Optimum export of a
 * FLUX.1-schnell-shaped pipeline (tiny random weights, test/fixtures/conformance)
 * under that name and answers the demo's requests verbatim but for the host:
 * its model status check and its curl (2 steps, 512x512). The demo's Python
 * snippet runs in seed-client.test.ts.
 */
import { strict as assert } from "node:assert";
import { join } from "node:path";
import { describe, it } from "node:test";
import { decodeImage } from "../calculators/image-gen/codec.js";
import { ROOT, startConfiguredServer } from "./helpers/demo-server.js";

const MODEL = "black-forest-labs/FLUX.1-schnell";
const FLUX_SCHNELL = join(ROOT, "test/fixtures/conformance/flux-schnell/optimum-onnx-fp32");

describe("the OVMS demo's FLUX.1-schnell requests", () => {
  it("model status, then the curl: three cats, 2 steps, 512x512", { timeout: 120_000 }, async (t) => {
    const server = await startConfiguredServer(t, ["--model_name", MODEL, "--model_path", FLUX_SCHNELL]);
    const config = (await (await fetch(`${server.url}/v1/config`)).json()) as Record<string, { model_version_status: { state: string; status: { error_code: string } }[] }>;
    assert.equal(config[MODEL].model_version_status[0].state, "AVAILABLE");
    assert.equal(config[MODEL].model_version_status[0].status.error_code, "OK");

    const res = await fetch(`${server.url}/v3/images/generations`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: `{
    "model": "black-forest-labs/FLUX.1-schnell",
    "prompt": "three cats",
    "num_inference_steps": 2,
    "size": "512x512"
  }`,
    });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { data: { b64_json: string }[] };
    assert.equal(body.data.length, 1);
    const png = Buffer.from(body.data[0].b64_json, "base64");
    assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
    const image = await decodeImage(png, "b64_json", { maxPixels: 4096 * 4096 });
    assert.equal(`${image.width}x${image.height}`, "512x512");
    // The model list names it as the demo's clients expect.
    const models = (await (await fetch(`${server.url}/v3/models`)).json()) as { data: { id: string }[] };
    assert.ok(models.data.some((m) => m.id === MODEL));
  });
});
