/**
 * Prompt tokenisation for the text encoders, on @huggingface/tokenizers (pure
 * JS, works offline): CLIP (a tokenizer folder holds either a tokenizer.json
 * or the slow tokenizer's vocab.json + merges.txt; for the latter we assemble
 * the equivalent tokenizer.json in memory) and T5 (SD3's and FLUX's, from the
 * fast tokenizer's tokenizer.json).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

/** What a text encoder's tokenizer gives the pipeline. */
export interface PromptTokenizer {
  /** The tokenizer's model_max_length (77 for CLIP, 512 for FLUX's and SD3's T5). */
  readonly maxLength: number;
  readonly eosId: number;
  readonly padId: number;
  /** Token ids with the special tokens, truncated and padded to `length` (default `maxLength`). */
  encode(text: string, length?: number): Int32Array;
}

export type TokenizerKind = "clip" | "t5";

export interface ClipTokenizer extends PromptTokenizer {
  readonly bosId: number;
}

const BOS = "<|startoftext|>";
const EOS = "<|endoftext|>";
// CLIP's pre-split: special tokens, English contractions, letter runs, single digits, other symbol runs.
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

type TokenSpec = string | { content: string };

/**
 * What transformers' slow CLIPTokenizer (the one diffusers loads) does before BPE when ftfy is
 * absent, its BasicTokenizer: drop control/format characters and U+FFFD, and make each CJK
 * ideograph a word of its own.
 */
export function basicClean(text: string): string {
  return text
    .replace(/[\t\n\r]/g, " ")
    .replace(/[\p{C}\uFFFD]/gu, "")
    .replace(/([\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\u{20000}-\u{2A6DF}\u{2A700}-\u{2CEAF}\u{2F800}-\u{2FA1F}])/gu, " $1 ");
}

interface TokenizerFolderConfig {
  model_max_length?: number;
  pad_token?: TokenSpec;
  added_tokens_decoder?: unknown;
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
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
  // transformers' legacy loading (a tokenizer_config.json without added_tokens_decoder, as in SD 2.x
  // folders) lets special_tokens_map.json override it: SD 2.x pads with "!" there.
  const specialMap = config.added_tokens_decoder === undefined ? await readJson<{ pad_token?: TokenSpec }>(dir, "special_tokens_map.json", true) : undefined;
  const content = (t: TokenSpec | undefined) => (typeof t === "string" ? t : t?.content);
  const padToken = content(specialMap?.pad_token) ?? content(config.pad_token) ?? EOS;
  const padId = idOf(padToken, specialMap?.pad_token !== undefined ? "special_tokens_map.json" : "tokenizer_config.json");
  // The pad token is a special token, split out of the text before BPE ("!!" is two id-0 tokens, not "!!").
  const added = ((json as { added_tokens?: AddedToken[] }).added_tokens ??= []);
  if (!added.some((t) => t.content === padToken)) {
    added.push({ id: padId, content: padToken, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true } as AddedToken);
  }
  const maxLength = config.model_max_length !== undefined && config.model_max_length > 0 && config.model_max_length < 1e6 ? config.model_max_length : 77;
  const tokenizer = new Tokenizer(json, config);

  return {
    maxLength,
    bosId,
    eosId,
    padId,
    encode(text: string, length = maxLength): Int32Array {
      // Cleaned first: the prefix cut must see the text the tokenizer reads (cleaning drops and adds whitespace).
      const ids = encodeEnough(basicClean(text), length, (t) => tokenizer.encode(t, { add_special_tokens: true }).ids);
      return padOrCut(ids, length, padId, eosId);
    },
  };
}

/** `ids` padded with `padId` to `length`; an over-long sequence keeps its start and still ends with `eosId`, as the fast tokenizers truncate. */
function padOrCut(ids: ArrayLike<number>, length: number, padId: number, eosId: number): Int32Array {
  const out = new Int32Array(length).fill(padId);
  const n = Math.min(ids.length, length);
  for (let i = 0; i < n; i++) out[i] = ids[i];
  if (ids.length > length) out[length - 1] = eosId;
  return out;
}

/**
 * A T5 tokenizer folder as transformers' T5TokenizerFast saves it (tokenizer.json: Unigram with
 * the `</s>` post-processor; tokenizer_config.json: pad/eos tokens, model_max_length).
 */
export async function loadT5Tokenizer(dir: string): Promise<PromptTokenizer> {
  const config = (await readJson<TokenizerFolderConfig & { eos_token?: TokenSpec }>(dir, "tokenizer_config.json", true)) ?? {};
  const json = await readJson<{ model?: { type?: string; vocab?: [string, number][] }; added_tokens?: AddedToken[] }>(dir, "tokenizer.json");
  if (json.model?.type !== "Unigram" || !Array.isArray(json.model.vocab)) {
    throw new Error(`${join(dir, "tokenizer.json")}: expected a T5 (Unigram) tokenizer, got ${JSON.stringify(json.model?.type)}`);
  }
  const content = (t: TokenSpec | undefined) => (typeof t === "string" ? t : t?.content);
  const idOf = (token: string): number => {
    const special = json.added_tokens?.find((t) => t.content === token);
    const index = special?.id ?? json.model!.vocab!.findIndex(([piece]) => piece === token);
    if (index === undefined || index < 0) throw new Error(`${join(dir, "tokenizer.json")}: the vocabulary has no "${token}" token`);
    return index;
  };
  const padId = idOf(content(config.pad_token) ?? "<pad>");
  const eosId = idOf(content(config.eos_token) ?? "</s>");
  const maxLength = config.model_max_length !== undefined && config.model_max_length > 0 && config.model_max_length < 1e6 ? config.model_max_length : 512;
  const tokenizer = new Tokenizer(json, config);
  return {
    maxLength,
    eosId,
    padId,
    encode(text: string, length = maxLength): Int32Array {
      return padOrCut(encodeEnough(text, length, (t) => tokenizer.encode(t, { add_special_tokens: true }).ids), length, padId, eosId);
    },
  };
}

/** The tokenizer of `kind` in `dir`. */
export function loadPromptTokenizer(dir: string, kind: TokenizerKind): Promise<PromptTokenizer> {
  return kind === "t5" ? loadT5Tokenizer(dir) : loadClipTokenizer(dir);
}

/** The first prefix tried by encodeEnough, in characters: a 77-token prompt is a few hundred. */
const FIRST_PREFIX_CHARS = 2048;

/**
 * Whitespace as CLIP's normaliser and pre-tokeniser see it: the tokenizer
 * library reads their `\s` as Unicode's White_Space, which is not JS's `\s`
 * (U+FEFF is JS whitespace only and joins a symbol run, as in `!\uFEFF!`;
 * U+0085 is Unicode's only).
 */
const TOKENIZER_SPACE = /\p{White_Space}/u;

/**
 * Token ids (with start/end tokens) of `text`, or of a prefix of it that
 * already gives the `needed` ids the encoder reads: a prompt of megabytes
 * costs the tokenisation of a few kilobytes. The prefix ends before a
 * whitespace character, which neither CLIP's normaliser and pre-tokeniser nor
 * T5's whitespace split join across, so its ids are the whole text's first ids (then its end token);
 * prefixes grow 4× while too short, and the whole text is tokenised when no
 * prefix is enough.
 */
function encodeEnough(text: string, needed: number, encode: (text: string) => ArrayLike<number>): ArrayLike<number> {
  for (let end = FIRST_PREFIX_CHARS; end < text.length; end *= 4) {
    let cut = end;
    while (cut > 0 && !TOKENIZER_SPACE.test(text[cut])) cut--;
    if (cut === 0) continue;
    const ids = encode(text.slice(0, cut));
    if (ids.length >= needed) return ids;
  }
  return encode(text);
}
