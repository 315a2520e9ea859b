/** fp16 ONNX models rewritten to float32 at load (upcast-fp16.ts), on the real fp16 export in the conformance fixtures. */
import { strict as assert } from "node:assert";
import { existsSync, readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import { float16Value, upcastFloat16Model } from "../src/backends/onnx/upcast-fp16.js";

const FIXTURES = join(import.meta.dirname, "..", "..", "test", "fixtures", "conformance", "sd1");
const FP16 = join(FIXTURES, "optimum-onnx-fp16");
const FP32 = join(FIXTURES, "optimum-onnx-fp32");

/** Uniform values in [-1, 1) from a fixed LCG. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

describe("upcastFloat16Model", { skip: !existsSync(FP16) && "no fp16 fixture" }, () => {
  it("decodes binary16: normals, subnormals, zeros, infinities, NaN", () => {
    assert.equal(float16Value(0x3c00), 1);
    assert.equal(float16Value(0xc000), -2);
    assert.equal(float16Value(0x7bff), 65504);
    assert.equal(float16Value(0x0001), 2 ** -24);
    assert.equal(float16Value(0x0400), 2 ** -14);
    assert.ok(Object.is(float16Value(0x8000), -0));
    assert.equal(float16Value(0x7c00), Infinity);
    assert.equal(float16Value(0xfc00), -Infinity);
    assert.ok(Number.isNaN(float16Value(0x7e00)));
  });

  it("leaves float32 models alone", async () => {
    for (const component of readdirSync(FP32)) {
      const model = join(FP32, component, "model.onnx");
      if (existsSync(model)) assert.equal(await upcastFloat16Model(model), undefined, component);
    }
  });

  it("every fp16 component becomes a float32 model that computes what the fp16 one does (fp16 rounding aside)", async () => {
    for (const component of ["text_encoder", "unet", "vae_decoder", "vae_encoder"]) {
      const src = join(FP16, component, "model.onnx");
      const up = await upcastFloat16Model(src);
      assert.ok(up, `${component}: rewritten`);
      try {
        const half = await ort.InferenceSession.create(src);
        const full = await ort.InferenceSession.create(up);
        assert.ok([...half.inputMetadata, ...half.outputMetadata].some((m) => m.isTensor && m.type === "float16"), `${component}: the export has float16 inputs or outputs`);
        for (const m of full.inputMetadata) assert.ok(m.isTensor && m.type !== "float16", `${component}: input ${m.name} is ${m.isTensor ? m.type : "?"}`);
        for (const m of full.outputMetadata) assert.ok(m.isTensor && m.type !== "float16", `${component}: output ${m.name}`);
        const feeds32: Record<string, ort.Tensor> = {};
        const feeds16: Record<string, ort.Tensor> = {};
        for (const m of half.inputMetadata) {
          if (!m.isTensor) continue;
          const dims = concreteDims(component, m.name, m.shape as (number | string)[]);
          const n = dims.reduce((a, b) => a * b, 1);
          if (m.type === "int32" || m.type === "int64") {
            // Token ids below the tiny vocabulary's size.
            const ids = Array.from({ length: n }, (_, i) => (i * 7) % 300);
            feeds32[m.name] = feeds16[m.name] = m.type === "int32" ? new ort.Tensor("int32", Int32Array.from(ids), dims) : new ort.Tensor("int64", BigInt64Array.from(ids.map(BigInt)), dims);
            continue;
          }
          // Values exactly representable in fp16, so both models see the same input.
          const v = values(n, dims.length).map((x) => Math.round(x * 1024) / 1024);
          const f = m.name === "timestep" ? v.map((x) => Math.round(500 + 400 * x)) : v;
          feeds32[m.name] = new ort.Tensor("float32", f, dims);
          feeds16[m.name] = m.type === "float16" ? new ort.Tensor("float16", Uint16Array.from(f, half16), dims) : feeds32[m.name];
        }
        const a = await full.run(feeds32);
        const b = await half.run(feeds16);
        for (const name of full.outputNames) {
          const x = a[name].data as Float32Array;
          const y = b[name].type === "float16" ? Array.from(b[name].data as Uint16Array, float16Value) : Array.from(b[name].data as Float32Array);
          let max = 0;
          let scale = 0;
          for (let i = 0; i < x.length; i++) {
            max = Math.max(max, Math.abs(x[i] - y[i]));
            scale = Math.max(scale, Math.abs(x[i]));
          }
          // fp16 activations carry ~2^-11 relative rounding per op; a few dozen ops stay within 2 %.
          assert.ok(max <= 0.02 * Math.max(1, scale), `${component}.${name}: max |Δ| ${max} (scale ${scale})`);
        }
        await half.release();
        await full.release();
      } finally {
        await rm(dirname(up), { recursive: true, force: true });
      }
    }
  });
});

/** A batch of 1, 77 tokens, 8×8 latents (64×64 pixels into the VAE encoder) for the symbolic dimensions. */
function concreteDims(component: string, input: string, shape: readonly (number | string)[]): number[] {
  return shape.map((d, i) => {
    if (typeof d === "number") return d;
    if (i === 0) return 1;
    if (input === "input_ids" || input === "encoder_hidden_states") return 77;
    return component === "vae_encoder" ? 64 : 8;
  });
}

/** binary16 bits of a value already representable in binary16 (test inputs only). */
function half16(x: number): number {
  if (x === 0) return Object.is(x, -0) ? 0x8000 : 0;
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}
