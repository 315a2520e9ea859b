import { Calculator, type CalculatorContext, type CalculatorContract } from "graphserve";

interface PromptStyleOptions {
  template: string;
  negative_prompt: string;
}

interface Prompt {
  prompt: string;
  negative_prompt?: string;
}

/** Wraps every prompt in a house style before it reaches the image generator. */
export class PromptStyleCalculator extends Calculator<PromptStyleOptions> {
  static override readonly contract: CalculatorContract = {
    inputs: { PROMPT: { type: "Prompt" } },
    outputs: { PROMPT: { type: "Prompt" } },
    options: "example.PromptStyleOptions",
    validate: (node) =>
      (node.options as PromptStyleOptions).template.includes("{prompt}") ? undefined : 'template must contain "{prompt}"',
  };

  override process(ctx: CalculatorContext<PromptStyleOptions>): void {
    const input = ctx.inputs.value<Prompt>("PROMPT");
    if (input === undefined) return;
    const { template, negative_prompt } = ctx.options;
    const negative = [input.negative_prompt, negative_prompt].filter(Boolean).join(", ");
    ctx.outputs.add("PROMPT", {
      prompt: template.replaceAll("{prompt}", input.prompt),
      ...(negative ? { negative_prompt: negative } : {}),
    } satisfies Prompt);
  }
}
