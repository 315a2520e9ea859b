import { Calculator, type CalculatorContext, type CalculatorContract } from "graphserve";
import { CalculatorRegistry, GraphPool, parseGraphText, validateGraph } from "graphserve/engine";

/** Upper-cases every string packet. */
export class ShoutCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { inputs: { "": {} }, outputs: { "": {} } };
  override process(ctx: CalculatorContext): void {
    ctx.outputs.add(0, String(ctx.inputs.value(0)).toUpperCase());
  }
}

const GRAPH = `
  input_stream: "in"
  output_stream: "out"
  node { calculator: "ShoutCalculator" input_stream: "in" output_stream: "out" }
`;

/** Runs the graph once per call, as a server would per request. */
export async function shout(texts: readonly string[]): Promise<string[]> {
  const registry = await CalculatorRegistry.withBuiltins();
  registry.register(ShoutCalculator, import.meta.url);
  const graph = validateGraph(parseGraphText(GRAPH, "shout.pbtxt", registry.schema), registry);
  const pool = new GraphPool(graph);
  try {
    const outputs = await Promise.all(texts.map((text) => pool.run({ in: text })));
    return outputs.map((o) => o.out[0].value as string);
  } finally {
    await pool.close(); // ends the graph's worker pools, if it has any
  }
}
