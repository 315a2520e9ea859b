/**
 * CLIP tokenisation for Stable Diffusion text encoders, on
 * @huggingface/tokenizers (pure JS, works offline). A tokenizer folder holds
 * either a tokenizer.json or the slow tokenizer's vocab.json + merges.txt;
 * for the latter we assemble the equivalent tokenizer.json in memory.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

export interface ClipTokenizer {
  /** Sequence length the text encoder expects (model_max_length, 77 for CLIP). */
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** Token ids with start/end tokens, truncated and padded to `maxLength`. */
  encode(text: string): Int32Array;
}

const BOS = "<|startoftext|>";
const EOS = "<|endoftext|>";
// CLIP's pre-split: special tokens, English contractions, letter runs, single digits, other symbol runs.
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

interface TokenizerFolderConfig {
  model_max_length?: number;
  pad_token?: string | { content: string };
}

async function readJson<T>(dir: string, file: string, optional: true): Promise<T | undefined>;
async function readJson<T>(dir: string, file: string, optional?: false): Promise<T>;
async function readJson<T>(dir: string, file: string, optional = false): Promise<T | undefined> {
  const path = join(dir, file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`${path}: cannot read the tokenizer file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** The fast-tokenizer description of a CLIP BPE tokenizer given its vocabulary and merges. */
function clipTokenizerJson(vocab: Record<string, number>, merges: string[]): object {
  const special = (content: string) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });
  return {
    added_tokens: [special(BOS), special(EOS)],
    normalizer: {
      type: "Sequence",
      normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Lowercase" }],
    },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: CLIP_SPLIT }, behavior: "Removed", invert: true },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: "RobertaProcessing", sep: [EOS, vocab[EOS]], cls: [BOS, vocab[BOS]], trim_offsets: false, add_prefix_space: false },
    decoder: { type: "BPEDecoder", suffix: "</w>" },
    model: {
      type: "BPE",
      vocab,
      merges,
      end_of_word_suffix: "</w>",
      continuing_subword_prefix: "",
      unk_token: EOS,
      dropout: null,
      fuse_unk: false,
      byte_fallback: false,
    },
  };
}

/** Loads the tokenizer in `dir` (e.g. `model/tokenizer`); errors name the file at fault. */
export async function loadClipTokenizer(dir: string): Promise<ClipTokenizer> {
  const config = (await readJson<TokenizerFolderConfig>(dir, "tokenizer_config.json", true)) ?? {};
  let json = await readJson<{ model?: { vocab?: Record<string, number> } }>(dir, "tokenizer.json", true);
  const source = json === undefined ? "vocab.json" : "tokenizer.json";
  if (json === undefined) {
    const vocab = await readJson<Record<string, number>>(dir, "vocab.json");
    const mergesPath = join(dir, "merges.txt");
    let mergesText: string;
    try {
      mergesText = await readFile(mergesPath, "utf8");
    } catch (e) {
      throw new Error(`${mergesPath}: cannot read the tokenizer file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    // The first line is a "#version" header; blank lines carry nothing.
    const merges = mergesText.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#version"));
    json = clipTokenizerJson(vocab, merges);
  }
  const vocab = json.model?.vocab ?? {};
  const idOf = (token: string, file: string) => {
    const id = vocab[token];
    if (id === undefined) throw new Error(`${join(dir, file)}: the vocabulary has no "${token}" token`);
    return id;
  };
  const bosId = idOf(BOS, source);
  const eosId = idOf(EOS, source);
  const padToken = typeof config.pad_token === "string" ? config.pad_token : config.pad_token?.content ?? EOS;
  const padId = idOf(padToken, "tokenizer_config.json");
  const maxLength = config.model_max_length !== undefined && config.model_max_length > 0 && config.model_max_length < 1e6 ? config.model_max_length : 77;
  const tokenizer = new Tokenizer(json, config);

  return {
    maxLength,
    bosId,
    eosId,
    padId,
    encode(text: string): Int32Array {
      const ids = encodeEnough(text, maxLength, (t) => tokenizer.encode(t, { add_special_tokens: true }).ids);
      const out = new Int32Array(maxLength).fill(padId);
      // Over-long prompts keep their start and still end with the end-of-text token, as CLIP was trained.
      const n = Math.min(ids.length, maxLength);
      for (let i = 0; i < n; i++) out[i] = ids[i];
      if (ids.length > maxLength) out[maxLength - 1] = eosId;
      return out;
    },
  };
}

/** The first prefix tried by encodeEnough, in characters: a 77-token prompt is a few hundred. */
const FIRST_PREFIX_CHARS = 2048;

/**
 * Token ids (with start/end tokens) of `text`, or of a prefix of it that
 * already gives the `needed` ids the encoder reads: a prompt of megabytes
 * costs the tokenisation of a few kilobytes. The prefix ends before a
 * whitespace character, which CLIP's normaliser and pre-tokeniser never join
 * across, so its ids are the whole text's first ids (then its end token);
 * prefixes grow 4× while too short, and the whole text is tokenised when no
 * prefix is enough.
 */
function encodeEnough(text: string, needed: number, encode: (text: string) => ArrayLike<number>): ArrayLike<number> {
  for (let end = FIRST_PREFIX_CHARS; end < text.length; end *= 4) {
    let cut = end;
    while (cut > 0 && !/\s/.test(text[cut])) cut--;
    if (cut === 0) continue;
    const ids = encode(text.slice(0, cut));
    if (ids.length >= needed) return ids;
  }
  return encode(text);
}
