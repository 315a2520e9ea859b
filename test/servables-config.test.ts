/** config.json parsing and validation, and single-servable mode. */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfigFile, parseConfigText, readConfigFile, singleServableConfig } from "../src/servables/config.js";

const tmp = mkdtempSync(join(tmpdir(), "graphserve-config-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const CONFIG = join(tmp, "config.json");

const parse = (doc: unknown) => parseConfigText(typeof doc === "string" ? doc : JSON.stringify(doc), CONFIG);

/** The message parsing `doc` fails with. */
function errorOf(doc: unknown): string {
  try {
    parse(doc);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e.message;
  }
  assert.fail("expected the config to be rejected");
}

describe("config.json", () => {
  test("model_config_list: base_path relative to the config folder, graph_path relative to base_path, defaults", () => {
    const c = parse({
      model_config_list: [
        { config: { name: "a", base_path: "models/a" } },
        { config: { name: "b", base_path: "/abs/b", graph_path: "sub/g.pbtxt", subconfig: "sub.json" } },
        { config: { name: "c", base_path: "c", graph_path: "/elsewhere/c.pbtxt" } },
      ],
    });
    assert.deepEqual(c.servables, [
      { name: "a", basePath: join(tmp, "models/a"), graphPath: join(tmp, "models/a/graph.pbtxt"), origin: "model_config_list[0]" },
      { name: "b", basePath: "/abs/b", graphPath: "/abs/b/sub/g.pbtxt", origin: "model_config_list[1]" },
      { name: "c", basePath: join(tmp, "c"), graphPath: "/elsewhere/c.pbtxt", origin: "model_config_list[2]" },
    ]);
    assert.deepEqual(c.metrics, { enable: false });
    assert.deepEqual(c.warnings, []);
  });

  test("legacy mediapipe_config_list: base_path defaults to <config dir>/<name>; both lists together, in order", () => {
    const c = parse({
      model_config_list: [{ config: { name: "m", base_path: "m" } }],
      mediapipe_config_list: [{ name: "g" }, { name: "h", base_path: "x", graph_path: "h.pbtxt", subconfig: "s.json" }],
    });
    assert.deepEqual(
      c.servables.map((s) => [s.name, s.basePath, s.graphPath, s.origin]),
      [
        ["m", join(tmp, "m"), join(tmp, "m/graph.pbtxt"), "model_config_list[0]"],
        ["g", join(tmp, "g"), join(tmp, "g/graph.pbtxt"), "mediapipe_config_list[0]"],
        ["h", join(tmp, "x"), join(tmp, "x/h.pbtxt"), "mediapipe_config_list[1]"],
      ],
    );
  });

  test("an empty config, and the deprecated form with an empty model_config_list", () => {
    assert.deepEqual(parse({}).servables, []);
    assert.deepEqual(
      parse({ model_config_list: [], mediapipe_config_list: [{ name: "g" }] }).servables.map((s) => s.name),
      ["g"],
    );
  });

  test("classic model entries pass validation (they fail per servable, at load)", () => {
    const c = parse({ model_config_list: [{ config: { name: "resnet", base_path: "/models/resnet", target_device: "CPU", shape: "auto", nireq: 4 } }] });
    assert.equal(c.servables[0].graphPath, "/models/resnet/graph.pbtxt");
  });

  test("remote base paths are kept verbatim", () => {
    const c = parse({ model_config_list: [{ config: { name: "r", base_path: "s3://bucket/r/" } }] });
    assert.deepEqual([c.servables[0].basePath, c.servables[0].graphPath], ["s3://bucket/r/", "s3://bucket/r/graph.pbtxt"]);
  });

  test("monitoring.metrics is exposed; unknown and unsupported top-level keys are warnings", () => {
    const c = parse({
      model_config_list: [],
      monitoring: { metrics: { enable: true, metrics_list: ["ovms_requests_success", "ovms_requests_fail"] } },
      pipeline_config_list: [{ name: "dag" }],
      custom_node_library_config_list: [],
      something_else: 1,
    });
    assert.deepEqual(c.metrics, { enable: true, metricsList: ["ovms_requests_success", "ovms_requests_fail"] });
    assert.deepEqual(c.warnings, [`${CONFIG}: pipeline_config_list is not supported by graphserve and is ignored`, `${CONFIG}: unknown key "something_else" is ignored`]);
    assert.deepEqual(parse({ monitoring: { metrics: {} } }).metrics, { enable: false });
  });

  describe("errors name the JSON path", () => {
    const cases: [string, unknown, string][] = [
      ["invalid JSON, located", '{\n  "a": 1,\n}', `${CONFIG}:3:1: not valid JSON: `],
      ["invalid JSON, quoted on one line", '{\n "a": tru }', `${CONFIG}: not valid JSON: `],
      ["invalid JSON without a position", "", `${CONFIG}: not valid JSON: Unexpected end of JSON input`],
      ["the top level is not an object", [1], `${CONFIG}: the top level must be an object`],
      ["a list is not an array", { model_config_list: {} }, `${CONFIG}: model_config_list must be an array`],
      ["an entry is not an object", { model_config_list: ["a"] }, `${CONFIG}: model_config_list[0] must be an object`],
      ["config is missing", { model_config_list: [{ name: "a" }] }, `${CONFIG}: model_config_list[0].config is required`],
      ["name is missing", { model_config_list: [{ config: { base_path: "a" } }] }, `${CONFIG}: model_config_list[0].config.name is required`],
      ["base_path is missing", { model_config_list: [{ config: { name: "a" } }] }, `${CONFIG}: model_config_list[0].config.base_path is required`],
      [
        "name is not a string",
        { model_config_list: [{ config: { name: "a", base_path: "a" } }, { config: { name: 7, base_path: "b" } }] },
        `${CONFIG}: model_config_list[1].config.name must be a string`,
      ],
      ["name is empty", { mediapipe_config_list: [{ name: "" }] }, `${CONFIG}: mediapipe_config_list[0].name must not be empty`],
      ["legacy name missing", { mediapipe_config_list: [{ base_path: "x" }] }, `${CONFIG}: mediapipe_config_list[0].name is required`],
      ["graph_path is not a string", { mediapipe_config_list: [{ name: "g", graph_path: 1 }] }, `${CONFIG}: mediapipe_config_list[0].graph_path must be a string`],
      ["metrics.enable is not a boolean", { monitoring: { metrics: { enable: "yes" } } }, `${CONFIG}: monitoring.metrics.enable must be a boolean`],
      ["a metrics_list item is not a string", { monitoring: { metrics: { metrics_list: ["a", 2] } } }, `${CONFIG}: monitoring.metrics.metrics_list[1] must be a string`],
      [
        "duplicate names across the lists",
        { model_config_list: [{ config: { name: "g", base_path: "a" } }], mediapipe_config_list: [{ name: "g" }] },
        `${CONFIG}: servable name "g" is used twice, by model_config_list[0] and mediapipe_config_list[0]; names must be unique`,
      ],
    ];
    for (const [what, doc, message] of cases) {
      test(what, () => {
        const got = errorOf(doc);
        assert.ok(!got.includes("\n"), "one line");
        if (message.endsWith(": ")) assert.ok(got.startsWith(message), got);
        else assert.equal(got, message);
      });
    }

    test("every problem is reported, one line each", () => {
      const got = errorOf({ model_config_list: [{ config: { name: 1 } }], mediapipe_config_list: [{ name: "" }] });
      assert.deepEqual(got.split("\n").sort(), [
        `${CONFIG}: mediapipe_config_list[0].name must not be empty`,
        `${CONFIG}: model_config_list[0].config.base_path is required`,
        `${CONFIG}: model_config_list[0].config.name must be a string`,
      ]);
    });
  });

  test("files: unreadable is a ConfigError; the hash follows the content", async () => {
    await assert.rejects(readConfigFile(join(tmp, "missing.json")), new ConfigError(`cannot read config file "${join(tmp, "missing.json")}": no such file`));
    writeFileSync(CONFIG, JSON.stringify({ mediapipe_config_list: [{ name: "g" }] }));
    const a = await readConfigFile(CONFIG);
    assert.deepEqual((await loadConfigFile(CONFIG)).servables.map((s) => s.name), ["g"]);
    writeFileSync(CONFIG, JSON.stringify({ mediapipe_config_list: [{ name: "h" }] }));
    const b = await readConfigFile(CONFIG);
    assert.notEqual(a.hash, b.hash);
    assert.equal(b.hash, (await readConfigFile(CONFIG)).hash);
  });
});

describe("single-servable mode", () => {
  test("--model_path is a folder holding graph.pbtxt", () => {
    const dir = join(tmp, "single");
    mkdirSync(dir);
    assert.deepEqual(singleServableConfig("sd", dir), {
      servables: [{ name: "sd", basePath: dir, graphPath: join(dir, "graph.pbtxt"), origin: "--model_path" }],
      metrics: { enable: false },
      warnings: [],
    });
  });

  test("--model_path is the graph file itself", () => {
    const file = join(tmp, "my-graph.pbtxt");
    writeFileSync(file, "");
    assert.deepEqual(singleServableConfig("sd", file).servables, [{ name: "sd", basePath: tmp, graphPath: file, origin: "--model_path" }]);
  });

  test("a missing path is taken as a folder (it fails at load); empty names are refused", () => {
    assert.equal(singleServableConfig("x", join(tmp, "nope")).servables[0].graphPath, join(tmp, "nope", "graph.pbtxt"));
    assert.throws(() => singleServableConfig("", tmp), ConfigError);
    assert.throws(() => singleServableConfig("x", ""), ConfigError);
  });
});
