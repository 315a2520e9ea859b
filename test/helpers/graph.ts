/** Builds runnable graphs for the engine tests from pbtxt text, as the server loads them. */
import type { CalculatorRegistry } from "../../src/engine/registry.js";
import { parseGraphText } from "../../src/graph/load.js";
import { validateGraph } from "../../src/graph/validate.js";
import type { ValidatedGraph } from "../../src/graph/validated.js";

export function buildGraph(text: string, registry: CalculatorRegistry, file = "test.pbtxt"): ValidatedGraph {
  return validateGraph(parseGraphText(text, file, registry.schema), registry);
}
