import { Calculator, type CalculatorContext, type CalculatorContract } from "graphserve";

interface PromptStyleOptions {
  template: string;
  negative_prompt: string;
}

/** An Images API request body, as HttpInputCalculator sends it on JSON. */
type ImageRequest = Record<string, unknown>;

/** Rewrites every generation's prompt in a house style before it reaches the image generator. */
export class PromptStyleCalculator extends Calculator<PromptStyleOptions> {
  static override readonly contract: CalculatorContract = {
    inputs: { JSON: {} },
    outputs: { JSON: {} },
    options: "example.PromptStyleOptions",
    validate: (node) =>
      (node.options as PromptStyleOptions).template.includes("{prompt}") ? undefined : 'template must contain "{prompt}"',
  };

  override process(ctx: CalculatorContext<PromptStyleOptions>): void {
    const request = ctx.inputs.value<ImageRequest>("JSON");
    if (request === undefined) return;
    const { prompt, negative_prompt: theirs } = request;
    // A malformed prompt goes on unchanged: the image generator refuses it with its own message.
    if (typeof prompt !== "string" || (theirs !== undefined && typeof theirs !== "string")) {
      ctx.outputs.add("JSON", request);
      return;
    }
    const { template, negative_prompt } = ctx.options;
    const negative = [theirs, negative_prompt].filter(Boolean).join(", ");
    ctx.outputs.add("JSON", {
      ...request,
      prompt: template.replaceAll("{prompt}", prompt),
      ...(negative ? { negative_prompt: negative } : {}),
    });
  }
}
