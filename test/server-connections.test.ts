/**
 * Connection bounds (connections.ts): a flood of sockets that never finish
 * their headers cannot crowd out a health probe, a trickled request is cut
 * off at the headers timeout, and sockets serving requests are never evicted.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { serveOptionsFrom } from "../src/server/flags.js";
import { ECHO_GRAPH_DIR, eventually, gate, INDEX_URL, oneNodeGraph, start, tempDir, writeServable, type TestServer } from "./server-helpers.js";

interface Raw {
  readonly socket: Socket;
  /** The connection closed (by the server, or refused). */
  gone: boolean;
  received: string;
}
const raws: Raw[] = [];
process.on("exit", () => raws.forEach((r) => r.socket.destroy()));

/** A raw connection to the server, with what it received. */
async function open(srv: TestServer): Promise<Raw> {
  const raw: Raw = { socket: connect(Number(new URL(srv.url).port), "127.0.0.1"), gone: false, received: "" };
  raws.push(raw);
  raw.socket.on("error", () => undefined);
  raw.socket.on("data", (d: Buffer) => (raw.received += d.toString("latin1")));
  raw.socket.once("close", () => (raw.gone = true));
  await new Promise<void>((resolve) => raw.socket.once("connect", resolve).once("close", resolve));
  return raw;
}

/** GET `path` on a fresh connection; the status, or undefined when the connection was refused or cut. */
async function rawGet(srv: TestServer, path: string): Promise<number | undefined> {
  const s = await open(srv);
  if (!s.gone) s.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  await eventually(() => s.gone, "the answer");
  const m = /^HTTP\/1\.1 (\d{3})/.exec(s.received);
  return m ? Number(m[1]) : undefined;
}

test("a flood of half-sent requests past --max_connections: the longest idle ones are evicted, health answers", async () => {
  const srv = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR }, connections: { maxConnections: 20 } });
  const flood: Raw[] = [];
  for (let i = 0; i < 60; i++) {
    const s = await open(srv);
    s.socket.write("GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Trickle: ");
    flood.push(s);
  }
  await eventually(() => flood.filter((s) => !s.gone).length <= 20, "the server to hold at most 20 connections");
  assert.ok(flood.slice(0, 40).every((s) => s.gone), "the oldest went first");
  for (let i = 0; i < 5; i++) assert.equal(await rawGet(srv, "/v2/health/live"), 200);
});

test("a request whose headers trickle in is closed at --headers_timeout_seconds", async () => {
  const srv = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR }, connections: { headersTimeoutMs: 300 } });
  const s = await open(srv);
  s.socket.write("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n");
  const timer = setInterval(() => !s.gone && s.socket.write("X-Trickle: a\r\n"), 50);
  try {
    await eventually(() => s.gone, "the connection to be closed", 10_000);
  } finally {
    clearInterval(timer);
  }
  assert.match(s.received, /^HTTP\/1\.1 408 /);
});

test("at the cap with no idle socket, the one sending its body longest gives way (a trickled upload cannot hold a connection)", async () => {
  const srv = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR }, connections: { maxConnections: 2 } });
  const uploads: Raw[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await open(srv);
    s.socket.write(`POST /v3/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":"echo"`);
    uploads.push(s);
    await new Promise((r) => setTimeout(r, 50)); // the server has the headers: a request in progress, its body incomplete
  }
  assert.equal(await rawGet(srv, "/v2/health/live"), 200);
  assert.deepEqual(uploads.map((s) => s.gone), [true, false], "the older upload was evicted");
});

test("sockets serving requests are not evicted: at the cap with every socket busy, a newcomer is refused; freed, it gets in", async () => {
  const dir = tempDir();
  writeServable(dir, "gate", oneNodeGraph("GateCalculator"));
  const srv = await start({ single: { name: "gate", path: `${dir}/gate` }, connections: { maxConnections: 2 } });
  const gates = [gate("busy-1"), gate("busy-2")];
  const busy = await Promise.all(
    ["busy-1", "busy-2"].map(async (name) => {
      const s = await open(srv);
      const body = JSON.stringify({ model: "gate", gate: name });
      s.socket.write(`POST /v3/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return s;
    }),
  );
  await Promise.all(gates.map((g) => g.entered));
  assert.equal(await rawGet(srv, "/v2/health/live"), undefined, "refused");
  assert.ok(busy.every((s) => !s.gone));
  gates.forEach((g) => g.open());
  await eventually(() => busy.every((s) => /^HTTP\/1\.1 200 /.test(s.received)), "both answers");
  assert.equal(await rawGet(srv, "/v2/health/live"), 200, "a kept-alive idle socket makes room");
});

test("at the cap, a client that stopped reading its answer gives way once stalled; health answers", async () => {
  // A servable whose answer (16 MB) is far more than the kernel's socket buffers hold for a client that reads nothing.
  const calculators = tempDir();
  writeFileSync(
    join(calculators, "big.mjs"),
    `import { Calculator } from ${JSON.stringify(INDEX_URL)};
export class BigCalculator extends Calculator {
  static contract = { inputs: { HTTP_REQUEST_PAYLOAD: {} }, outputs: { HTTP_RESPONSE_PAYLOAD: {} } };
  process(ctx) { ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", { status: 200, headers: { "Content-Type": "text/plain" }, body: "x".repeat(16 * 1024 * 1024) }); }
}`,
  );
  const dir = tempDir();
  writeServable(dir, "big", oneNodeGraph("BigCalculator"));
  const srv = await start({ calculatorsDir: calculators, single: { name: "big", path: `${dir}/big` }, connections: { maxConnections: 2, stalledReaderMs: 1500 } });
  const readers: Raw[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await open(srv);
    s.socket.pause(); // reads nothing
    const body = JSON.stringify({ model: "big" });
    s.socket.write(`POST /v3/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    readers.push(s);
  }
  await eventually(() => readers.every((s) => s.socket.readableLength > 0), "both answers to start");
  assert.equal(await rawGet(srv, "/v2/health/live"), undefined, "refused while the readers are merely behind");
  await eventually(async () => (await rawGet(srv, "/v2/health/live")) === 200, "health to answer once a reader has been stalled");
  // A paused socket does not see its close: the readers read again.
  readers.forEach((s) => s.socket.resume());
  await eventually(() => readers[0].gone, "the stalled reader busy longest to be evicted");
  await eventually(() => readers[1].received.length > 16 * 1024 * 1024, "the other reader's whole answer");
  assert.equal(readers[1].gone, false);
});

test("the connection flags: counts and seconds above zero", () => {
  const base = { rest_port: "0", model_name: "echo", model_path: ECHO_GRAPH_DIR };
  assert.deepEqual(serveOptionsFrom(base, {}).connections, {});
  assert.deepEqual(serveOptionsFrom({ ...base, max_connections: "50", headers_timeout_seconds: "2.5", request_timeout_seconds: "60" }, {}).connections, { maxConnections: 50, headersTimeoutMs: 2500, requestTimeoutMs: 60_000 });
  assert.throws(() => serveOptionsFrom({ ...base, max_connections: "0" }, {}), /--max_connections must be an integer from 1/);
  assert.throws(() => serveOptionsFrom({ ...base, headers_timeout_seconds: "0" }, {}), /--headers_timeout_seconds must be more than 0 seconds/);
  assert.throws(() => serveOptionsFrom({ ...base, headers_timeout_seconds: "30", request_timeout_seconds: "5" }, {}), /--headers_timeout_seconds 30 is longer than --request_timeout_seconds 5/);
  assert.equal(serveOptionsFrom({ ...base, request_timeout_seconds: "5" }, {}).connections?.requestTimeoutMs, 5000, "alone, a request limit below the default headers limit is fine (the headers get the shorter)");
});
