/**
 * What the server logs about requests the client caused: an upload cut
 * short, a servable still loading, an absurdly long field. None of them is a
 * server error; none copies unbounded client input into a log line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { createApp } from "../src/server/app.js";
import type { Servables } from "../src/servables/types.js";
import { call, ECHO_GRAPH_DIR, eventually, FrozenServable, oneNodeGraph, start, tempDir, writeServable } from "./server-helpers.js";

const errorsOf = (logs: Record<string, unknown>[]) => logs.filter((l) => (l.level as number) >= 50);

test("a client that aborts mid-upload: one request line with 499 at info, no error and no stack", async () => {
  const srv = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR } });
  const { port } = new URL(srv.url);
  for (const type of ["application/json", "multipart/form-data; boundary=B"]) {
    const before = srv.logs.length;
    const socket = connect(Number(port), "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.write(`POST /v3/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 100000\r\n\r\n{"model":"echo","prompt":"`);
    // Time for the server to parse the headers and start reading the body (else there is no request to log, and the wait below fails).
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    await eventually(() => srv.logs.slice(before).some((l) => l.msg === "request"), "the request line");
    const lines = srv.logs.slice(before);
    assert.deepEqual(errorsOf(lines), [], type);
    const request = lines.find((l) => l.msg === "request")!;
    assert.deepEqual([request.level, request.status], [30, 499], type);
    assert.ok(lines.every((l) => l.err === undefined), `no stack: ${JSON.stringify(lines)}`);
  }
});

test("503 for a servable still loading is an answer, not a server error: no error line, no stack", async () => {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (c.toString().split("\n").filter(Boolean).forEach((l) => logs.push(JSON.parse(l))), cb()) });
  const servables = [new FrozenServable("loading", "LOADING"), new FrozenServable("failed", "LOADING", "FAILED_PRECONDITION")];
  const registry: Servables = { get: (n) => servables.find((s) => s.name === n), list: () => servables, initialized: () => true, reload: () => Promise.resolve({ changed: false }), close: () => Promise.resolve() };
  const server = createServer(createApp({ servables: registry, logger: pino({ level: "debug" }, sink) }).app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const model of ["loading", "failed"]) assert.equal((await call(base, "POST", "/v3/images/generations", { json: { model } })).status, 503);
    await eventually(() => logs.filter((l) => l.msg === "request").length === 2, "two request lines");
    assert.deepEqual(errorsOf(logs), []);
    assert.ok(logs.every((l) => l.err === undefined), JSON.stringify(logs));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("a 1 MB model name, path or error: every logged field is cut to a bounded length", async () => {
  const srv = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR } });
  const before = srv.logs.length;
  const long = "m".repeat(1024 * 1024);
  assert.equal((await srv.request("POST", "/v3/images/generations", { json: { model: long } })).status, 404);
  assert.equal((await srv.request("POST", `/v3/${"p".repeat(8000)}`, { json: { model: "" } })).status, 404);
  await eventually(() => srv.logs.slice(before).filter((l) => l.msg === "request").length === 2, "two request lines");
  for (const line of srv.logs.slice(before)) {
    const size = JSON.stringify(line).length;
    assert.ok(size < 2048, `a ${size}-character log line: ${JSON.stringify(line).slice(0, 300)}`);
  }
  const first = srv.logs.slice(before).find((l) => l.msg === "request")!;
  assert.match(String(first.servable), /^m{200}… \(1048376 more characters\)$/);
});

test("a 500 whose error message echoes 1 MB of input: the error line is bounded and keeps its stack frames", async () => {
  const dir = tempDir();
  writeServable(dir, "fail", oneNodeGraph("FailCalculator"));
  const srv = await start({ single: { name: "fail", path: `${dir}/fail` } });
  const before = srv.logs.length;
  const r = await srv.request("POST", "/v3/images/generations", { json: { model: "fail", status: 500, message: `no such thing: ${"m".repeat(1024 * 1024)}` } });
  assert.equal(r.status, 500);
  await eventually(() => srv.logs.slice(before).some((l) => l.msg === "request"), "the request line");
  const lines = srv.logs.slice(before);
  for (const line of lines) {
    const size = JSON.stringify(line).length;
    assert.ok(size < 8192, `a ${size}-character log line: ${JSON.stringify(line).slice(0, 300)}`);
  }
  const err = errorsOf(lines)[0]?.err as { message: string; stack: string } | undefined;
  assert.ok(err !== undefined, JSON.stringify(lines).slice(0, 500));
  assert.match(err.message, /no such thing: m+… \(\d+ more characters\)/);
  assert.match(err.stack, /^HttpError: [\s\S]*no such thing: m+… \(\d+ more characters\)\n\s+at /);
});
