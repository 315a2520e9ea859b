import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http from "node:http";
import { mkdtemp, mkdir, writeFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { listFiles, modelInfo, fileDownloadInfo, HubApiError } from "@huggingface/hub";
import type { ListFileEntry } from "@huggingface/hub";
import { ProxyAgent, fetch as undiciFetch } from "undici";
import { startHubStandIn, startForwardProxy, DEFAULT_REVISION } from "./helpers/hub-stand-in.js";
import type { HubStandIn } from "./helpers/hub-stand-in.js";

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const gitBlob = (b: Uint8Array | string) => {
  const buf = typeof b === "string" ? Buffer.from(b) : b;
  return createHash("sha1").update(`blob ${buf.length}\0`).update(buf).digest("hex");
};

function pseudoRandom(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

async function collect(it: AsyncIterable<ListFileEntry>): Promise<ListFileEntry[]> {
  const out: ListFileEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const UNET = pseudoRandom(300_000, 7); // > 64 KiB so it is streamed in several chunks
const TEXT_ENCODER = pseudoRandom(5000, 3); // .onnx -> LFS even though small
const BIG_JSON = "x".repeat(11 * 1024); // > 10 KiB -> LFS
const FILES: Record<string, Uint8Array | string> = {
  "model_index.json": '{"_class_name":"StableDiffusionPipeline"}\n',
  "README.md": "hello\n",
  "unet/model.onnx": UNET,
  "unet/config.json": '{"sample_size":64}',
  "text_encoder/model.onnx": TEXT_ENCODER,
  "tokenizer/vocab.json": BIG_JSON,
  "tokenizer/merges.txt": "",
  "scheduler/scheduler_config.json": "{}",
};

describe("hub stand-in", () => {
  let hub: HubStandIn;

  before(async () => {
    hub = await startHubStandIn();
    hub.addRepo("org/sd", { files: FILES, libraryName: "diffusers" });
    hub.addRepo("org/gated", { files: { "a.bin": pseudoRandom(100), "b.txt": "b" }, gated: { token: "hf_good" } });
    hub.addRepo("org/gated-all", { files: { "a.txt": "a" }, gated: { token: "hf_good", listing: true } });
  });
  after(async () => {
    await hub.close();
  });

  test("url is loopback", () => {
    assert.match(hub.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test("listFiles collects every entry across pages with Hub-shaped oids", async () => {
    hub.pageSize = 3;
    const before = hub.requests.length;
    const entries = await collect(listFiles({ repo: "org/sd", recursive: true, hubUrl: hub.url }));
    hub.pageSize = 50;
    const treeRequests = hub.requests.slice(before).filter((r) => r.url.includes("/tree/"));
    const files = entries.filter((e) => e.type === "file");
    const dirs = entries.filter((e) => e.type === "directory");
    assert.deepEqual(files.map((f) => f.path).sort(), Object.keys(FILES).sort());
    assert.deepEqual(dirs.map((d) => d.path).sort(), ["scheduler", "text_encoder", "tokenizer", "unet"]);
    assert.equal(treeRequests.length, Math.ceil(entries.length / 3), "paginated with Link rel=next");
    assert.match(treeRequests[0].url, /^\/api\/models\/org\/sd\/tree\/main\?recursive=true&expand=false$/);
    assert.ok(treeRequests[1].url.includes("cursor="));
    for (const d of dirs) {
      assert.match(d.oid!, /^[0-9a-f]{40}$/);
      assert.equal(d.size, 0);
    }

    // independent known git blob ids
    assert.equal(files.find((f) => f.path === "README.md")!.oid, "ce013625030ba8dba906f756967f9e9ca394464a");
    assert.equal(files.find((f) => f.path === "tokenizer/merges.txt")!.oid, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");

    for (const f of files) {
      const content = FILES[f.path];
      const len = typeof content === "string" ? Buffer.byteLength(content) : content.length;
      assert.equal(f.size, len, `size of ${f.path}`);
      const shouldBeLfs = f.path.endsWith(".onnx") || len > 10 * 1024;
      if (shouldBeLfs) {
        assert.ok(f.lfs, `${f.path} is LFS`);
        assert.equal(f.lfs!.oid, sha256(content));
        assert.equal(f.lfs!.size, len);
        const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(content)}\nsize ${len}\n`;
        assert.equal(f.lfs!.pointerSize, pointer.length);
        assert.equal(f.oid, gitBlob(pointer), "LFS entry oid is the pointer's blob id");
      } else {
        assert.equal(f.lfs, undefined, `${f.path} is not LFS`);
        assert.equal(f.oid, gitBlob(content));
      }
    }
  });

  test("non-recursive listing and listing a sub-folder", async () => {
    const top = await collect(listFiles({ repo: "org/sd", hubUrl: hub.url }));
    assert.deepEqual(
      top.map((e) => e.path).sort(),
      ["README.md", "model_index.json", "scheduler", "text_encoder", "tokenizer", "unet"],
    );
    const unet = await collect(listFiles({ repo: "org/sd", path: "unet", hubUrl: hub.url }));
    assert.deepEqual(unet.map((e) => e.path).sort(), ["unet/config.json", "unet/model.onnx"]);
    const byRev = await collect(listFiles({ repo: "org/sd", recursive: true, revision: DEFAULT_REVISION, hubUrl: hub.url }));
    assert.equal(byRev.length, 12);
    await assert.rejects(collect(listFiles({ repo: "org/sd", revision: "nope", hubUrl: hub.url })), (e: unknown) => {
      assert.ok(e instanceof HubApiError);
      assert.equal(e.statusCode, 404);
      return true;
    });
  });

  test("modelInfo and the raw model info JSON", async () => {
    const info = await modelInfo({ name: "org/sd", hubUrl: hub.url });
    assert.equal(info.name, "org/sd");
    assert.match(info.id, /^[0-9a-f]{24}$/);
    assert.equal(info.private, false);
    assert.equal(info.gated, false);
    assert.equal(info.task, "text-to-image");
    assert.ok(info.updatedAt instanceof Date && !isNaN(info.updatedAt.getTime()));

    const res = await fetch(`${hub.url}/api/models/org/sd`);
    assert.equal(res.status, 200);
    const json = (await res.json()) as Record<string, unknown>;
    assert.equal(json.id, "org/sd");
    assert.equal(json.modelId, "org/sd");
    assert.equal(json.sha, DEFAULT_REVISION);
    assert.equal(json.library_name, "diffusers");
    assert.equal(json.disabled, false);
    assert.ok(Array.isArray(json.tags) && (json.tags as string[]).includes("diffusers"));
    assert.deepEqual(
      (json.siblings as { rfilename: string }[]).map((s) => s.rfilename).sort(),
      Object.keys(FILES).sort(),
    );
    const gated = await modelInfo({ name: "org/gated", hubUrl: hub.url });
    assert.equal(gated.gated, "manual");
  });

  test("resolve: plain file 200 with ETag and X-Repo-Commit", async () => {
    const res = await fetch(`${hub.url}/org/sd/resolve/main/model_index.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("etag"), `"${gitBlob(FILES["model_index.json"])}"`);
    assert.equal(res.headers.get("x-repo-commit"), DEFAULT_REVISION);
    assert.equal(await res.text(), FILES["model_index.json"]);

    const head = await fetch(`${hub.url}/org/sd/resolve/main/README.md`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "6");

    const missing = await fetch(`${hub.url}/org/sd/resolve/main/nope.txt`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("x-error-code"), "EntryNotFound");
  });

  test("resolve: LFS file 302 to the CDN, which serves the bytes", async () => {
    const manual = await fetch(`${hub.url}/org/sd/resolve/main/unet/model.onnx`, { redirect: "manual" });
    assert.equal(manual.status, 302);
    assert.equal(manual.headers.get("x-linked-size"), String(UNET.length));
    assert.equal(manual.headers.get("x-linked-etag"), `"${sha256(UNET)}"`);
    assert.equal(manual.headers.get("x-repo-commit"), DEFAULT_REVISION);
    const loc = manual.headers.get("location")!;
    assert.ok(loc.startsWith(`${hub.url}/cdn/${sha256(UNET)}?`), loc);
    await manual.body?.cancel();

    const before = hub.requests.length;
    const res = await fetch(`${hub.url}/org/sd/resolve/${DEFAULT_REVISION}/unet/model.onnx`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("accept-ranges"), "bytes");
    assert.ok(res.url.includes("/cdn/"));
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(sha256(body), sha256(UNET));
    const reqs = hub.requests.slice(before);
    assert.deepEqual(
      reqs.map((r) => [r.status, r.bytes === UNET.length]),
      [
        [302, false],
        [200, true],
      ],
    );

    const head = await fetch(`${hub.url}/org/sd/resolve/main/text_encoder/model.onnx`, { method: "HEAD", redirect: "manual" });
    assert.equal(head.status, 302);
    assert.equal(head.headers.get("x-linked-size"), String(TEXT_ENCODER.length));
  });

  test("fileDownloadInfo from @huggingface/hub understands the stand-in", async () => {
    const lfs = await fileDownloadInfo({ repo: "org/sd", path: "unet/model.onnx", hubUrl: hub.url });
    assert.equal(lfs?.size, UNET.length);
    assert.equal(lfs?.etag, `"${sha256(UNET)}"`);
    const plain = await fileDownloadInfo({ repo: "org/sd", path: "README.md", hubUrl: hub.url });
    assert.equal(plain?.size, 6);
    assert.equal(plain?.etag, `"${gitBlob("hello\n")}"`);
    assert.equal(await fileDownloadInfo({ repo: "org/sd", path: "nope", hubUrl: hub.url }), null);
  });

  test("Range requests: 206 with the right slice, 416 when unsatisfiable", async () => {
    const url = `${hub.url}/org/sd/resolve/main/unet/model.onnx`;
    const from = await fetch(url, { headers: { Range: "bytes=100000-" } });
    assert.equal(from.status, 206);
    assert.equal(from.headers.get("content-range"), `bytes 100000-${UNET.length - 1}/${UNET.length}`);
    assert.ok(Buffer.from(await from.arrayBuffer()).equals(UNET.subarray(100000)));

    const mid = await fetch(url, { headers: { Range: "bytes=10-19" } });
    assert.equal(mid.status, 206);
    assert.equal(mid.headers.get("content-range"), `bytes 10-19/${UNET.length}`);
    assert.equal(mid.headers.get("content-length"), "10");
    assert.ok(Buffer.from(await mid.arrayBuffer()).equals(UNET.subarray(10, 20)));

    const plain = await fetch(`${hub.url}/org/sd/resolve/main/README.md`, { headers: { Range: "bytes=1-2" } });
    assert.equal(plain.status, 206);
    assert.equal(await plain.text(), "el");

    const bad = await fetch(url, { headers: { Range: `bytes=${UNET.length}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get("content-range"), `bytes */${UNET.length}`);
    await bad.body?.cancel();

    const rangeReq = hub.requests.filter((r) => r.range === "bytes=10-19");
    assert.ok(rangeReq.some((r) => r.status === 206 && r.bytes === 10));
  });

  test("fault cut: partial data then a network error, then resume with Range", async () => {
    hub.fault({ path: "unet/model.onnx", kind: "cut", afterBytes: 70_000 });
    const url = `${hub.url}/org/sd/resolve/main/unet/model.onnx`;
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const got: Uint8Array[] = [];
    await assert.rejects(async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        got.push(value);
      }
    });
    const partial = Buffer.concat(got);
    assert.ok(partial.length <= 70_000);
    assert.ok(partial.equals(UNET.subarray(0, partial.length)));
    const cutRecord = hub.requests.filter((r) => r.url.startsWith("/cdn/")).at(-1)!;
    assert.equal(cutRecord.bytes, 70_000);

    const rest = await fetch(url, { headers: { Range: `bytes=${partial.length}-` } });
    assert.equal(rest.status, 206);
    const whole = Buffer.concat([partial, Buffer.from(await rest.arrayBuffer())]);
    assert.equal(sha256(whole), sha256(UNET));
  });

  test("fault cut on a plain file and with times", async () => {
    hub.fault({ path: "model_index.json", kind: "cut", afterBytes: 5, times: 2 });
    const url = `${hub.url}/org/sd/resolve/main/model_index.json`;
    for (let i = 0; i < 2; i++) {
      await assert.rejects(async () => {
        const r = await fetch(url);
        await r.text();
      });
    }
    assert.equal(await (await fetch(url)).text(), FILES["model_index.json"]);
  });

  test("fault corrupt: same length, different bytes, once", async () => {
    hub.fault({ path: "text_encoder/model.onnx", kind: "corrupt" });
    const url = `${hub.url}/org/sd/resolve/main/text_encoder/model.onnx`;
    const bad = Buffer.from(await (await fetch(url)).arrayBuffer());
    assert.equal(bad.length, TEXT_ENCODER.length);
    assert.notEqual(sha256(bad), sha256(TEXT_ENCODER));
    const good = Buffer.from(await (await fetch(url)).arrayBuffer());
    assert.equal(sha256(good), sha256(TEXT_ENCODER));
  });

  test("fault status: answers the status on the content request only", async () => {
    hub.fault({ path: "unet/model.onnx", kind: "status", status: 503 });
    const url = `${hub.url}/org/sd/resolve/main/unet/model.onnx`;
    const head = await fetch(url, { redirect: "manual" }); // resolve is not affected
    assert.equal(head.status, 302);
    await head.body?.cancel();
    const res = await fetch(url);
    assert.equal(res.status, 503);
    await res.body?.cancel();
    const ok = await fetch(url);
    assert.equal(ok.status, 200);
    assert.equal(sha256(Buffer.from(await ok.arrayBuffer())), sha256(UNET));
  });

  test("gated repo: listing is public, content needs the token (401 / 403 / 200)", async () => {
    const entries = await collect(listFiles({ repo: "org/gated", recursive: true, hubUrl: hub.url }));
    assert.equal(entries.length, 2);

    const url = `${hub.url}/org/gated/resolve/main/a.bin`;
    const anon = await fetch(url);
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get("x-error-code"), "GatedRepo");
    assert.match(((await anon.json()) as { error: string }).error, /restricted.*authenticated/);

    const wrong = await fetch(url, { headers: { Authorization: "Bearer hf_bad" } });
    assert.equal(wrong.status, 403);
    assert.match(((await wrong.json()) as { error: string }).error, /ask for access/);

    const good = await fetch(url, { headers: { Authorization: "Bearer hf_good" } });
    assert.equal(good.status, 200);
    assert.equal((await good.arrayBuffer()).byteLength, 100);
    assert.ok(hub.requests.some((r) => r.auth === "Bearer hf_good" && r.url.startsWith("/cdn/")));

    // how @huggingface/hub surfaces it
    await assert.rejects(fileDownloadInfo({ repo: "org/gated", path: "b.txt", hubUrl: hub.url }), (e: unknown) => {
      assert.ok(e instanceof HubApiError);
      assert.equal(e.statusCode, 401);
      assert.match(e.message, /^Access to model org\/gated is restricted\. .*URL: http:\/\/127\.0\.0\.1/);
      return true;
    });
    await assert.rejects(
      fileDownloadInfo({ repo: "org/gated", path: "b.txt", hubUrl: hub.url, accessToken: "hf_bad" }),
      (e: unknown) => e instanceof HubApiError && e.statusCode === 403,
    );
    const info = await fileDownloadInfo({ repo: "org/gated", path: "b.txt", hubUrl: hub.url, accessToken: "hf_good" });
    assert.equal(info?.size, 1);
  });

  test("gated with listing: true also gates listFiles and modelInfo", async () => {
    await assert.rejects(collect(listFiles({ repo: "org/gated-all", recursive: true, hubUrl: hub.url })), (e: unknown) => {
      assert.ok(e instanceof HubApiError);
      assert.equal(e.statusCode, 401);
      assert.match(e.message, /restricted/);
      return true;
    });
    await assert.rejects(
      collect(listFiles({ repo: "org/gated-all", hubUrl: hub.url, accessToken: "hf_bad" })),
      (e: unknown) => e instanceof HubApiError && e.statusCode === 403,
    );
    const ok = await collect(listFiles({ repo: "org/gated-all", hubUrl: hub.url, accessToken: "hf_good" }));
    assert.deepEqual(ok.map((e) => e.path), ["a.txt"]);
    await assert.rejects(modelInfo({ name: "org/gated-all", hubUrl: hub.url }), (e: unknown) => {
      return e instanceof HubApiError && e.statusCode === 401;
    });
  });

  test("unknown repo: 404 RepoNotFound", async () => {
    await assert.rejects(collect(listFiles({ repo: "org/missing", hubUrl: hub.url })), (e: unknown) => {
      assert.ok(e instanceof HubApiError);
      assert.equal(e.statusCode, 404);
      assert.match(e.message, /^Repository Not Found\. URL: /);
      return true;
    });
    await assert.rejects(modelInfo({ name: "org/missing", hubUrl: hub.url }), (e: unknown) => {
      return e instanceof HubApiError && e.statusCode === 404;
    });
    const res = await fetch(`${hub.url}/org/missing/resolve/main/x.json`);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("x-error-code"), "RepoNotFound");
    assert.deepEqual(await res.json(), { error: "Repository Not Found" });
  });

  test("addRepoFromFolder streams files from disk", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "hub-stand-in-"));
    try {
      const big = pseudoRandom(2 * 1024 * 1024 + 17, 11);
      await mkdir(path.join(dir, "vae_decoder"), { recursive: true });
      await writeFile(path.join(dir, "vae_decoder", "model.onnx"), big);
      await writeFile(path.join(dir, "vae_decoder", "config.json"), "{}");
      await writeFile(path.join(dir, "model_index.json"), "{}\n");
      await hub.addRepoFromFolder("org/folder", dir, { revision: "f".repeat(40), libraryName: "diffusers" });

      const entries = await collect(listFiles({ repo: "org/folder", recursive: true, hubUrl: hub.url }));
      const onnx = entries.find((e) => e.path === "vae_decoder/model.onnx")!;
      assert.equal(onnx.lfs?.oid, sha256(big));
      assert.equal(onnx.size, big.length);
      assert.equal(entries.find((e) => e.path === "model_index.json")!.oid, gitBlob("{}\n"));

      const res = await fetch(`${hub.url}/org/folder/resolve/main/vae_decoder/model.onnx`);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(big));
      const part = await fetch(`${hub.url}/org/folder/resolve/main/vae_decoder/model.onnx`, {
        headers: { Range: "bytes=1000000-1000099" },
      });
      assert.equal(part.status, 206);
      assert.ok(Buffer.from(await part.arrayBuffer()).equals(big.subarray(1000000, 1000100)));
      const plain = await fetch(`${hub.url}/org/folder/resolve/main/model_index.json`);
      assert.equal(plain.headers.get("x-repo-commit"), "f".repeat(40));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe("forward proxy", () => {
    test("undici ProxyAgent (absolute-form) relays resolve + CDN redirect", async () => {
      const proxy = await startForwardProxy();
      const agent = new ProxyAgent({ uri: proxy.url, proxyTunnel: false });
      try {
        const res = await undiciFetch(`${hub.url}/org/sd/resolve/main/unet/model.onnx`, { dispatcher: agent });
        assert.equal(res.status, 200);
        assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(UNET));
        assert.equal(proxy.seen[0], `${hub.url}/org/sd/resolve/main/unet/model.onnx`);
        assert.ok(proxy.seen[1].startsWith(`${hub.url}/cdn/`));
        const ranged = await undiciFetch(`${hub.url}/org/sd/resolve/main/README.md`, {
          dispatcher: agent,
          headers: { Range: "bytes=0-1" },
        });
        assert.equal(ranged.status, 206);
        assert.equal(await ranged.text(), "he");
      } finally {
        await agent.close();
        await proxy.close();
      }
    });

    test("undici ProxyAgent default (CONNECT tunnel) is recorded in tunnels", async () => {
      const proxy = await startForwardProxy();
      const agent = new ProxyAgent({ uri: proxy.url });
      try {
        const res = await undiciFetch(`${hub.url}/org/sd/resolve/main/README.md`, { dispatcher: agent });
        assert.equal(await res.text(), "hello\n");
        assert.deepEqual(proxy.seen, []);
        assert.deepEqual(proxy.tunnels, [new URL(hub.url).host]);
      } finally {
        await agent.close();
        await proxy.close();
      }
    });

    test("http.request in absolute-form", async () => {
      const proxy = await startForwardProxy();
      try {
        const p = new URL(proxy.url);
        const target = `${hub.url}/api/models/org/sd`;
        const body = await new Promise<string>((resolve, reject) => {
          const req = http.request({ host: p.hostname, port: p.port, path: target, method: "GET" }, (res) => {
            let s = "";
            res.setEncoding("utf8");
            res.on("data", (c) => (s += c));
            res.on("end", () => resolve(s));
            res.on("error", reject);
          });
          req.on("error", reject);
          req.end();
        });
        assert.equal(JSON.parse(body).id, "org/sd");
        assert.deepEqual(proxy.seen, [target]);
      } finally {
        await proxy.close();
      }
    });

    test("a cut behind the proxy is still a network error", async () => {
      const proxy = await startForwardProxy();
      const agent = new ProxyAgent({ uri: proxy.url, proxyTunnel: false });
      try {
        hub.fault({ path: "unet/model.onnx", kind: "cut", afterBytes: 1000 });
        await assert.rejects(async () => {
          const res = await undiciFetch(`${hub.url}/org/sd/resolve/main/unet/model.onnx`, { dispatcher: agent });
          await res.arrayBuffer();
        });
      } finally {
        await agent.close();
        await proxy.close();
      }
    });
  });
});
