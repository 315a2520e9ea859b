import { test } from "node:test";
import assert from "node:assert/strict";
import { Schema } from "../src/graph/schema.js";

test("the built-in schema knows the graph and option messages", () => {
  const schema = new Schema();
  assert.ok(schema.findType("mediapipe.CalculatorGraphConfig"));
  const ext = schema.findExtension("mediapipe.ImageGenCalculatorOptions.ext");
  assert.equal(ext?.id, 116423751);
  assert.equal(schema.typeOfAnyUrl("type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions")?.fullName, ".mediapipe.FlowLimiterCalculatorOptions");
  assert.equal(schema.findType("mediapipe.Nope"), undefined);
});
