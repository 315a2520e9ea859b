/**
 * The T5 text encoder SD3 and FLUX share: prompts padded or cut to the
 * request's max_sequence_length, encoded without an attention mask (pad
 * positions are encoded too, as diffusers does), last hidden state read.
 */
import type * as ort from "onnxruntime-node";
import { BackendError, type GenerationRequest } from "../../types.js";
import { idsTensor } from "../sessions.js";
import type { PromptTokenizer } from "../tokenizer.js";
import type { EncodeContext, TextEncoder } from "./types.js";

/** diffusers raises above this T5 length for FLUX and SD3. */
export const MAX_T5_SEQUENCE_LENGTH = 512;

/** A T5 length the request may ask for: 1..512. */
export function checkMaxSequenceLength(req: GenerationRequest): void {
  const L = req.maxSequenceLength;
  if (L !== undefined && !(Number.isInteger(L) && L >= 1 && L <= MAX_T5_SEQUENCE_LENGTH)) {
    throw new BackendError(`max_sequence_length must be an integer from 1 to ${MAX_T5_SEQUENCE_LENGTH}, got ${L}`, { param: "max_sequence_length" });
  }
}

/** T5's hidden states of `prompts` at the request's length: [prompts, L, width]. */
export async function encodeT5(ctx: EncodeContext, encoder: TextEncoder, tokenizer: PromptTokenizer, prompts: readonly string[]): Promise<ort.Tensor> {
  const ids = prompts.map((p) => tokenizer.encode(p, ctx.maxSequenceLength));
  return (await ctx.run(encoder.session, { input_ids: idsTensor(ids, encoder.idsDtype) }))[encoder.hiddenOutput] as ort.Tensor;
}
