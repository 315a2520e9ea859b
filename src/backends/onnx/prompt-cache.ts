/**
 * The prompt-embedding cache: a request whose prompts were encoded before
 * reuses their conditioning instead of running the text encoders again.
 *
 * One cache per pipeline (per piscina worker). An entry is the family's
 * conditioning for ONE image per prompt (the [negative, positive] rows, or
 * just the positive one) before tiling to the request's n, so requests for 1
 * and 4 images share it. Keyed by everything a family's encodePrompt reads
 * from a request: the six prompt fields (absent and "" kept apart: SDXL zeroes
 * an absent negative prompt under force_zeros_for_empty_prompt, the model's
 * fixed setting), whether guidance runs the negative half, and the T5 length.
 * What the key leaves out (the model, its tokenizers and encoders) is fixed
 * for the pipeline. The encoders are deterministic on one machine, so a hit
 * gives exactly the floats a miss would.
 *
 * Bounded by entries and bytes, least recently used first out: SD3/FLUX
 * conditioning is T5 length × 4096 floats per row (8 MiB per row at 512).
 */
import { createHash } from "node:crypto";
import type { GenerationRequest } from "../types.js";
import { BackendError } from "../types.js";
import type { Conditioning } from "./families/types.js";
import { tileRows } from "./families/types.js";

export interface PromptCacheLimits {
  /** Most conditionings kept (0 disables the cache). */
  readonly maxEntries: number;
  /** Most bytes of conditioning kept (0 disables the cache). */
  readonly maxBytes: number;
}

/**
 * Per pipeline, 64 entries and 64 MiB: 64 SD 1.x prompts under guidance (462 KiB each) or 52 SDXL ones
 * (1.2 MiB), 7 FLUX prompts at T5 length 512 (8 MiB), 6 SD3 ones under guidance at 256 (10.4 MiB) or 3 at
 * 512 (19.3 MiB); a small share of any of these models' weights.
 */
export const DEFAULT_PROMPT_CACHE: PromptCacheLimits = { maxEntries: 64, maxBytes: 64 * 1024 ** 2 };

/** Limits from load options (entries, MiB), defaults filled in; BackendError naming the option for anything but a non-negative number. */
export function promptCacheLimits(entries: unknown, mib: unknown): PromptCacheLimits {
  const check = (v: unknown, name: string, integer: boolean): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
      throw new BackendError(`${name} must be a non-negative ${integer ? "integer" : "number"} (0 disables the prompt cache), got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const maxEntries = check(entries, "promptCacheEntries", true) ?? DEFAULT_PROMPT_CACHE.maxEntries;
  const m = check(mib, "promptCacheMiB", false);
  return { maxEntries, maxBytes: m === undefined ? DEFAULT_PROMPT_CACHE.maxBytes : Math.floor(m * 1024 ** 2) };
}

/** The cache key of a request's conditioning: a digest, so 32,000-character prompts cost no more to keep than short ones. */
export function promptCacheKey(req: GenerationRequest, cfg: boolean, maxSequenceLength: number): string {
  // null for an absent field, so JSON keeps it apart from "".
  const fields = [req.prompt, req.prompt2, req.prompt3, req.negativePrompt, req.negativePrompt2, req.negativePrompt3].map((p) => p ?? null);
  return createHash("sha256").update(JSON.stringify([fields, cfg, maxSequenceLength])).digest("base64");
}

/** Bytes a conditioning holds. */
export function conditioningBytes(c: Conditioning): number {
  return c.hidden.byteLength + (c.pooled?.byteLength ?? 0);
}

/** One image's conditioning (rows per prompt) repeated for n images: [rows·n, …], each row n times in order, as the families tile. */
export function tileConditioning(c: Conditioning, n: number): Conditioning {
  const rows = c.hidden.length / (c.seq * c.dim);
  return {
    ...c,
    hidden: tileRows(c.hidden, rows, c.seq * c.dim, n),
    ...(c.pooled !== undefined ? { pooled: tileRows(c.pooled, rows, c.pooledDim!, n) } : {}),
  };
}

export interface PromptCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
}

/** An LRU map of key → conditioning, bounded by entries and bytes. Entries are never handed out for writing (see tileConditioning). */
export class PromptCache {
  // A Map iterates in insertion order: re-inserting on a hit keeps the least recently used first.
  private readonly entries = new Map<string, { readonly cond: Conditioning; readonly bytes: number }>();
  private bytes = 0;
  private readonly counts = { hits: 0, misses: 0, evictions: 0 };

  constructor(readonly limits: PromptCacheLimits = DEFAULT_PROMPT_CACHE) {}

  get enabled(): boolean {
    return this.limits.maxEntries > 0 && this.limits.maxBytes > 0;
  }

  get(key: string): Conditioning | undefined {
    const e = this.entries.get(key);
    if (!e) {
      if (this.enabled) this.counts.misses++;
      return undefined;
    }
    this.counts.hits++;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.cond;
  }

  /** Keeps `cond` unless it alone is over the byte bound; evicts the least recently used until both bounds hold. */
  set(key: string, cond: Conditioning): void {
    if (!this.enabled) return;
    const bytes = conditioningBytes(cond);
    if (bytes > this.limits.maxBytes) return;
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.bytes;
    }
    this.entries.set(key, { cond, bytes });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
      this.counts.evictions++;
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  stats(): PromptCacheStats {
    return { ...this.counts, entries: this.entries.size, bytes: this.bytes };
  }
}
