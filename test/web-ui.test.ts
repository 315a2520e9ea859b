/**
 * The web UI's static files at `/`: index.html revalidated, hashed assets
 * immutable, the Content-Security-Policy, the message when the bundle is
 * missing, `--no_ui` (server and demo), and the app's other 404/405 answers
 * unchanged. A temp folder with a fake build stands in for `<outDir>/web/`.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serveOptionsFrom, SERVER_USAGE } from "../src/server/flags.js";
import { WEB_UI_CSP } from "../src/server/web-ui.js";
import { ECHO_GRAPH_DIR, errorOf, spawnCli, start, tempDir, call, type TestServer } from "./server-helpers.js";

const INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-3f2a9c.js"></script></head><body><div id="app"></div></body></html>';
const SCRIPT = "console.log('graphserve ui');";

/** A fake Vite build: index.html, a hashed asset, a root file, a dotfile. */
function fakeBuild(): string {
  const dir = tempDir();
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), INDEX);
  writeFileSync(join(dir, "assets", "index-3f2a9c.js"), SCRIPT);
  writeFileSync(join(dir, "favicon.svg"), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(dir, ".env"), "SECRET=1");
  return dir;
}

const echo = { single: { name: "echo", path: ECHO_GRAPH_DIR } };

describe("with a build", () => {
  let srv: TestServer;
  before(async () => {
    srv = await start({ ...echo, webUiDir: fakeBuild() });
  });

  test("GET / is index.html: no-cache, the CSP, nosniff", async () => {
    const r = await srv.request("GET", "/");
    assert.equal(r.status, 200);
    assert.equal(r.text, INDEX);
    assert.match(r.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(r.headers.get("cache-control"), "no-cache");
    const csp = r.headers.get("content-security-policy") ?? "";
    assert.equal(csp, WEB_UI_CSP);
    for (const part of ["default-src 'self'", "img-src 'self' data: blob:", "style-src 'self' 'unsafe-inline'"]) assert.ok(csp.split("; ").includes(part), part);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    const q = await srv.request("GET", "/?model=demo");
    assert.equal(q.text, INDEX, "a query string is still the page");
  });

  test("HEAD / answers the headers only; OPTIONS lists GET and HEAD", async () => {
    const head = await srv.request("HEAD", "/");
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
    assert.equal(head.headers.get("cache-control"), "no-cache");
    const options = await srv.request("OPTIONS", "/");
    assert.equal(options.status, 204);
    assert.equal(options.headers.get("allow"), "GET, HEAD, OPTIONS");
  });

  test("hashed assets are immutable for a year, with the CSP", async () => {
    const r = await srv.request("GET", "/assets/index-3f2a9c.js");
    assert.equal(r.status, 200);
    assert.equal(r.text, SCRIPT);
    assert.match(r.headers.get("content-type") ?? "", /javascript/);
    assert.equal(r.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(r.headers.get("content-security-policy"), WEB_UI_CSP);
  });

  test("another file of the build is served and revalidated; a dotfile or a missing file is the usual JSON 404", async () => {
    const icon = await srv.request("GET", "/favicon.svg");
    assert.equal(icon.status, 200);
    assert.equal(icon.headers.get("cache-control"), "no-cache");
    for (const path of ["/assets/nope.js", "/.env", "/nope", "/assets/", "/index.htm"]) {
      const r = await srv.request("GET", path);
      assert.equal(r.status, 404, path);
      assert.equal(errorOf(r).code, "not_found", path);
      assert.equal(errorOf(r).message, `Invalid request URL: GET ${path}`);
    }
  });

  test("the app's own routes and 405s are unchanged", async () => {
    const post = await srv.request("POST", "/", { json: {} });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD, OPTIONS");
    assert.equal((await srv.request("GET", "/v3/models")).status, 200);
    assert.equal((await srv.request("GET", "/v2/health/live")).status, 200);
    const live = await srv.request("POST", "/v2/health/live");
    assert.equal(live.status, 405);
    assert.equal(live.headers.get("allow"), "GET, HEAD, OPTIONS");
    const echoed = await srv.request("POST", "/v3/anything", { json: { model: "echo", x: 1 } });
    assert.deepEqual(echoed.body, { model: "echo", x: 1 });
    const unknown = await srv.request("GET", "/v4/nothing");
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown).message, "Invalid request URL: GET /v4/nothing");
    // The UI's headers stay on the UI's files.
    assert.equal(unknown.headers.get("content-security-policy"), null);
  });
});

test("without a build, / says how to make one (JSON 404)", async () => {
  const srv = await start({ ...echo, webUiDir: tempDir() });
  const r = await srv.request("GET", "/");
  assert.equal(r.status, 404);
  assert.match(errorOf(r).message, /^the web UI is not built: run npm run build/);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal((await srv.request("GET", "/assets/index-3f2a9c.js")).status, 404);
});

test("webUi: false (what --no_ui sets): / and the build's files are the usual 404", async () => {
  const srv = await start({ ...echo, webUi: false, webUiDir: fakeBuild() });
  for (const path of ["/", "/assets/index-3f2a9c.js", "/favicon.svg"]) {
    const r = await srv.request("GET", path);
    assert.equal(r.status, 404, path);
    assert.equal(errorOf(r).message, `Invalid request URL: GET ${path}`);
  }
  assert.equal((await srv.request("POST", "/", { json: {} })).status, 404, "no route at / at all");
});

test("--no_ui: parsed, documented, and honoured by the server and by graphserve demo", async (t) => {
  const base = { rest_port: "0", model_name: "echo", model_path: ECHO_GRAPH_DIR };
  assert.equal(serveOptionsFrom({ ...base, no_ui: true }, {}).webUi, false);
  assert.equal(serveOptionsFrom(base, {}).webUi, undefined, "on by default");
  assert.match(SERVER_USAGE, /--no_ui/);
  const server = await spawnCli(t, ["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_name", "echo", "--model_path", ECHO_GRAPH_DIR, "--no_ui"]);
  const demo = await spawnCli(t, ["demo", "--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--no_ui"]);
  for (const { url, proc } of [server, demo]) {
    const r = await call(url, "GET", "/");
    assert.equal(r.status, 404);
    assert.equal(errorOf(r).message, "Invalid request URL: GET /");
    proc.kill("SIGTERM");
  }
  assert.deepEqual(await Promise.all([server.exit, demo.exit]), [0, 0]);
});
