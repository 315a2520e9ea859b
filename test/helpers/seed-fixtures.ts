/**
 * The reference draws tools/reference/seeds.py recorded from the real
 * generators (openvino-genai's CppStdGenerator, torch's CPU generator) and
 * an exact comparison against them.
 */
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { NoiseGenerator } from "../../src/backends/noise/index.js";

const DIR = new URL("../../../test/fixtures/seeds/", import.meta.url);

/** One randn call and what it returned: whole, or its ends and a hash of all. */
export interface RecordedCall {
  readonly shape: number[];
  readonly count: number;
  /** SHA-256 of the float32 values, little-endian. */
  readonly sha256: string;
  readonly values?: number[];
  readonly first?: number[];
  readonly last?: number[];
}

export interface RecordedCase {
  /** Decimal: seeds go up to 2^64 − 1. */
  readonly seed: string;
  readonly made_with: string;
  readonly calls: RecordedCall[];
}

export interface SeedFixture {
  readonly generator: string;
  readonly made_by: Record<string, string>;
  readonly cases: RecordedCase[];
}

/** glibc-libm.json: glibc's logf and fmaf as seeds.py recorded them (its libc in made_by), every number a float32 bit pattern. */
export interface LibmFixture {
  readonly logf: { x: number[]; logf: number[]; differs_from_rounded_log: number };
  readonly fmaf: { a: number[]; b: number[]; c: number[]; fmaf: number[] };
}

export function readSeedFile<T>(name: "mt19937.json" | "torch-cpu.json" | "glibc-libm.json"): T {
  return JSON.parse(readFileSync(new URL(name, DIR), "utf8")) as T;
}

/** The bit patterns of float32 values, so −0/+0 and every last bit count. */
export function float32Bits(values: ArrayLike<number>): Uint32Array {
  return new Uint32Array(Float32Array.from(values).buffer);
}

/** Float32 values from their bit patterns. */
export function fromBits(bits: readonly number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

function assertSameBits(got: Float32Array, want: number[], what: string): void {
  const g = float32Bits(got);
  const w = float32Bits(want);
  const bad: number[] = [];
  for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) bad.push(i);
  assert.equal(bad.length, 0, `${what}: ${bad.length} of ${w.length} values differ, first at ${bad[0]}: got ${got[bad[0]!]}, want ${want[bad[0]!]}`);
}

/** Runs a case's calls on `generator` in order and requires every value to match bit for bit. */
export function assertCaseMatches(generator: NoiseGenerator, c: RecordedCase): void {
  for (const [k, call] of c.calls.entries()) {
    const what = `seed ${c.seed}, call ${k} [${call.shape.join("×")}]`;
    const got = generator.randn(call.shape);
    assert.equal(got.length, call.count, `${what}: element count`);
    if (call.values) assertSameBits(got, call.values, what);
    if (call.first) assertSameBits(got.subarray(0, call.first.length), call.first, `${what} (first values)`);
    if (call.last) assertSameBits(got.subarray(got.length - call.last.length), call.last, `${what} (last values)`);
    // Buffer.from(typed array buffer) is host order; Node's platforms are little-endian.
    const hash = createHash("sha256").update(Buffer.from(got.buffer, got.byteOffset, got.byteLength)).digest("hex");
    assert.equal(hash, call.sha256, `${what}: SHA-256 of all ${call.count} values`);
  }
}
