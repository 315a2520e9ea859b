/**
 * OVMS's ImageGenCalculator: one HTTP request payload in, one response body
 * out, with the pipelines shared through the IMAGE_GEN_NODE_RESOURCES side
 * packet. This declares the contract and the load-time option rules; request
 * handling arrives with the image-generation backends.
 */
import { Calculator, type CalculatorContext, type CalculatorContract, type NodeShape } from "../src/index.js";
import { checkImageGenOptions, type ImageGenCalculatorOptions, type ImageGenSettings } from "./image-gen/options.js";

export class ImageGenCalculator extends Calculator<ImageGenCalculatorOptions> {
  static override readonly contract: CalculatorContract = {
    inputs: { HTTP_REQUEST_PAYLOAD: {} },
    outputs: { HTTP_RESPONSE_PAYLOAD: {} },
    inputSidePackets: { IMAGE_GEN_NODE_RESOURCES: {} },
    options: "mediapipe.ImageGenCalculatorOptions",
    optionsRequired: true,
    validate(node: NodeShape<ImageGenCalculatorOptions>): string | undefined {
      try {
        checkImageGenOptions(node.options);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    },
  };

  private settings: ImageGenSettings | undefined;

  override open(ctx: CalculatorContext<ImageGenCalculatorOptions>): void {
    this.settings = checkImageGenOptions(ctx.options);
  }

  override process(ctx: CalculatorContext<ImageGenCalculatorOptions>): void {
    throw new Error(
      `node "${ctx.nodeName}" (models_path "${this.settings?.modelsPath}"): image generation is not available yet in this build`,
    );
  }
}
