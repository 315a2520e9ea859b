/**
 * Token ids against transformers: for every tokenizer folder in test/fixtures/conformance/tokens.json
 * (hub-format folders, SD 2.x's "!" pad token included, and every exported folder), graphserve's
 * CLIP tokenizer gives exactly the input_ids diffusers gets from CLIPTokenizer (padded and
 * truncated to model_max_length).
 */
import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadClipTokenizer, loadT5Tokenizer } from "../src/backends/onnx/tokenizer.js";

const ROOT = join(import.meta.dirname, "..", "..", "test", "fixtures", "conformance");
const TOKENS = join(ROOT, "tokens.json");

interface TokenGoldens {
  prompts: string[];
  tokenizers: Record<string, { pad_id: number; bos_id: number; eos_id: number; model_max_length: number; ids: number[][] }>;
}

describe("conformance: token ids equal transformers' CLIPTokenizer", { skip: !existsSync(TOKENS) && "no tokens.json yet" }, () => {
  const golden = existsSync(TOKENS) ? (JSON.parse(readFileSync(TOKENS, "utf8")) as TokenGoldens) : { prompts: [], tokenizers: {} };
  for (const [folder, want] of Object.entries(golden.tokenizers)) {
    it(folder, async () => {
      const tok = await loadClipTokenizer(join(ROOT, folder));
      assert.deepEqual({ pad: tok.padId, bos: tok.bosId, eos: tok.eosId, max: tok.maxLength }, { pad: want.pad_id, bos: want.bos_id, eos: want.eos_id, max: want.model_max_length });
      golden.prompts.forEach((p, i) => assert.deepEqual(Array.from(tok.encode(p)), want.ids[i], `prompt ${i} ${JSON.stringify(p.slice(0, 40))}`));
    });
  }
});

interface T5Goldens {
  prompts: string[];
  tokenizers: Record<string, { pad_id: number; eos_id: number; model_max_length: number; ids: Record<string, number[][]> }>;
}

const T5_TOKENS = join(ROOT, "t5-tokens.json");

/** T5 (FLUX's tokenizer_2, SD3's tokenizer_3) against T5TokenizerFast, at the lengths max_sequence_length takes: ids stored unpadded. */
describe("conformance: token ids equal transformers' T5TokenizerFast", { skip: !existsSync(T5_TOKENS) && "no t5-tokens.json" }, () => {
  const golden = existsSync(T5_TOKENS) ? (JSON.parse(readFileSync(T5_TOKENS, "utf8")) as T5Goldens) : { prompts: [], tokenizers: {} };
  for (const [folder, want] of Object.entries(golden.tokenizers)) {
    it(folder, async () => {
      const tok = await loadT5Tokenizer(join(ROOT, folder));
      assert.deepEqual({ pad: tok.padId, eos: tok.eosId, max: tok.maxLength }, { pad: want.pad_id, eos: want.eos_id, max: want.model_max_length });
      for (const [length, ids] of Object.entries(want.ids)) {
        const L = Number(length);
        golden.prompts.forEach((p, i) => {
          const padded = [...ids[i], ...new Array<number>(L - ids[i].length).fill(want.pad_id)];
          assert.deepEqual(Array.from(tok.encode(p, L)), padded, `L ${L}, prompt ${i} ${JSON.stringify(p.slice(0, 40))}`);
        });
      }
    });
  }
});
