/**
 * torch's CPU generator against what real torch drew (test/fixtures/seeds,
 * made by tools/reference/seeds.py on an AVX-512 machine; torch runs its AVX2
 * kernel there): every value bit for bit, and glibc's fmaf, which the AVX2
 * kernel's fused multiply-adds need.
 */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { fmaf } from "../src/backends/noise/fmaf.js";
import { createNoiseGenerator } from "../src/backends/noise/index.js";
import { boxMuller16 } from "../src/backends/noise/torch-cpu.js";
import { assertCaseMatches, float32Bits, fromBits, type LibmFixture, readSeedFile, type SeedFixture } from "./helpers/seed-fixtures.js";

/** A block of 16 from a long randn call: the uniforms torch drew for it and the normals it made of them. */
interface RareBlock {
  readonly seed: number;
  readonly numel: number;
  readonly offset: number;
  readonly uniforms: number[];
  readonly normals: number[];
}
const fixture = readSeedFile<SeedFixture & { rare_blocks: RareBlock[] }>("torch-cpu.json");
/** u2·2^24 where Cephes' last reduction step rounds differently fused and unfused (3 of 2^24). */
const FUSION_SENSITIVE = new Set([12582909, 12582912, 12582913]);

const libm = readSeedFile<LibmFixture>("glibc-libm.json");

describe("torch-cpu noise = torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed))", () => {
  for (const c of fixture.cases) {
    it(`seed ${c.seed}: ${c.calls.map((k) => `[${k.shape.join("×")}]`).join(", ")}`, () => {
      assertCaseMatches(createNoiseGenerator("torch-cpu", BigInt(c.seed)), c);
    });
  }

  it("the argument reduction's fused multiply-add, where it decides the result (blocks of 2^24-element draws)", () => {
    assert.ok(fixture.rare_blocks.length > 0);
    for (const b of fixture.rare_blocks) {
      assert.ok(b.uniforms.slice(8).some((u) => FUSION_SENSITIVE.has(u * 2 ** 24)), `seed ${b.seed} offset ${b.offset} has no fusion-sensitive u2`);
      const data = Float32Array.from(b.uniforms);
      boxMuller16(data, 0);
      assert.deepEqual(float32Bits(data), float32Bits(b.normals), `seed ${b.seed}, elements ${b.offset}..${b.offset + 15} of ${b.numel}`);
    }
  });
});

describe("fmaf", () => {
  const [a, b, c] = [fromBits(libm.fmaf.a), fromBits(libm.fmaf.b), fromBits(libm.fmaf.c)];
  const want = float32Bits(fromBits(libm.fmaf.fmaf));

  it(`matches the recorded glibc fmaf on ${a.length} triples, halfway cases included`, () => {
    const got = float32Bits(Array.from(a, (x, i) => fmaf(x, b[i]!, c[i]!)));
    const bad = want.findIndex((w, i) => got[i] !== w);
    assert.equal(bad, -1, `fmaf(${a[bad]}, ${b[bad]}, ${c[bad]}) differs from glibc`);
    // The halfway cases are real: rounding the double sum to float gives another answer for some of them.
    const naive = float32Bits(Array.from(a, (x, i) => Math.fround(x * b[i]! + c[i]!)));
    assert.ok(want.some((w, i) => naive[i] !== w), "no triple in the fixture needs the fused rounding");
  });
});
