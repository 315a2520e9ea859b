/**
 * Fuzzing the body parsers: valid JSON and multipart bodies, truncated and
 * mutated at random (fast-check, seeded), must each parse or be refused
 * with a 400/413 HttpError, and settle; an error escaping the parser (as
 * busboy's part stream once did) fails the run as an uncaught exception.
 * Then a share of the same cases goes through a real server, which must
 * answer every one with a 2xx or a 4xx in OpenAI's error shape and stay up.
 * FUZZ_BODY_RUNS (default 3000 per parser) and FUZZ_SEED change the run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import fc from "fast-check";
import { DEFAULT_MAX_JSON_DEPTH, parseJsonBody, parseMultipart } from "../src/server/body.js";
import { HttpError } from "../src/server/errors.js";
import { ECHO_GRAPH_DIR, start } from "./server-helpers.js";

const RUNS = Number(process.env.FUZZ_BODY_RUNS ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261207);
const LIMIT = 1024 * 1024;

const JSON_SEEDS = [
  { model: "demo", prompt: "three cats", size: "512x512", n: 2, num_inference_steps: 4, rng_seed: 42 },
  { model: "demo", prompt: 'a "quoted" \\ backslash\nnewline — ünïcödé 猫 🐈', negative_prompt: "", guidance_scale: 7.5, stream: true, partial_images: 3 },
  { model: "", nested: { a: [1, 2, { b: [null, true, false, -0.5e-3] }] }, empty: {}, list: [] },
].map((v) => JSON.stringify(v));

interface Part {
  readonly name: string;
  readonly filename?: string;
  readonly type?: string;
  readonly data: string | Buffer;
}

function multipart(boundary: string, parts: readonly Part[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ""}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type !== undefined ? `Content-Type: ${p.type}\r\n` : ""}\r\n`));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data));
    chunks.push(Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const PNG_HEAD = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
const BOUNDARY = "----graphserveFuzz7MA4YWxkTrZu0gW";
const MULTIPART_SEEDS = [
  multipart(BOUNDARY, [{ name: "model", data: "demo" }, { name: "prompt", data: "a dog" }, { name: "image", filename: "a.png", type: "image/png", data: Buffer.concat([PNG_HEAD, Buffer.alloc(64, 7)]) }]),
  multipart(BOUNDARY, [
    { name: "model", data: "demo" },
    { name: "image[]", filename: "chat — 猫.png", type: "application/octet-stream", data: PNG_HEAD },
    { name: "image[]", filename: "b.png", data: "two\r\n--not-the-boundary\r\n" },
    { name: "mask", filename: "m.png", type: "image/png", data: Buffer.alloc(0) },
    { name: "légende", data: "line 1\r\nline 2" },
  ]),
  multipart(BOUNDARY, [{ name: "model", data: "" }, { name: "n", data: "2" }, { name: "stream", data: "true" }]),
];
const CONTENT_TYPES = [
  `multipart/form-data; boundary=${BOUNDARY}`,
  `multipart/form-data; boundary="${BOUNDARY}"`,
  "multipart/form-data",
  "multipart/form-data; boundary=",
  `multipart/form-data; boundary=${BOUNDARY.slice(0, 10)}`,
  `multipart/form-data; charset=utf-8; boundary=${BOUNDARY}`,
];

// Fragments that steer mutations toward the formats' corners.
const VOCAB = [
  "\r\n", "\r\n\r\n", "--", `--${BOUNDARY}`, `--${BOUNDARY}--`, 'Content-Disposition: form-data; name="', '; filename="', "Content-Type: ",
  "filename*=UTF-8''%E2%9C%93", '"', "\\", "\\u", "\\uD800", "{", "}", "[", "]", ":", ",", "1e999", "-", "null", "\u0000", "\udcff",
].map((s) => Buffer.from(s));

type Mutation =
  | { readonly kind: "truncate"; readonly at: number }
  | { readonly kind: "delete"; readonly at: number; readonly len: number }
  | { readonly kind: "insert"; readonly at: number; readonly bytes: Buffer }
  | { readonly kind: "duplicate"; readonly at: number; readonly len: number; readonly to: number }
  | { readonly kind: "flip"; readonly at: number; readonly byte: number };

const position = fc.double({ min: 0, max: 1, noNaN: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: position }),
  fc.record({ kind: fc.constant("delete" as const), at: position, len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: position, bytes: fc.oneof(fc.constantFrom(...VOCAB), fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => Buffer.from(a))) }),
  fc.record({ kind: fc.constant("duplicate" as const), at: position, len: fc.integer({ min: 1, max: 120 }), to: position }),
  fc.record({ kind: fc.constant("flip" as const), at: position, byte: fc.integer({ min: 0, max: 255 }) }),
);
// Sometimes none: the valid bodies must go through as well.
const mutations = fc.array(mutation, { minLength: 0, maxLength: 4 });

function apply(body: Buffer, m: Mutation): Buffer {
  const at = Math.floor(m.at * body.length);
  switch (m.kind) {
    case "truncate":
      return body.subarray(0, at);
    case "delete":
      return Buffer.concat([body.subarray(0, at), body.subarray(at + m.len)]);
    case "insert":
      return Buffer.concat([body.subarray(0, at), m.bytes, body.subarray(at)]);
    case "duplicate": {
      const to = Math.floor(m.to * body.length);
      return Buffer.concat([body.subarray(0, to), body.subarray(at, at + m.len), body.subarray(to)]);
    }
    case "flip": {
      const out = Buffer.from(body);
      if (at < out.length) out[at] = m.byte;
      return out;
    }
  }
}

/** A refusal the server would send as is: a 400 or 413 HttpError. */
function assertRefusal(e: unknown, input: Buffer): void {
  if (e instanceof HttpError && (e.status === 400 || e.status === 413)) return;
  throw new Error(`not a 400/413 HttpError: ${(e as Error)?.stack ?? String(e)}\n--- input ---\n${input.toString("latin1")}`);
}

/** Resolves with the outcome, or rejects if the parse has not settled in `ms` (a hang). */
function settled<T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then((ok) => ({ ok }), (error: unknown) => ({ error })),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the parse did not settle in ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

interface Case {
  readonly body: Buffer;
  readonly contentType: string;
}
const jsonCase: fc.Arbitrary<Case> = fc.tuple(fc.constantFrom(...JSON_SEEDS), mutations).map(([seed, ms]) => ({ body: ms.reduce(apply, Buffer.from(seed)), contentType: "application/json" }));
const multipartCase: fc.Arbitrary<Case> = fc
  .tuple(fc.constantFrom(...MULTIPART_SEEDS), mutations, fc.constantFrom(...CONTENT_TYPES))
  .map(([seed, ms, contentType]) => ({ body: ms.reduce(apply, seed), contentType }));

test("body parsers: truncated and mutated JSON and multipart bodies parse or are refused with 400/413, and settle", { timeout: 120_000 }, async () => {
  const started = performance.now();
  let parsed = 0;
  let refused = 0;
  fc.assert(
    fc.property(jsonCase, ({ body }) => {
      try {
        const value = parseJsonBody(body, DEFAULT_MAX_JSON_DEPTH);
        assert.ok(typeof value === "object" && value !== null && !Array.isArray(value));
        parsed++;
      } catch (e) {
        assertRefusal(e, body);
        refused++;
      }
    }),
    { numRuns: RUNS, seed: SEED },
  );
  await fc.assert(
    fc.asyncProperty(multipartCase, async ({ body, contentType }) => {
      const outcome = await settled(parseMultipart(body, { "content-type": contentType }, LIMIT), 2000);
      if ("error" in outcome) {
        assertRefusal(outcome.error, body);
        refused++;
        return;
      }
      for (const f of outcome.ok.files) assert.ok(Buffer.isBuffer(f.data) && typeof f.field === "string" && typeof f.filename === "string");
      parsed++;
    }),
    { numRuns: RUNS, seed: SEED },
  );
  const seconds = (performance.now() - started) / 1000;
  // Both outcomes must occur, or the mutations are not exercising anything.
  assert.ok(parsed > RUNS / 10 && refused > RUNS / 10, `parsed ${parsed}, refused ${refused}`);
  console.log(`# body fuzz: ${2 * RUNS} cases (${parsed} parsed, ${refused} refused) in ${seconds.toFixed(1)} s`);
});

test("the server answers mutated bodies with 2xx or an OpenAI 4xx, and stays up", { timeout: 120_000 }, async () => {
  const srv = await start({ single: { name: "demo", path: ECHO_GRAPH_DIR } });
  const runs = Math.ceil(RUNS / 10);
  const started = performance.now();
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(fc.oneof(jsonCase, multipartCase), fc.constantFrom("/v3/images/generations", "/v3/images/edits"), async ({ body, contentType }, path) => {
      const r = await srv.request("POST", path, { body, headers: { "content-type": contentType } });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      assert.ok(r.status < 500, `${r.status} ${r.text}\n--- input ---\n${body.toString("latin1")}`);
      if (r.status >= 400) assert.equal(typeof (r.body as { error?: { message?: unknown } }).error?.message, "string", r.text);
    }),
    { numRuns: runs, seed: SEED },
  );
  assert.equal((await srv.request("GET", "/v2/health/live")).status, 200);
  console.log(`# body fuzz over HTTP: ${runs} requests in ${((performance.now() - started) / 1000).toFixed(1)} s, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
});
