import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { Tokenizer } from "@huggingface/tokenizers";
import { loadClipTokenizer, type ClipTokenizer } from "../src/backends/onnx/tokenizer.js";

const dir = await mkdtemp(join(tmpdir(), "graphserve-tok-"));
await makeTinyModel(join(dir, "sd"), { family: "sd", seed: 1 });
await makeTinyModel(join(dir, "sdxl"), { family: "sdxl", seed: 1 });
const vocab = JSON.parse(await readFile(join(dir, "sd/tokenizer/vocab.json"), "utf8")) as Record<string, number>;
const tokenOf = new Map(Object.entries(vocab).map(([t, id]) => [id, t]));

test("a CLIP BPE tokenizer from vocab.json + merges.txt: lower-cased words, </w> ends, start/end tokens, padding", async () => {
  const tok = await loadClipTokenizer(join(dir, "sd/tokenizer"));
  assert.equal(tok.maxLength, 77);
  const ids = tok.encode("A  Photo of a CAT!");
  assert.equal(ids.length, 77);
  const end = ids.indexOf(tok.eosId);
  const tokens = Array.from(ids.slice(0, end + 1), (id) => tokenOf.get(id));
  assert.deepEqual(tokens, ["<|startoftext|>", "a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>", "!</w>", "<|endoftext|>"]);
  assert.ok(ids.slice(end + 1).every((id) => id === tok.padId), "padded to 77");
  assert.equal(tok.padId, tok.eosId, "SD 1.x pads with the end-of-text token");
});

test("SDXL's second tokenizer pads with '!' as its tokenizer_config says", async () => {
  const tok = await loadClipTokenizer(join(dir, "sdxl/tokenizer_2"));
  const vocab2 = JSON.parse(await readFile(join(dir, "sdxl/tokenizer_2/vocab.json"), "utf8")) as Record<string, number>;
  assert.equal(tok.padId, vocab2["!"]);
  assert.notEqual(tok.padId, tok.eosId);
  assert.equal(tok.encode("cat")[3], tok.padId);
});

test("an over-long prompt is cut to 77 tokens and still ends with the end-of-text token", async () => {
  const tok = await loadClipTokenizer(join(dir, "sd/tokenizer"));
  const ids = tok.encode("cat ".repeat(200));
  assert.equal(ids.length, 77);
  assert.equal(ids[0], tok.bosId);
  assert.equal(ids[76], tok.eosId);
  assert.equal(tokenOf.get(ids[75]), "cat</w>");
});

test("a broken tokenizer folder names the file and the problem", async () => {
  const broken = join(dir, "broken");
  await makeTinyModel(broken, { family: "sd", seed: 2 });
  await rm(join(broken, "tokenizer/merges.txt"));
  await assert.rejects(loadClipTokenizer(join(broken, "tokenizer")), /tokenizer\/merges\.txt: cannot read the tokenizer file \(ENOENT\)/);
  await writeFile(join(broken, "tokenizer/vocab.json"), "{ not json");
  await assert.rejects(loadClipTokenizer(join(broken, "tokenizer")), /tokenizer\/vocab\.json: not valid JSON/);
  await writeFile(join(broken, "tokenizer/vocab.json"), JSON.stringify({ a: 0 }));
  await writeFile(join(broken, "tokenizer/merges.txt"), "#version: 0.2\n");
  await assert.rejects(loadClipTokenizer(join(broken, "tokenizer")), /vocab\.json: the vocabulary has no "<\|startoftext\|>" token/);
});

test.after(() => rm(dir, { recursive: true, force: true }));

/** Every call the tokenizer library gets, and a way to tokenise the whole text the same way. */
function spyOnLibrary(): { calls: string[]; full: (text: string) => number[]; restore: () => void } {
  const proto = Tokenizer.prototype as unknown as { encode: (this: Tokenizer, text: string, options?: object) => { ids: number[] } };
  const original = proto.encode;
  const calls: string[] = [];
  let last: Tokenizer | undefined;
  proto.encode = function (this: Tokenizer, text: string, options?: object) {
    calls.push(text);
    last = this;
    return original.call(this, text, options);
  };
  return {
    calls,
    full: (text) => original.call(last!, text, { add_special_tokens: true }).ids,
    restore: () => (proto.encode = original),
  };
}

/** CLIP's cut of whole-text ids: the first 76, then the end token, padded. */
function cut(ids: readonly number[], tok: ClipTokenizer): number[] {
  const out = ids.slice(0, tok.maxLength);
  if (ids.length > tok.maxLength) out[tok.maxLength - 1] = tok.eosId;
  while (out.length < tok.maxLength) out.push(tok.padId);
  return out;
}

test("a long prompt: only a prefix is tokenised (cut at whitespace), and the ids are the whole text's", async () => {
  const tok = await loadClipTokenizer(join(dir, "sd/tokenizer"));
  const spy = spyOnLibrary();
  try {
    tok.encode("warm-up");
    // Deterministic texts: words of letters, digits, punctuation, accents, CJK, emoji, contractions,
    // separated by runs of spaces, tabs and newlines; some start with a long unbroken run.
    let seed = 5;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const pieces = ["cat", "Photo", "of", "a", "dog's", "42", "7", "!!", "...", "é", "naïve", "猫", "🐈", "CAFÉ", "x1y2", "it'll", "—"];
    const spaces = [" ", " ", " ", "  ", "\t", "\n", " \n "];
    const words = (n: number) => Array.from({ length: n }, () => pieces[rand(pieces.length)] + spaces[rand(spaces.length)]).join("");
    const texts = [
      words(40), // short: tokenised whole
      words(3000),
      words(40_000), // ~200 KB
      "z".repeat(5000) + " " + words(500), // the first prefix has no whitespace to cut at
      "abc".repeat(3000), // no whitespace at all: tokenised whole
      " ".repeat(3000) + words(100), // leading whitespace only in the first prefix
    ];
    for (const text of texts) {
      spy.calls.length = 0;
      const ids = Array.from(tok.encode(text));
      const tokenised = spy.calls.reduce((n, t) => n + t.length, 0);
      assert.deepEqual(ids, cut(spy.full(text), tok), `ids of a ${text.length}-character text`);
      if (text.length > 20_000 && /\s/.test(text.slice(0, 2048))) {
        assert.ok(tokenised <= 2048, `${tokenised} characters tokenised for a ${text.length}-character prompt`);
      }
    }
  } finally {
    spy.restore();
  }
});
