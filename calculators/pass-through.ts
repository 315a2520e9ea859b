/**
 * MediaPipe's PassThroughCalculator: every input stream is copied to the
 * output stream with the same tag and index, every input side packet to the
 * output side packet with the same tag and index. Timestamp offset 0, so
 * bounds flow through even when an input carries nothing.
 */
import { Calculator, STOP, type CalculatorContext, type CalculatorContract, type NodeShape, type Port, type ProcessResult } from "../src/index.js";

function mirrors(inputs: readonly Port[], outputs: readonly Port[]): boolean {
  if (inputs.length !== outputs.length) return false;
  const keys = new Set(outputs.map((p) => `${p.tag}:${p.index}`));
  return inputs.every((p) => keys.has(`${p.tag}:${p.index}`));
}

export class PassThroughCalculator extends Calculator {
  static override readonly contract: CalculatorContract = {
    inputs: "any",
    outputs: "any",
    inputSidePackets: "any",
    outputSidePackets: "any",
    timestampOffset: 0,
    validate(node: NodeShape): string | undefined {
      if (!mirrors(node.inputs, node.outputs)) {
        return "PassThroughCalculator needs one output stream per input stream, with the same tag and index.";
      }
      if (!mirrors(node.inputSidePackets, node.outputSidePackets)) {
        return "PassThroughCalculator needs one output side packet per input side packet, with the same tag and index.";
      }
      return undefined;
    },
  };

  override open(ctx: CalculatorContext): void {
    for (const port of ctx.inputSidePackets.ports) {
      if (ctx.inputSidePackets.has(port.key)) ctx.outputSidePackets.set(port.key, ctx.inputSidePackets.get(port.key));
    }
  }

  override process(ctx: CalculatorContext): ProcessResult {
    // Only side packets: a source with nothing to emit, so it stops at once.
    if (ctx.inputs.ports.length === 0) return STOP;
    // Flat port order is the same on both sides (same tags and indexes), so
    // the key of input i names output i.
    const ports = ctx.inputs.ports;
    for (let i = 0; i < ports.length; i++) {
      const key = ports[i].key;
      const packet = ctx.inputs.packet(key);
      if (packet !== undefined) ctx.outputs.add(key, packet.value, packet.timestamp);
    }
    return undefined;
  }
}
