/**
 * Base64EncoderCalculator: encodes the images ImageGenCalculator sends on
 * IMAGES (PNG, JPEG or WebP as the request asked), base64s them and writes
 * the OpenAI-shaped JSON answer. It prefers the worker pool, so encoding
 * megapixel images never holds up the event loop that serves other requests.
 */
import { Calculator, type CalculatorContext, type CalculatorContract } from "../src/index.js";
import { encodeResponse, type GeneratedImages } from "./image-gen/response.js";

export class Base64EncoderCalculator extends Calculator {
  static override readonly contract: CalculatorContract = {
    inputs: { IMAGES: { type: "GeneratedImages" } },
    outputs: { HTTP_RESPONSE_PAYLOAD: {} },
    executor: "worker",
    timestampOffset: 0,
  };

  override async process(ctx: CalculatorContext): Promise<void> {
    const images = ctx.inputs.value<GeneratedImages>("IMAGES");
    if (images === undefined) return;
    ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", await encodeResponse(images));
  }
}
