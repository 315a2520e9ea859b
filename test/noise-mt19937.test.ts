/**
 * OVMS's generator (OpenVINO GenAI's CppStdGenerator on Linux) against what
 * the real openvino-genai package drew (test/fixtures/seeds, made by
 * tools/reference/seeds.py): every value bit for bit, and glibc's logf.
 */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { glibcLogf } from "../src/backends/noise/glibc-logf.js";
import { createNoiseGenerator } from "../src/backends/noise/index.js";
import { Mt19937Noise } from "../src/backends/noise/mt19937.js";
import { assertCaseMatches, float32Bits, fromBits, type LibmFixture, readSeedFile, type SeedFixture } from "./helpers/seed-fixtures.js";

const fixture = readSeedFile<SeedFixture>("mt19937.json");

const libm = readSeedFile<LibmFixture>("glibc-libm.json");

describe("mt19937 noise = openvino_genai.CppStdGenerator", () => {
  for (const c of fixture.cases) {
    it(`seed ${c.seed}: ${c.calls.map((k) => `[${k.shape.join("×")}]`).join(", ")}`, () => {
      assertCaseMatches(createNoiseGenerator("mt19937", BigInt(c.seed)), c);
    });
  }

  it("takes the seed mod 2^32, as a number or a bigint", () => {
    const a = new Mt19937Noise(42).randn([64]);
    assert.deepEqual(new Mt19937Noise(2n ** 32n + 42n).randn([64]), a);
    assert.deepEqual(new Mt19937Noise(2 ** 32 + 42).randn([64]), a);
    assert.notDeepEqual(new Mt19937Noise(43).randn([64]), a);
    for (const bad of [-1, 1.5, Number.NaN, Infinity, -1n, 2n ** 64n]) assert.throws(() => new Mt19937Noise(bad), RangeError, String(bad));
  });

  it("rejects shapes that are not lists of non-negative integers", () => {
    const g = new Mt19937Noise(1);
    assert.equal(g.randn([0, 4]).length, 0);
    for (const bad of [[-1], [1.5], [Number.NaN], [2 ** 40, 2 ** 40]]) assert.throws(() => g.randn(bad), RangeError);
  });
});

describe("glibc logf", () => {
  const x = fromBits(libm.logf.x);
  const want = float32Bits(fromBits(libm.logf.logf));

  it(`matches the recorded glibc logf on ${x.length} inputs bit for bit`, () => {
    const got = float32Bits(Array.from(x, glibcLogf));
    const bad = want.findIndex((w, i) => got[i] !== w);
    assert.equal(bad, -1, `logf(${x[bad]}) = ${fromBits([got[bad]!])[0]}, glibc says ${fromBits([want[bad]!])[0]}`);
  });

  it("is not Math.log rounded to float on those inputs (the fixture has such cases)", () => {
    const naive = float32Bits(Array.from(x, (v) => Math.fround(Math.log(v))));
    const differing = want.filter((w, i) => naive[i] !== w).length;
    assert.ok(libm.logf.differs_from_rounded_log > 0);
    assert.equal(differing, libm.logf.differs_from_rounded_log);
  });
});
