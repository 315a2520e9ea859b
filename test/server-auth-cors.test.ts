/**
 * API keys (OVMS's --api_key_file / API_KEY, answered 401 rather than OVMS's
 * 500) and CORS (OVMS's flags, preflight), over real HTTP.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FlagError } from "../src/cli/flags.js";
import { withoutPaths } from "../src/server/auth.js";
import { serveOptionsFrom } from "../src/server/flags.js";
import { ECHO_GRAPH_DIR, errorOf, oneNodeGraph, start, tempDir, writeServable, type Reply, type TestServer } from "./server-helpers.js";

const single = { single: { name: "echo", path: ECHO_GRAPH_DIR } };

test("auth on: inference POSTs need 'Authorization: Bearer <key>' (401 otherwise); status endpoints stay open", async () => {
  const srv = await start({ ...single, apiKey: "s3cret" });
  const body = { model: "echo", x: 1 };
  for (const headers of [{} as Record<string, string>, { authorization: "Bearer wrong" }, { authorization: "s3cret" }, { authorization: "Basic s3cret" }]) {
    const r = await srv.request("POST", "/v3/images/generations", { json: body, headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.deepEqual(errorOf(r), { message: "Unauthorized request due to invalid or missing api-key", type: "invalid_request_error", param: null, code: "invalid_api_key" });
    assert.match(r.headers.get("www-authenticate")!, /^Bearer/);
  }
  // Checked before the body is looked at: no hint about models or formats without the key.
  assert.equal((await srv.request("POST", "/v3/x", { json: { model: "nope" } })).status, 401);
  assert.equal((await srv.request("POST", "/v1/x", { body: "a=1", headers: { "content-type": "text/plain" } })).status, 401);
  const ok = await srv.request("POST", "/v1/images/generations", { json: body, headers: { authorization: "Bearer s3cret" } });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, body);
  assert.equal((await srv.request("POST", "/v3/x", { json: body, headers: { authorization: "bearer   s3cret" } })).status, 200, "scheme is case-insensitive");
  for (const path of ["/v2/health/live", "/v2/health/ready", "/v3/models"]) {
    assert.equal((await srv.request("GET", path)).status, 200, path);
  }
});

test("--api_key_scope: admin (the default) guards /v1/config and its reload, all adds /metrics, inference is OVMS's (admin open, paths hidden)", async () => {
  const dir = tempDir();
  writeServable(dir, "echo", oneNodeGraph("InspectCalculator"));
  mkdirSync(join(dir, "empty"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_config_list: [{ config: { name: "echo", base_path: "echo" } }, { config: { name: "empty", base_path: "empty" } }] }));
  const withKey = { configPath: join(dir, "config.json"), apiKey: "s3cret", metricsEnable: true };
  const key = { authorization: "Bearer s3cret" };
  const open = async (srv: TestServer, method: string, path: string) => (await srv.request(method, path)).status;

  const admin = await start(withKey);
  await admin.manager.whenInitialized();
  assert.equal(await open(admin, "GET", "/v1/config"), 401);
  assert.equal(await open(admin, "POST", "/v1/config/reload"), 401);
  assert.equal((await admin.request("GET", "/v1/config", { headers: key })).status, 200);
  assert.equal((await admin.request("POST", "/v1/config/reload", { headers: key })).status, 200);
  assert.equal(await open(admin, "GET", "/metrics"), 200, "scrapers send no key");
  for (const path of ["/v2/health/live", "/v2/health/ready", "/v2/models/echo/ready", "/v3/models"]) assert.equal(await open(admin, "GET", path), 200, path);

  const all = await start({ ...withKey, apiKeyScope: "all" });
  assert.equal(await open(all, "GET", "/metrics"), 401);
  assert.equal((await all.request("GET", "/metrics", { headers: key })).status, 200);
  assert.equal(await open(all, "GET", "/v1/config"), 401);

  const ovms = await start({ ...withKey, apiKeyScope: "inference" });
  await ovms.manager.whenInitialized();
  const reason = (r: Reply) => (r.body as Record<string, { model_version_status: { status: { error_message: string } }[] }>).empty.model_version_status[0].status.error_message;
  const anonymous = await ovms.request("GET", "/v1/config");
  assert.equal(anonymous.status, 200);
  assert.equal(reason(anonymous), 'graph file "…/graph.pbtxt" not found');
  assert.ok(!anonymous.text.includes(dir), anonymous.text);
  assert.equal(reason(await ovms.request("GET", "/v1/config", { headers: key })), `graph file "${join(dir, "empty/graph.pbtxt")}" not found`);
  const reload = await ovms.request("POST", "/v1/config/reload");
  assert.equal(reload.status, 200, "nothing changed");
  assert.ok(!reload.text.includes(dir), reload.text);
  assert.equal(await open(ovms, "GET", "/metrics"), 200);
});

test("withoutPaths: every absolute path cut to its last segment, wherever it stands; ratios and relative paths kept", () => {
  const cases: [string, string][] = [
    ["ENOENT: no such file or directory, open '/srv/m/graph.pbtxt'", "ENOENT: no such file or directory, open '…/graph.pbtxt'"],
    ["model folder /srv/m/models not found", "model folder …/models not found"],
    ["file:///srv/m/unet/model.onnx failed", "file:…/model.onnx failed"],
    ["[/srv/m/x] `/srv/m/y` <\\srv\\m\\z> dir:/srv/m/w", "[…/x] `…/y` <…/z> dir:…/w"],
    ["C:\\Users\\me\\graph.pbtxt failed", "…/graph.pbtxt failed"],
    ["ratio 1/2, models/sd and unet/, text_encoder/ kept", "ratio 1/2, models/sd and unet/, text_encoder/ kept"],
  ];
  for (const [text, shown] of cases) assert.equal(withoutPaths(text), shown, text);
});

test("--api_key_scope is inference, admin or all, and needs a key", () => {
  const base = { rest_port: "0", model_name: "echo", model_path: ECHO_GRAPH_DIR };
  assert.equal(serveOptionsFrom(base, { API_KEY: "k" }).apiKeyScope, undefined, "the app's default, admin");
  assert.equal(serveOptionsFrom({ ...base, api_key_scope: "all" }, { API_KEY: "k" }).apiKeyScope, "all");
  assert.throws(() => serveOptionsFrom({ ...base, api_key_scope: "everything" }, { API_KEY: "k" }), /--api_key_scope must be inference, admin or all, got "everything"/);
  assert.throws(() => serveOptionsFrom({ ...base, api_key_scope: "all" }, {}), /--api_key_scope needs a key: --api_key_file or API_KEY/);
});

test("auth off: no header needed", async () => {
  const srv = await start(single);
  assert.equal((await srv.request("POST", "/v3/x", { json: { model: "echo" } })).status, 200);
  assert.equal((await srv.request("POST", "/v3/x", { json: { model: "echo" }, headers: { authorization: "Bearer anything" } })).status, 200);
});

test("the key comes from --api_key_file's first line, else API_KEY", () => {
  const dir = tempDir();
  const file = join(dir, "key.txt");
  writeFileSync(file, "from-file\nsecond line\n");
  const base = { rest_port: "0", model_name: "echo", model_path: ECHO_GRAPH_DIR };
  assert.equal(serveOptionsFrom({ ...base, api_key_file: file }, { API_KEY: "from-env" }).apiKey, "from-file");
  assert.equal(serveOptionsFrom(base, { API_KEY: "from-env" }).apiKey, "from-env");
  assert.equal(serveOptionsFrom(base, {}).apiKey, undefined);
  assert.throws(() => serveOptionsFrom({ ...base, api_key_file: join(dir, "missing") }, {}), FlagError);
  writeFileSync(file, "\nkey on line two\n");
  assert.throws(() => serveOptionsFrom({ ...base, api_key_file: file }, {}), /first line is empty/);
});

test("CORS defaults (*): every response to an Origin is shared; a preflight is 204 before auth, echoing what was asked", async () => {
  const srv = await start({ ...single, apiKey: "k" });
  const simple = await srv.request("GET", "/v3/models", { headers: { origin: "https://app.example" } });
  assert.equal(simple.headers.get("access-control-allow-origin"), "*");
  assert.equal(simple.headers.get("access-control-expose-headers"), "x-request-id");
  const denied = await srv.request("POST", "/v3/x", { json: { model: "echo" }, headers: { origin: "https://app.example" } });
  assert.equal(denied.status, 401);
  assert.equal(denied.headers.get("access-control-allow-origin"), "*", "errors are readable by the page too");
  const pre = await srv.request("OPTIONS", "/v3/images/generations", {
    headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "*");
  assert.equal(pre.headers.get("access-control-allow-methods"), "POST");
  // A literal "*" would not cover Authorization.
  assert.equal(pre.headers.get("access-control-allow-headers"), "authorization,content-type");
  assert.equal((await srv.request("GET", "/v3/models")).headers.get("access-control-allow-origin"), null, "no Origin, no CORS headers");
});

test("CORS with --allowed_origins, --allowed_methods, --allowed_headers and --allow_credentials", async () => {
  const srv = await start({
    ...single,
    cors: { allowedOrigins: ["https://good.example"], allowedMethods: ["GET", "POST"], allowedHeaders: ["Content-Type", "Authorization"], allowCredentials: true },
  });
  const good = await srv.request("POST", "/v3/x", { json: { model: "echo" }, headers: { origin: "https://good.example" } });
  assert.equal(good.status, 200);
  assert.equal(good.headers.get("access-control-allow-origin"), "https://good.example");
  assert.equal(good.headers.get("access-control-allow-credentials"), "true");
  assert.match(good.headers.get("vary")!, /Origin/);
  const pre = await srv.request("OPTIONS", "/v3/x", { headers: { origin: "https://good.example", "access-control-request-method": "POST", "access-control-request-headers": "x-other" } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-methods"), "GET, POST");
  assert.equal(pre.headers.get("access-control-allow-headers"), "Content-Type, Authorization");
  const evil = await srv.request("POST", "/v3/x", { json: { model: "echo" }, headers: { origin: "https://evil.example" } });
  assert.equal(evil.status, 200, "CORS is enforced by the browser; the server just withholds the headers");
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
  const evilPre = await srv.request("OPTIONS", "/v3/x", { headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
  assert.equal(evilPre.status, 204);
  assert.equal(evilPre.headers.get("access-control-allow-origin"), null);
});

test("CORS flags parse as comma lists", () => {
  const o = serveOptionsFrom({ rest_port: "0", model_name: "e", model_path: ECHO_GRAPH_DIR, allowed_origins: "https://a.example, https://b.example", allowed_methods: "GET,POST", allow_credentials: true }, {});
  assert.deepEqual(o.cors, { allowedOrigins: ["https://a.example", "https://b.example"], allowedMethods: ["GET", "POST"], allowedHeaders: ["*"], allowCredentials: true });
});
