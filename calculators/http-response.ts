/**
 * HttpJsonResponseCalculator: turns any JSON-serialisable value on JSON into
 * an HTTP_RESPONSE_PAYLOAD packet, which the server sends as a 200
 * application/json body.
 */
import { Calculator, type CalculatorContext, type CalculatorContract } from "../src/index.js";

export class HttpJsonResponseCalculator extends Calculator {
  static override readonly contract: CalculatorContract = {
    inputs: { JSON: {} },
    outputs: { HTTP_RESPONSE_PAYLOAD: {} },
    timestampOffset: 0,
  };

  override process(ctx: CalculatorContext): void {
    const packet = ctx.inputs.packet("JSON");
    if (packet === undefined) return;
    ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", JSON.stringify(packet.value));
  }
}
