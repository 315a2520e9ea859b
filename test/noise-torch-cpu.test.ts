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
import { TorchCpuNoise } from "../src/backends/noise/torch-cpu.js";
import { assertCaseMatches, float32Bits, readSeedFile, type SeedFixture } from "./helpers/seed-fixtures.js";

const fixture = readSeedFile<SeedFixture>("torch-cpu.json");

interface LibmFixture {
  readonly fmaf: { a: number[]; b: number[]; c: number[]; fmaf: number[] };
}
const libm = readSeedFile<LibmFixture>("glibc-libm.json");
const fromBits = (bits: number[]): Float32Array => new Float32Array(Uint32Array.from(bits).buffer);

describe("torch-cpu noise = torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed))", () => {
  for (const c of fixture.cases) {
    it(`seed ${c.seed}: ${c.calls.map((k) => `[${k.shape.join("×")}]`).join(", ")}`, () => {
      assertCaseMatches(createNoiseGenerator("torch-cpu", BigInt(c.seed)), c);
    });
  }

  it("a 16-element call leaves the cached small-call normal alone", () => {
    const g = new TorchCpuNoise(3);
    const first = g.randn([1]);
    const h = new TorchCpuNoise(3);
    h.randn([1]);
    h.randn([1]); // consumes the cache ...
    const g2 = g.randn([1]); // ... which g still has
    assert.notDeepEqual(g2, first);
    assert.deepEqual(new TorchCpuNoise(3).randn([2])[1], g2[0]);
  });
});

describe("fmaf", () => {
  const [a, b, c] = [fromBits(libm.fmaf.a), fromBits(libm.fmaf.b), fromBits(libm.fmaf.c)];
  const want = float32Bits(fromBits(libm.fmaf.fmaf));

  it(`matches this machine's glibc fmaf on ${a.length} triples, halfway cases included`, () => {
    const got = float32Bits(Array.from(a, (x, i) => fmaf(x, b[i]!, c[i]!)));
    const bad = want.findIndex((w, i) => got[i] !== w);
    assert.equal(bad, -1, `fmaf(${a[bad]}, ${b[bad]}, ${c[bad]}) differs from glibc`);
    // The halfway cases are real: rounding the double sum to float gives another answer for some of them.
    const naive = float32Bits(Array.from(a, (x, i) => Math.fround(x * b[i]! + c[i]!)));
    assert.ok(want.some((w, i) => naive[i] !== w), "no triple in the fixture needs the fused rounding");
  });
});
