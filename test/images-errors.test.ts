/**
 * Bad images requests against the real server (tiny SD model): every one is
 * refused with the right status, OVMS's message where OVMS has one, the
 * offending `param`, and OpenAI's error shape; afterwards the server is still
 * healthy, still generates, and logged no internal error.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { crc32, deflateSync } from "node:zlib";
import sharp from "sharp";
import { imageInfo, imageServable, solidImage, startImageServer, tinyModel } from "./image-server.js";
import { call, errorOf, start, type Reply, type TestServer } from "./server-helpers.js";

const GEN = "/v3/images/generations";
const EDIT = "/v3/images/edits";
const MODEL = "tiny";

type Body = NonNullable<Parameters<typeof fetch>[1]>["body"];

interface Row {
  readonly name: string;
  readonly path: string;
  /** A JSON body, or a builder of a multipart/raw body. */
  readonly json?: unknown;
  readonly body?: () => Promise<Body> | Body;
  readonly contentType?: string;
  readonly status: number;
  readonly message: string;
  /** Expected `param`; omitted: not checked. */
  readonly param?: string | null;
  readonly code?: string | null;
  /** Upper bound on the answer's latency. */
  readonly withinMs?: number;
  readonly todo?: string;
  /** Runs against the small-body-limit server. */
  readonly small?: boolean;
}

const gen = (extra: Record<string, unknown>) => ({ model: MODEL, prompt: "a red square", ...extra });

/** A PNG chunk: length, type, data, CRC. */
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * A decompression bomb: a valid 1-bit greyscale PNG of `side`×`side` single-colour
 * pixels. 20000² is 400 Mpx (1.2 GB as RGB) in about 50 kB.
 */
function bombPng(side: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const rowBytes = 1 + Math.ceil(side / 8); // filter byte + packed pixels
  const raw = Buffer.alloc(rowBytes * side); // all zero: filter 0, black
  return Buffer.concat([PNG_SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw, { level: 9 })), chunk("IEND", Buffer.alloc(0))]);
}

/** Deterministic non-image bytes (an LCG), so no run starts with an image signature by chance. */
function noise(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = 12345;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  out[0] = 0x00; // never 0x89/0xff/'R'/'G'/'B'
  return out;
}

/** A multipart edit: text fields plus file parts (field, bytes, type), and text fields appended again (sent twice). */
function form(fields: Record<string, string>, files: [field: string, bytes: Uint8Array, type: string][], repeated: [field: string, value: string][] = []): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  for (const [k, v] of repeated) f.append(k, v);
  for (const [i, [field, bytes, type]] of files.entries()) f.append(field, new Blob([bytes], { type }), `upload-${i}.${type.split("/")[1] ?? "bin"}`);
  return f;
}

const editFields = { model: MODEL, prompt: "make it blue" };

let image64: Buffer;
let mask32: Buffer;
let bomb: Buffer;

const rows: Row[] = [
  // Generations: each field of the wrong type or out of range.
  { name: "prompt is a number", path: GEN, json: gen({ prompt: 5 }), status: 400, message: "prompt field is not a string", param: "prompt" },
  { name: "n is a string (JSON)", path: GEN, json: gen({ n: "2" }), status: 400, message: "n field is not a int", param: "n" },
  { name: "n is 0", path: GEN, json: gen({ n: 0 }), status: 400, message: "num_images_per_prompt/n must be higher than 0", param: "n" },
  { name: "n over max_num_images_per_prompt", path: GEN, json: gen({ n: 11 }), status: 400, message: "num_images_per_prompt/n is greater than maxNumImagesPerPrompt: 10", param: "n" },
  { name: "num_inference_steps 0", path: GEN, json: gen({ num_inference_steps: 0 }), status: 400, message: "num_inference_steps must be higher than 0", param: "num_inference_steps" },
  { name: "num_inference_steps over max", path: GEN, json: gen({ num_inference_steps: 2001 }), status: 400, message: "num_inference_steps is greater than maxNumInferenceSteps: 2000", param: "num_inference_steps" },
  // What only the model can judge is still refused up front as plain JSON, streamed or not.
  { name: "more steps than the model's training schedule", path: GEN, json: gen({ num_inference_steps: 1500 }), status: 400, message: "exceeds num_train_timesteps (1000)" },
  { name: "more steps than the schedule, streamed: a 400, not an event stream", path: GEN, json: gen({ num_inference_steps: 1500, stream: true }), status: 400, message: "exceeds num_train_timesteps (1000)" },
  { name: "an edit whose strength leaves no denoising step", path: EDIT, body: () => form({ ...editFields, strength: "0.1", num_inference_steps: "5" }, [["image", image64, "image/png"]]), status: 400, message: "leaves no denoising step" },
  { name: "rng_seed -1", path: GEN, json: gen({ rng_seed: -1 }), status: 400, message: "rng_seed must be an integer in [0, 2^53), got -1", param: "rng_seed" },
  { name: "rng_seed 1.5", path: GEN, json: gen({ rng_seed: 1.5 }), status: 400, message: "rng_seed field is not a size_t", param: "rng_seed" },
  { name: "rng_seed a string", path: GEN, json: gen({ rng_seed: "42" }), status: 400, message: "rng_seed field is not a size_t", param: "rng_seed" },
  { name: "guidance_scale a string", path: GEN, json: gen({ guidance_scale: "7.5" }), status: 400, message: "guidance_scale field is not a float", param: "guidance_scale" },
  // The fields FLUX and SD3 requests carry (OVMS's accept-list), wrong on both transports.
  { name: "prompt_3 a number", path: GEN, json: gen({ prompt_3: 3 }), status: 400, message: "prompt_3 field is not a string", param: "prompt_3" },
  { name: "negative_prompt_2 null", path: GEN, json: gen({ negative_prompt_2: null }), status: 400, message: "negative_prompt_2 field is not a string", param: "negative_prompt_2" },
  { name: "max_sequence_length a string (JSON)", path: GEN, json: gen({ max_sequence_length: "256" }), status: 400, message: "max_sequence_length field is not a int", param: "max_sequence_length" },
  { name: "max_sequence_length 0", path: GEN, json: gen({ max_sequence_length: 0 }), status: 400, message: "max_sequence_length must be higher than 0", param: "max_sequence_length" },
  { name: "max_sequence_length not a number (multipart)", path: EDIT, body: () => form({ ...editFields, max_sequence_length: "long" }, [["image", image64, "image/png"]]), status: 400, message: "max_sequence_length field is not a int32", param: "max_sequence_length" },
  { name: "max_sequence_length past int32 (multipart)", path: EDIT, body: () => form({ ...editFields, max_sequence_length: "4294967296" }, [["image", image64, "image/png"]]), status: 400, message: "max_sequence_length field is not a int32", param: "max_sequence_length" },
  { name: "prompt_3 twice (multipart)", path: EDIT, body: () => form({ ...editFields, prompt_3: "a" }, [["image", image64, "image/png"]], [["prompt_3", "b"]]), status: 400, message: "prompt_3 field must be given only once", param: "prompt_3" },
  { name: "strength 1.5", path: GEN, json: gen({ strength: 1.5 }), status: 400, message: "strength is greater than maxStrength: 1", param: "strength" },
  { name: "strength -0.1", path: GEN, json: gen({ strength: -0.1 }), status: 400, message: "strength is less than minStrength: 0", param: "strength" },
  { name: "size abc", path: GEN, json: gen({ size: "abc" }), status: 400, message: "size field is not in correct format - WxH", param: "size" },
  { name: "size 0x64", path: GEN, json: gen({ size: "0x64" }), status: 400, message: "size field values must be greater than 0", param: "size" },
  { name: "size over max_resolution", path: GEN, json: gen({ size: "1024x1024" }), status: 400, message: "requested resolution 1024x1024 exceeds maxResolution: 512x512", param: "size" },
  { name: "width without height", path: GEN, json: gen({ width: 64 }), status: 400, message: "requested width but height is missing", param: "height" },
  { name: "size not a multiple of 8", path: GEN, json: gen({ size: "65x64" }), status: 400, message: "width and height must be multiples of 8", param: "size" },
  { name: "response_format url", path: GEN, json: gen({ response_format: "url" }), status: 400, message: "Unsupported response_format: url. Only b64_json is supported.", param: "response_format" },
  { name: "output_format gif", path: GEN, json: gen({ output_format: "gif" }), status: 400, message: "Unsupported output_format: gif", param: "output_format" },
  { name: "output_compression 101", path: GEN, json: gen({ output_format: "jpeg", output_compression: 101 }), status: 400, message: "output_compression must be between 0 and 100, got 101", param: "output_compression" },
  { name: "background purple", path: GEN, json: gen({ background: "purple" }), status: 400, message: "Unsupported background: purple", param: "background" },
  { name: "partial_images 4", path: GEN, json: gen({ partial_images: 4, stream: true }), status: 400, message: "partial_images must be between 0 and 3, got 4", param: "partial_images" },
  { name: "stream \"yes\" (JSON)", path: GEN, json: gen({ stream: "yes" }), status: 400, message: "stream field is not a boolean", param: "stream" },
  { name: "lora_alphas without adapters", path: GEN, json: gen({ lora_alphas: { pixel: 0.5 } }), status: 400, message: "lora_alphas is not supported: no LoRA adapters are configured", param: "lora_alphas" },
  { name: "unknown field", path: GEN, json: gen({ foo: 1 }), status: 400, message: "Unhandled parameter: foo", param: "foo" },
  { name: "missing prompt", path: GEN, json: { model: MODEL }, status: 400, message: "prompt field is missing in JSON body", param: "prompt" },
  { name: "missing model", path: GEN, json: { prompt: "x" }, status: 400, message: "The file is not valid json - model field is missing in JSON body", param: "model" },
  { name: "model not a string", path: GEN, json: { model: 7, prompt: "x" }, status: 400, message: "The file is not valid json - model field is not a string", param: "model" },
  { name: "unknown model", path: GEN, json: { model: "no-such-model", prompt: "x" }, status: 404, message: "Mediapipe graph definition with requested name is not found", param: "model", code: "model_not_found" },
  { name: "text/plain body", path: GEN, body: () => JSON.stringify(gen({})), contentType: "text/plain", status: 415, message: 'Unsupported Content-Type "text/plain"', code: "unsupported_content_type" },
  { name: "malformed JSON", path: GEN, body: () => '{"model": "tiny", "prompt": ', contentType: "application/json", status: 400, message: "The file is not valid json - Cannot parse JSON body" },
  { name: "JSON body not an object", path: GEN, body: () => "[1,2]", contentType: "application/json", status: 400, message: "The file is not valid json - JSON body must be an object" },
  { name: "generations sent as multipart", path: GEN, body: () => form({ model: MODEL, prompt: "x" }, []), status: 415, message: "/images/generations expects a JSON body", code: "unsupported_content_type" },

  // Edits.
  { name: "edit without an image part", path: EDIT, body: () => form(editFields, []), status: 400, message: "Image field is missing in multipart body", param: "image" },
  { name: "edit with a corrupt PNG", path: EDIT, body: () => form(editFields, [["image", Buffer.concat([PNG_SIGNATURE, Buffer.from(noise(2000))]), "image/png"]]), status: 400, message: "Image parsing failed: image: invalid PNG data", param: "image", code: "invalid_image_file" },
  { name: "edit with random bytes labelled image/png", path: EDIT, body: () => form(editFields, [["image", noise(4096), "image/png"]]), status: 400, message: "Image parsing failed: image is not a PNG, JPEG, WebP, GIF or BMP image", param: "image" },
  { name: "edit with a text file labelled image/png", path: EDIT, body: () => form(editFields, [["image", Buffer.from("hello, I am not a picture\n".repeat(20)), "image/png"]]), status: 400, message: "Image parsing failed: image is not a PNG, JPEG, WebP, GIF or BMP image", param: "image" },
  { name: "edit with an empty image part", path: EDIT, body: () => form(editFields, [["image", new Uint8Array(0), "image/png"]]), status: 400, message: "Image parsing failed: image is empty", param: "image" },
  { name: "edit with a mask of the wrong size", path: EDIT, body: () => form(editFields, [["image", image64, "image/png"], ["mask", mask32, "image/png"]]), status: 400, message: "mask size 32x32 does not match image size 64x64", param: "mask" },
  // From the headers, before any pixel is decoded: the image's pixel data here is cut short.
  { name: "edit with a mask of the wrong size and an image that would not decode: the size is refused first", path: EDIT, body: () => form(editFields, [["image", image64.subarray(0, image64.length - 30), "image/png"], ["mask", mask32, "image/png"]]), status: 400, message: "mask size 32x32 does not match image size 64x64", param: "mask" },
  { name: "edit with a mask that is not an image", path: EDIT, body: () => form(editFields, [["image", image64, "image/png"], ["mask", Buffer.from("not a mask"), "image/png"]]), status: 400, message: "Image parsing failed: mask is not a PNG, JPEG, WebP, GIF or BMP image", param: "mask" },
  { name: "edit with 17 images", path: EDIT, body: () => form(editFields, Array.from({ length: 17 }, () => ["image[]", image64, "image/png"] as [string, Uint8Array, string])), status: 400, message: "17 images sent; at most 16 are accepted", param: "image" },
  { name: "edit with an unknown file field", path: EDIT, body: () => form(editFields, [["image", image64, "image/png"], ["sketch", image64, "image/png"]]), status: 400, message: "Unhandled parameter: sketch", param: "sketch" },
  { name: "edit with an unknown text field", path: EDIT, body: () => form({ ...editFields, foo: "1" }, [["image", image64, "image/png"]]), status: 400, message: "Unhandled parameter: foo", param: "foo" },
  { name: "edit with a decompression-bomb PNG (20000x20000)", path: EDIT, body: () => form(editFields, [["image", bomb, "image/png"]]), status: 400, message: "image is 20000x20000 (400000000 pixels), more than the limit", param: "image", code: "invalid_image_file", withinMs: 2000 },
  { name: "edit sent as JSON", path: EDIT, json: { model: MODEL, prompt: "x", image: "aGVsbG8=" }, status: 415, message: "/images/edits expects a multipart/form-data body", code: "unsupported_content_type" },
  { name: "edit over the body limit (small-limit server)", path: EDIT, body: () => form(editFields, [["image", noise(100 * 1024), "image/png"]]), status: 413, message: "Request body is larger than the server's limit of 65536 bytes", code: "request_too_large", small: true },
];

function assertOpenAiError(r: Reply): ReturnType<typeof errorOf> {
  const e = errorOf(r);
  assert.deepEqual(Object.keys(r.body as object), ["error"], `only "error" at the top: ${r.text}`);
  assert.deepEqual(Object.keys(e).sort(), ["code", "message", "param", "type"], `error keys: ${r.text}`);
  assert.equal(typeof e.message, "string");
  assert.equal(typeof e.type, "string");
  assert.ok(e.param === null || typeof e.param === "string", `param: ${r.text}`);
  assert.ok(e.code === null || typeof e.code === "string", `code: ${r.text}`);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  return e;
}

describe("images: bad requests", () => {
  let server: TestServer;
  let small: TestServer;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  before(async () => {
    process.on("unhandledRejection", onUnhandled);
    process.on("uncaughtException", onUnhandled);
    [server, small, image64, mask32] = await Promise.all([
      startImageServer(MODEL),
      imageServable().then((path) => start({ single: { name: MODEL, path }, maxBodyBytes: 64 * 1024 })),
      solidImage(64, 64),
      solidImage(32, 32, "png", { r: 255, g: 255, b: 255 }),
    ]);
    bomb = bombPng(20000);
  });
  after(() => {
    process.off("unhandledRejection", onUnhandled);
    process.off("uncaughtException", onUnhandled);
  });

  for (const row of rows) {
    test(row.name, row.todo === undefined ? {} : { todo: row.todo }, async () => {
      const target = row.small ? small : server;
      const headers: Record<string, string> = {};
      if (row.contentType !== undefined) headers["content-type"] = row.contentType;
      const t0 = performance.now();
      const r = row.json !== undefined
        ? await call(target.url, "POST", row.path, { json: row.json, headers })
        : await call(target.url, "POST", row.path, { body: await row.body!(), headers });
      const ms = performance.now() - t0;
      assert.equal(r.status, row.status, `status (body: ${r.text})`);
      const e = assertOpenAiError(r);
      assert.ok(e.message.includes(row.message), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(row.message)}`);
      if (row.param !== undefined) assert.equal(e.param, row.param, `param (body: ${r.text})`);
      if (row.code !== undefined) assert.equal(e.code, row.code, `code (body: ${r.text})`);
      if (row.status === 429 || row.status === 503) assert.ok(r.headers.get("retry-after"));
      if (row.withinMs !== undefined) assert.ok(ms < row.withinMs, `answered in ${Math.round(ms)} ms, limit ${row.withinMs} ms`);
    });
  }

  test("decodes that fail inside libvips give their turn back: more such edits at once than decoding turns, each a 400, then a valid edit", { timeout: 60_000 }, async () => {
    // Headers intact (so every check before decoding passes), pixel data cut short.
    const cut = image64.subarray(0, image64.length - 30);
    const count = 2 * availableParallelism() + 1;
    const replies = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        call(server.url, "POST", EDIT, { body: form(editFields, i % 2 === 0 ? [["image", cut, "image/png"]] : [["image", image64, "image/png"], ["mask", cut, "image/png"]]) }),
      ),
    );
    for (const r of replies) {
      assert.equal(r.status, 400, r.text);
      assert.match(assertOpenAiError(r).message, /^Image parsing failed: (image|mask): invalid PNG data/);
    }
    const ok = await call(server.url, "POST", EDIT, { body: form(editFields, [["image", image64, "image/png"]]) });
    assert.equal(ok.status, 200, ok.text);
  });

  test("the decompression bomb really is small and huge", () => {
    assert.ok(bomb.length < 256 * 1024, `${bomb.length} bytes`);
    assert.equal(bomb.readUInt32BE(16), 20000);
  });

  test("afterwards: live and ready are 200", async () => {
    assert.equal((await server.request("GET", "/v2/health/live")).status, 200);
    assert.equal((await server.request("GET", "/v2/health/ready")).status, 200);
    assert.equal((await small.request("GET", "/v2/health/live")).status, 200);
  });

  test("afterwards: a valid generation and a valid edit succeed", async () => {
    const g = await server.request("POST", GEN, { json: gen({ rng_seed: 3 }) });
    assert.equal(g.status, 200, g.text);
    const data = (g.body as { data: { b64_json: string }[] }).data;
    assert.equal(data.length, 1);
    assert.deepEqual(await imageInfo(data[0].b64_json), { width: 64, height: 64, format: "png" });

    const ed = await server.request("POST", EDIT, { body: form({ ...editFields, rng_seed: "3" }, [["image", image64, "image/png"]]) });
    assert.equal(ed.status, 200, ed.text);
    assert.deepEqual(await imageInfo((ed.body as { data: { b64_json: string }[] }).data[0].b64_json), { width: 64, height: 64, format: "png" });
  });

  test("afterwards: no internal error was logged and nothing went unhandled", () => {
    for (const s of [server, small]) {
      const errors = s.logs.filter((l) => typeof l.level === "number" && l.level >= 50);
      assert.deepEqual(errors, [], "error/fatal log lines");
      const statuses = s.logs.map((l) => l.status ?? (l.res as { statusCode?: number } | undefined)?.statusCode).filter((x): x is number => typeof x === "number");
      assert.ok(statuses.length > 0, "the access log has request lines");
      assert.ok(statuses.every((st) => st < 500), `5xx in access log: ${statuses.filter((st) => st >= 500).join(",")}`);
    }
    assert.deepEqual(unhandled, []);
  });
});

describe("images: bad servables", () => {
  const statusOf = async (server: TestServer, name: string) =>
    ((await server.request("GET", "/v1/config")).body as Record<string, { model_version_status: { state: string; status: { error_code: string; error_message: string } }[] }>)[name]
      .model_version_status[0];

  test("LoRA adapters in the graph: the load fails saying no backend can apply them; requests get 503", async () => {
    const path = await imageServable({ options: `lora_adapters { alias: "pixel" path: "loras/pixel.safetensors" }` });
    const server = await start({ single: { name: "lora", path } });
    const st = await statusOf(server, "lora");
    assert.equal(st.status.error_code, "FAILED_PRECONDITION");
    assert.match(st.status.error_message, /lora_adapters, but neither of graphserve's backends can apply LoRA/);
    const r = await server.request("POST", "/v3/images/generations", { json: { model: "lora", prompt: "a" } });
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("x-should-retry"), "false");
  });

  test("models_path pointing nowhere: the load fails naming the folder", async () => {
    const path = await imageServable({ options: `device: "CPU"` });
    const { readFileSync, writeFileSync } = await import("node:fs");
    const file = `${path}/graph.pbtxt`;
    writeFileSync(file, readFileSync(file, "utf8").replace(/models_path: "[^"]*"/, 'models_path: "no/such/model"'));
    const server = await start({ single: { name: "nomodel", path } });
    const st = await statusOf(server, "nomodel");
    assert.equal(st.state, "LOADING");
    assert.match(st.status.error_message, /no\/such\/model cannot be read \(ENOENT\)/);

    // The folder restored (graph.pbtxt untouched): a reload retries the failed load instead of keeping its status.
    const { cpSync } = await import("node:fs");
    cpSync(await tinyModel(), `${path}/no/such/model`, { recursive: true });
    const reload = await server.request("POST", "/v1/config/reload");
    assert.equal(reload.status, 201, reload.text);
    const fixed = await statusOf(server, "nomodel");
    assert.deepEqual([fixed.state, fixed.status.error_code, fixed.status.error_message], ["AVAILABLE", "OK", "OK"]);
    const r = await server.request("POST", "/v3/images/generations", { json: { model: "nomodel", prompt: "a", rng_seed: 1 } });
    assert.equal(r.status, 200, r.text);
    // Nothing changed since: a second reload loads nothing.
    assert.equal((await server.request("POST", "/v1/config/reload")).status, 200);
  });
});

test("a mode the model has no pipeline for is 412 with OVMS's text (an inpainting-only model asked for text-to-image or an opaque edit without mask); a transparent image without mask inpaints there", async () => {
  const { makeTinyModel } = await import("../src/backends/onnx/tiny/make-tiny-model.js");
  const { mkdirSync, readFileSync, writeFileSync } = await import("node:fs");
  const path = await imageServable();
  const modelDir = `${path}/inpaint-model`;
  mkdirSync(modelDir);
  await makeTinyModel(modelDir, { family: "sd", inpainting: true, seed: 3 });
  const file = `${path}/graph.pbtxt`;
  writeFileSync(file, readFileSync(file, "utf8").replace(/models_path: "[^"]*"/, 'models_path: "inpaint-model"'));
  const server = await start({ single: { name: "inpaint", path } });
  const r = await server.request("POST", GEN, { json: { model: "inpaint", prompt: "a" } });
  assert.equal(r.status, 412, r.text);
  assert.match(assertOpenAiError(r).message, /Mediapipe graph precondition failed - FAILED_PRECONDITION: [\s\S]*Text-to-image pipeline is not available for this model/);
  const fields = { model: "inpaint", prompt: "a", size: "64x64", num_inference_steps: "2" };
  const opaque = await server.request("POST", EDIT, { body: form(fields, [["image", await solidImage(64, 64), "image/png"]]) });
  assert.equal(opaque.status, 412, opaque.text);
  assert.match(assertOpenAiError(opaque).message, /^Image-to-image pipeline is not available for this model\n/);
  // Refused before the image is decoded: pixel data cut short still gets the 412, not a parsing 400.
  const cut = await solidImage(64, 64);
  const unread = await server.request("POST", EDIT, { body: form(fields, [["image", cut.subarray(0, cut.length - 30), "image/png"]]) });
  assert.equal(unread.status, 412, unread.text);
  // Transparent on the left half: OpenAI's rule makes that the mask, so the edit is an inpainting.
  const px = Buffer.alloc(64 * 64 * 4, 200);
  for (let p = 0; p < 64 * 64; p++) px[p * 4 + 3] = p % 64 < 32 ? 0 : 255;
  const transparent = await sharp(px, { raw: { width: 64, height: 64, channels: 4 } }).png().toBuffer();
  const inpainted = await server.request("POST", EDIT, { body: form(fields, [["image", transparent, "image/png"]]) });
  assert.equal(inpainted.status, 200, inpainted.text);
});
