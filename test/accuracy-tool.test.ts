/**
 * `graphserve accuracy`: the metrics against known values and a naive
 * implementation, then the tool against a real graphserve on loopback (tiny
 * SD model, tiny CLIP) and against a stand-in server that is deliberately
 * non-deterministic or failing; reports are checked against what the
 * servers saw (request counts, seeds, bodies).
 */
import { strict as assert } from "node:assert";
import { copyFile, readdir, readFile, unlink, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { makeTinyClip } from "../src/backends/onnx/tiny/make-tiny-clip.js";
import { ACCURACY_USAGE, accuracyCommand } from "../src/tools/accuracy/command.js";
import { gaussianKernel1d, luminance, psnr, ssim, type RawImage } from "../src/tools/accuracy/metrics.js";
import { parsePrompts, runAccuracy, type AccuracyReport } from "../src/tools/accuracy/run.js";
import { startImageServer } from "./image-server.js";
import { eventually, tempDir, type TestServer } from "./server-helpers.js";

// ---------------------------------------------------------------------------
// Metrics.

/** A deterministic pseudo-random RGB image (LCG), optionally smooth. */
function image(width: number, height: number, seed: number, gen?: (x: number, y: number, c: number) => number): RawImage {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = gen ? gen(x, y, c) : Math.floor(rnd() * 256);
  return { data, width, height, channels: 3 };
}

function map(img: RawImage, f: (v: number) => number): RawImage {
  return { ...img, data: img.data.map(f) };
}

/** SSIM the long way: for every valid window position, weighted means, centred (co)variances, the formula; then the mean. */
function naiveSsim(a: RawImage, b: RawImage): number {
  const x = luminance(a);
  const y = luminance(b);
  const W = a.width;
  const g = gaussianKernel1d(11, 1.5);
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  let sum = 0;
  let count = 0;
  for (let oy = 0; oy + 11 <= a.height; oy++) {
    for (let ox = 0; ox + 11 <= W; ox++) {
      let mx = 0;
      let my = 0;
      for (let i = 0; i < 11; i++)
        for (let j = 0; j < 11; j++) {
          const w = g[i] * g[j];
          mx += w * x[(oy + i) * W + ox + j];
          my += w * y[(oy + i) * W + ox + j];
        }
      let vx = 0;
      let vy = 0;
      let cxy = 0;
      for (let i = 0; i < 11; i++)
        for (let j = 0; j < 11; j++) {
          const w = g[i] * g[j];
          const dx = x[(oy + i) * W + ox + j] - mx;
          const dy = y[(oy + i) * W + ox + j] - my;
          vx += w * dx * dx;
          vy += w * dy * dy;
          cxy += w * dx * dy;
        }
      sum += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      count++;
    }
  }
  return sum / count;
}

describe("metrics", () => {
  const smooth = image(40, 32, 1, (x, y, c) => Math.round(120 + 80 * Math.sin(x / 5 + c) * Math.cos(y / 7)));
  const noisy = image(40, 32, 2);

  it("identical images: PSNR ∞, SSIM 1", () => {
    assert.equal(psnr(noisy, noisy), Infinity);
    assert.equal(ssim(noisy, noisy), 1);
    assert.equal(ssim(smooth, { ...smooth, data: Uint8Array.from(smooth.data) }), 1);
  });

  it("+10 on every channel: PSNR = 20·log10(255/10) ≈ 28.13 dB", () => {
    const base = map(noisy, (v) => Math.min(v, 245));
    const plus = map(base, (v) => v + 10);
    const p = psnr(base, plus);
    assert.ok(Math.abs(p - 20 * Math.log10(255 / 10)) < 1e-12, `${p}`);
    assert.equal(p.toFixed(2), "28.13");
    // Structure is intact: only the luminance term drops a little.
    const s = ssim(base, plus);
    assert.ok(s < 1 && s > 0.9, `${s}`);
  });

  it("an image against its inverse has negative SSIM", () => {
    const s = ssim(smooth, map(smooth, (v) => 255 - v));
    assert.ok(s < 0, `${s}`);
    assert.ok(ssim(noisy, map(noisy, (v) => 255 - v)) < 0);
  });

  it("SSIM is symmetric and matches a naive double-loop implementation", () => {
    const other = image(40, 32, 3, (x, y, c) => Math.min(255, Math.max(0, smooth.data[(y * 40 + x) * 3 + c] + ((x * 7 + y * 13 + c) % 41) - 20)));
    const ab = ssim(smooth, other);
    assert.ok(Math.abs(ab - ssim(other, smooth)) < 1e-12);
    assert.ok(Math.abs(ab - naiveSsim(smooth, other)) < 1e-9, `${ab} vs ${naiveSsim(smooth, other)}`);
    assert.ok(Math.abs(ssim(noisy, smooth) - naiveSsim(noisy, smooth)) < 1e-9);
    assert.ok(ab > 0 && ab < 1);
  });

  it("refuses mismatched shapes and images smaller than the window", () => {
    assert.throws(() => psnr(noisy, image(10, 10, 1)), /differ in shape/);
    assert.throws(() => ssim(image(10, 20, 1), image(10, 20, 2)), /at least 11x11/);
  });

  it("prompts file: blank lines and # comments skipped", () => {
    assert.deepEqual(parsePrompts("# header\n\na cat\n  # indented comment\n a dog \r\n\n"), ["a cat", "a dog"]);
  });
});

// ---------------------------------------------------------------------------
// Against servers.

const SEED = 1234;
const PROMPTS = ["a photo of a cat", "an astronaut riding a horse", "a photo of a cat"];

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

function generationsLogged(server: TestServer): Record<string, unknown>[] {
  return server.logs.filter((l) => l.msg === "request" && l.path === "/v3/images/generations");
}

/** Waits for the server's access log to hold `n` more generation lines than `before` (it logs on close), and checks no more arrive. */
async function expectLogged(server: TestServer, before: number, n: number): Promise<Record<string, unknown>[]> {
  await eventually(() => generationsLogged(server).length >= before + n, `${n} request log lines`);
  await new Promise((r) => setTimeout(r, 50));
  const lines = generationsLogged(server).slice(before);
  assert.equal(lines.length, n);
  return lines;
}

/** A stand-in Images API server: random PNG bytes for every request (or a 500 for prompts containing "fail"); records bodies and headers. */
async function standIn(): Promise<{ url: string; seen: { path: string; body: Record<string, unknown>; auth?: string }[]; close(): Promise<void> }> {
  const seen: { path: string; body: Record<string, unknown>; auth?: string }[] = [];
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await read(req);
      seen.push({ path: req.url ?? "", body, ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
      if (String(body.prompt).includes("fail")) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "injected failure", type: "server_error", param: null, code: null } }));
        return;
      }
      const noise = Buffer.alloc(16 * 16 * 3);
      for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(Math.random() * 256);
      const png = await sharp(noise, { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ created: Math.floor(Date.now() / 1000), data: [{ b64_json: png.toString("base64") }] }));
    })();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

/** A reference folder `<index>.png` from a run's `--out` folder (`<index>-seed<S>.png`). */
async function referencesFrom(outDir: string, seed: number): Promise<string> {
  const dir = tempDir();
  for (const f of await readdir(outDir)) {
    const m = /^(\d+)-seed(\d+)\.png$/.exec(f);
    if (m && Number(m[2]) === seed) await copyFile(join(outDir, f), join(dir, `${m[1]}.png`));
  }
  return dir;
}

describe("graphserve accuracy", () => {
  let server: TestServer;
  let clipDir: string;
  let promptsFile: string;
  let fake: Awaited<ReturnType<typeof standIn>>;
  let first: AccuracyReport;
  let outS: string;

  before(async () => {
    server = await startImageServer("tiny");
    clipDir = join(tempDir(), "tiny-clip");
    await makeTinyClip(clipDir, { seed: 3 });
    promptsFile = join(tempDir(), "prompts.txt");
    await writeFile(promptsFile, `# three prompts; the first and last are the same\n${PROMPTS[0]}\n\n${PROMPTS[1]}\n# comment\n${PROMPTS[2]}\n`);
    fake = await standIn();
    outS = tempDir();
  });
  after(async () => {
    await fake?.close();
  });

  it("determinism passes against graphserve; CLIP scores in [0, 100]; 3 requests per prompt, as the server logged", async () => {
    const before = generationsLogged(server).length;
    first = await runAccuracy({ url: server.url, model: "tiny", prompts: PROMPTS, seed: SEED, size: "64x64", steps: 2, clipDir, outDir: outS });
    const s = first.summary;
    assert.equal(s.prompts, 3);
    assert.equal(s.requests, 9);
    assert.equal(s.errors, 0);
    assert.equal(s.deterministic, 3);
    assert.equal(s.passed, true);
    for (const r of first.results) {
      assert.ok(r.ok && r.sameSeedIdentical && r.nextSeedDiffers, JSON.stringify(r));
      assert.equal(r.width, 64);
      assert.equal(r.height, 64);
      assert.equal(r.latencyMs.length, 3);
      // The tiny CLIP's embeddings share an offset, so scores are inside (0, 100), not clamped to 0.
      assert.ok(r.clipScore !== undefined && r.clipScore > 0 && r.clipScore < 100, `${r.clipScore}`);
    }
    // Same prompt, same seed → same image → same CLIP score; a different prompt gives a different image.
    assert.equal(first.results[0].sha256, first.results[2].sha256);
    assert.equal(first.results[0].clipScore, first.results[2].clipScore);
    assert.notEqual(first.results[0].sha256, first.results[1].sha256);
    assert.notEqual(first.results[0].clipScore, first.results[1].clipScore);
    const mean = first.results.reduce((a, r) => a + r.clipScore!, 0) / 3;
    assert.ok(Math.abs(s.meanClipScore! - mean) < 1e-9);
    const lines = await expectLogged(server, before, 9);
    assert.ok(lines.every((l) => l.status === 200 && l.servable === "tiny"), JSON.stringify(lines));
    // --out: the seed-S images, byte for byte as the server sent them.
    assert.deepEqual((await readdir(outS)).sort(), [`0-seed${SEED}.png`, `1-seed${SEED}.png`, `2-seed${SEED}.png`]);
    assert.equal((await sharp(await readFile(join(outS, `1-seed${SEED}.png`))).metadata()).format, "png");
  });

  it("references made of the server's own seed-S images: PSNR ∞ and SSIM 1", async () => {
    const refs = await referencesFrom(outS, SEED);
    const before = generationsLogged(server).length;
    const r = await runAccuracy({ url: server.url, model: "tiny", prompts: PROMPTS, seed: SEED, size: "64x64", steps: 2, referenceDir: refs });
    await expectLogged(server, before, 9);
    assert.equal(r.summary.passed, true);
    assert.equal(r.summary.references, 3);
    assert.equal(r.summary.identicalToReference, 3);
    assert.equal(r.summary.meanPsnr, undefined);
    assert.equal(r.summary.meanSsim, 1);
    for (const x of r.results) {
      assert.equal(x.reference!.psnr, Infinity);
      assert.equal(x.reference!.ssim, 1);
      assert.equal(x.reference!.resized, false);
    }
  });

  it("references from seed S+1 (one a smaller JPEG, one missing): finite PSNR, SSIM < 1, resizing reported", async () => {
    const outNext = tempDir();
    await runAccuracy({ url: server.url, model: "tiny", prompts: PROMPTS.slice(0, 2), seed: SEED + 1, size: "64x64", steps: 2, outDir: outNext });
    const refs = await referencesFrom(outNext, SEED + 1);
    // Reference 1 as a 48×48 JPEG: the generated image is resized to it.
    await sharp(await readFile(join(refs, "1.png"))).resize(48, 48).jpeg().toFile(join(refs, "1.jpg"));
    await unlink(join(refs, "1.png"));
    const r = await runAccuracy({ url: server.url, model: "tiny", prompts: PROMPTS, seed: SEED, size: "64x64", steps: 2, referenceDir: refs });
    assert.equal(r.summary.passed, true);
    const [a, b, c] = r.results;
    assert.ok(Number.isFinite(a.reference!.psnr) && a.reference!.psnr > 0);
    assert.ok(a.reference!.ssim < 1 && a.reference!.ssim > -1);
    assert.equal(a.reference!.resized, false);
    assert.equal(b.reference!.resized, true);
    assert.equal(b.reference!.width, 48);
    assert.ok(Number.isFinite(b.reference!.psnr) && b.reference!.ssim < 1);
    assert.equal(c.reference, undefined);
    assert.equal(c.referenceMissing, true);
    assert.equal(r.summary.references, 2);
    assert.equal(r.summary.resizedForReference, 1);
    assert.equal(r.summary.identicalToReference, 0);
    assert.ok(Math.abs(r.summary.meanPsnr! - (a.reference!.psnr + b.reference!.psnr) / 2) < 1e-9);
  });

  it("the command against graphserve: table, summary, exit 0", async () => {
    const t = io();
    const code = await accuracyCommand(
      ["--url", server.url + "/", "--model", "tiny", "--prompts", promptsFile, "--clip", clipDir, "--reference", await referencesFrom(outS, SEED), "--size", "64x64", "--steps", "2", "--seed", String(SEED)],
      t.io,
    );
    assert.equal(code, 0, t.err.join("\n"));
    assert.match(t.out[0], /#\s+determinism\s+CLIP\s+PSNR dB\s+SSIM\s+prompt/);
    assert.equal(t.out.filter((l) => /^\s+\d\s+ok\s+\d+\.\d\d\s+inf\s+1\.0000\s+a/.test(l)).length, 3, t.out.join("\n"));
    assert.ok(t.out.some((l) => l.startsWith("determinism: 3/3 prompts ok") && l.includes("9 requests, 0 errors") && l.endsWith("PASS")));
    assert.ok(t.out.some((l) => l.startsWith("CLIP score: mean")));
    assert.ok(t.out.some((l) => l.startsWith("reference: 3/3 compared") && l.includes("3 identical")));
    assert.equal(t.err.length, 3); // progress lines
  });

  it("--json prints one parseable document matching the direct run", async () => {
    const t = io();
    const code = await accuracyCommand(
      ["--url", server.url, "--model", "tiny", "--prompts", promptsFile, "--clip", clipDir, "--reference", await referencesFrom(outS, SEED), "--size", "64x64", "--steps", "2", "--seed", String(SEED), "--json"],
      t.io,
    );
    assert.equal(code, 0);
    assert.equal(t.out.length, 1);
    assert.equal(t.err.length, 0);
    const j = JSON.parse(t.out[0]);
    assert.equal(j.summary.passed, true);
    assert.equal(j.summary.requests, 9);
    assert.equal(j.seed, SEED);
    assert.equal(j.results[0].reference.psnr, "Infinity");
    assert.equal(j.results[0].reference.ssim, 1);
    assert.deepEqual(j.results.map((r: { sha256: string }) => r.sha256), first.results.map((r) => r.sha256));
    assert.deepEqual(j.results.map((r: { clipScore: number }) => r.clipScore), first.results.map((r) => r.clipScore));
  });

  it("a non-deterministic server fails determinism (exit 1); it saw seeds S, S, S+1 per prompt, with the flags' fields", async () => {
    const t = io();
    const n0 = fake.seen.length;
    const code = await accuracyCommand(
      ["--url", fake.url, "--path", "/v1/images/generations", "--model", "m", "--prompts", promptsFile, "--seed", "7", "--size", "16x16", "--steps", "3", "--api-key", "sk-test", "--json"],
      t.io,
    );
    assert.equal(code, 1);
    const j = JSON.parse(t.out.join("\n"));
    assert.equal(j.summary.passed, false);
    assert.equal(j.summary.deterministic, 0);
    assert.equal(j.summary.requests, 9);
    for (const r of j.results) {
      assert.equal(r.sameSeedIdentical, false);
      assert.equal(r.nextSeedDiffers, true);
      assert.equal(r.ok, false);
    }
    const seen = fake.seen.slice(n0);
    assert.equal(seen.length, 9);
    assert.deepEqual(seen.map((s) => s.body.rng_seed), [7, 7, 8, 7, 7, 8, 7, 7, 8]);
    assert.deepEqual(seen.map((s) => s.body.prompt), PROMPTS.flatMap((p) => [p, p, p]));
    for (const s of seen) {
      assert.equal(s.path, "/v1/images/generations");
      assert.equal(s.auth, "Bearer sk-test");
      assert.deepEqual(s.body, { model: "m", prompt: s.body.prompt, n: 1, rng_seed: s.body.rng_seed, response_format: "b64_json", size: "16x16", num_inference_steps: 3 });
    }
  });

  it("injected server errors are reported per prompt and counted; exit 1", async () => {
    const file = join(tempDir(), "p.txt");
    await writeFile(file, "a cat\nplease fail\na dog\n");
    const n0 = fake.seen.length;
    const t = io();
    const code = await accuracyCommand(["--url", fake.url, "--path", "v1/images/generations", "--model", "m", "--prompts", file], t.io);
    assert.equal(code, 1);
    // 3 + 1 (the failing prompt stops at its first request) + 3
    assert.equal(fake.seen.length - n0, 7);
    assert.ok(t.out.some((l) => l.includes("7 requests, 1 errors") && l.endsWith("FAIL")), t.out.join("\n"));
    assert.ok(t.out.some((l) => /^prompt 1: seed 42: HTTP 500: injected failure$/.test(l)), t.out.join("\n"));
    assert.ok(/^\s+1\s+ERROR/.test(t.out[2]), t.out[2]);
    // Nothing listening: every prompt errors, still a report.
    const dead = await runAccuracy({ url: "http://127.0.0.1:1", model: "m", prompts: ["x"], timeoutMs: 5000 });
    assert.equal(dead.summary.errors, 1);
    assert.match(dead.results[0].error!, /request failed/);
  });

  it("bad flags and unusable inputs: exit 2 with a one-line message, no request sent", async () => {
    const empty = join(tempDir(), "empty.txt");
    await writeFile(empty, "# nothing\n\n");
    const notClip = tempDir();
    const ok = ["--url", fake.url, "--model", "m", "--prompts", promptsFile];
    const cases: [string[], RegExp][] = [
      [[], /--url is required/],
      [["--url", fake.url, "--model", "m"], /--prompts is required/],
      [[...ok, "--bogus"], /bogus/],
      [["--url", "not a url", "--model", "m", "--prompts", promptsFile], /--url must be/],
      [["--url", "ftp://x", "--model", "m", "--prompts", promptsFile], /--url must be/],
      [[...ok, "--size", "64"], /--size must be WxH/],
      [[...ok, "--steps", "0"], /--steps must be a positive integer/],
      [[...ok, "--seed", "-1"], /seed/],
      [[...ok, "--seed", "1.5"], /--seed must be/],
      [["--url", fake.url, "--model", "m", "--prompts", join(notClip, "missing.txt")], /cannot read \(ENOENT\)/],
      [["--url", fake.url, "--model", "m", "--prompts", empty], /no prompts/],
      [[...ok, "--clip", join(notClip, "nope")], /--clip .*not a directory/],
      [[...ok, "--clip", notClip], /preprocessor_config\.json/],
      [[...ok, "--timeout", "3000000"], /--timeout must be at most 2147483 s/],
      [[...ok, "--reference", join(notClip, "nope")], /--reference .*not a directory/],
      [[...ok, "--check", "clip"], /--check must be one of demo-shapes, not "clip"/],
      [[...ok, "--check", "demo-shapes"], /--check demo-shapes: prompt 0 is not "a <colour> <shape> on a <colour> background"/],
    ];
    const n0 = fake.seen.length;
    for (const [argv, msg] of cases) {
      const t = io();
      const code = await accuracyCommand(argv, t.io);
      assert.equal(code, 2, `${argv.join(" ")} → ${code}`);
      assert.equal(t.err.length, 1, t.err.join("\n"));
      assert.match(t.err[0], /^graphserve accuracy: /);
      assert.match(t.err[0], msg);
      assert.ok(!t.err[0].includes("\n"));
      assert.equal(t.out.length, 0);
    }
    assert.equal(fake.seen.length, n0);
    const t = io();
    assert.equal(await accuracyCommand(["--help"], t.io), 0);
    assert.ok(t.out[0].includes(ACCURACY_USAGE));
  });

  it("more than 1000 prompts is refused", async () => {
    const file = join(tempDir(), "many.txt");
    await writeFile(file, Array.from({ length: 1001 }, (_, i) => `prompt ${i}`).join("\n"));
    const t = io();
    assert.equal(await accuracyCommand(["--url", fake.url, "--model", "m", "--prompts", file], t.io), 2);
    assert.match(t.err[0], /1001 prompts, at most 1000/);
  });
});



describe("review regressions", () => {
  it("an answer cut off mid-body is that prompt's error (exit 1), not a local failure (exit 2)", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      res.write('{"data":[{"b64_json":"iVBOR');
      setTimeout(() => res.destroy(), 20);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    after(() => server.close());
    const prompts = join(tempDir(), "p.txt");
    await writeFile(prompts, "a cat\n");
    const out: string[] = [];
    const err: string[] = [];
    const code = await accuracyCommand(["--url", `http://127.0.0.1:${(server.address() as AddressInfo).port}`, "--model", "m", "--prompts", prompts], { out: (l) => out.push(l), err: (l) => err.push(l) });
    assert.equal(code, 1, err.join("\n"));
    assert.match(out.join("\n"), /request failed/);
  });

  it("a corrupt local reference is a local error (exit 2), not a determinism failure of the server", async () => {
    const server = await startImageServer("acc-ref-review");
    const prompts = join(tempDir(), "p.txt");
    await writeFile(prompts, "a cat\n");
    const refs = tempDir();
    await writeFile(join(refs, "0.png"), "not a png");
    const err: string[] = [];
    const code = await accuracyCommand(["--url", server.url, "--model", "acc-ref-review", "--prompts", prompts, "--size", "64x64", "--steps", "1", "--reference", refs], { out: () => undefined, err: (l) => err.push(l) });
    assert.equal(code, 2);
    assert.match(err.at(-1)!, /reference .*0\.png/);
  });
});
