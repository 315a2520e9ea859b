/** Registering pulled servables in config.json. */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseConfigText } from "../src/servables/config.js";
import { addServable } from "../src/servables/repository-config.js";

const root = mkdtempSync(join(tmpdir(), "graphserve-repo-config-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh repository folder (not created on disk). */
const repo = () => join(root, `repo${n++}`);
const read = (path: string) => readFileSync(path, "utf8");
const json = (path: string) => JSON.parse(read(path));

describe("addServable", () => {
  test("creates the folder and config.json", async () => {
    const dir = repo();
    const config = join(dir, "config.json");
    assert.equal(await addServable(config, "sd", join(dir, "OpenVINO", "sd-ov")), true);
    assert.equal(read(config), '{\n  "model_config_list": [\n    {\n      "config": {\n        "name": "sd",\n        "base_path": "OpenVINO/sd-ov"\n      }\n    }\n  ]\n}\n');
    const parsed = parseConfigText(read(config), config);
    assert.deepEqual(parsed.servables, [{ name: "sd", basePath: join(dir, "OpenVINO/sd-ov"), graphPath: join(dir, "OpenVINO/sd-ov/graph.pbtxt"), origin: "model_config_list[0]" }]);
    assert.deepEqual(readdirSync(dir), ["config.json"], "no temp file left behind");
  });

  test("adds a second servable, then updates a base_path, keeping order", async () => {
    const dir = repo();
    const config = join(dir, "config.json");
    await addServable(config, "a", join(dir, "a"));
    assert.equal(await addServable(config, "b", join(dir, "models", "b")), true);
    assert.equal(await addServable(config, "a", join(dir, "a2")), true);
    assert.deepEqual(json(config), { model_config_list: [{ config: { name: "a", base_path: "a2" } }, { config: { name: "b", base_path: "models/b" } }] });
    assert.deepEqual(parseConfigText(read(config), config).servables.map((s) => [s.name, s.basePath]), [["a", join(dir, "a2")], ["b", join(dir, "models/b")]]);
  });

  test("a base path outside the config folder is written absolute; the config folder itself is \".\"", async () => {
    const dir = repo();
    const config = join(dir, "config.json");
    await addServable(config, "out", join(root, "elsewhere", "m"));
    await addServable(config, "here", dir);
    assert.deepEqual(json(config).model_config_list, [
      { config: { name: "out", base_path: join(root, "elsewhere", "m") } },
      { config: { name: "here", base_path: "." } },
    ]);
  });

  test("idempotent: the second call writes nothing and leaves the mtime alone", async () => {
    const dir = repo();
    const config = join(dir, "config.json");
    assert.equal(await addServable(config, "sd", join(dir, "sd")), true);
    const before = statSync(config).mtimeMs;
    const text = read(config);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await addServable(config, "sd", join(dir, "sd")), false);
    assert.equal(statSync(config).mtimeMs, before);
    assert.equal(read(config), text);
  });

  test("an unchanged entry in a differently formatted file is not rewritten", async () => {
    const dir = repo();
    mkdirSync(dir);
    const config = join(dir, "config.json");
    const text = '{"model_config_list":[{"config":{"name":"sd","base_path":"sd"}}]}';
    writeFileSync(config, text);
    assert.equal(await addServable(config, "sd", join(dir, "sd")), false);
    assert.equal(read(config), text);
  });

  test("migrates the legacy mediapipe_config_list entry and drops the emptied list", async () => {
    const dir = repo();
    mkdirSync(dir);
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ model_config_list: [], mediapipe_config_list: [{ name: "sd", base_path: "old", graph_path: "g.pbtxt" }] }));
    assert.equal(await addServable(config, "sd", join(dir, "new")), true);
    assert.deepEqual(json(config), { model_config_list: [{ config: { name: "sd", base_path: "new", graph_path: "g.pbtxt" } }] });
    const parsed = parseConfigText(read(config), config);
    assert.deepEqual(parsed.servables, [{ name: "sd", basePath: join(dir, "new"), graphPath: join(dir, "new/g.pbtxt"), origin: "model_config_list[0]" }]);
  });

  test("other legacy entries stay where they are", async () => {
    const dir = repo();
    mkdirSync(dir);
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ mediapipe_config_list: [{ name: "keep" }, { name: "sd", base_path: "old" }] }));
    assert.equal(await addServable(config, "sd", join(dir, "sd")), true);
    assert.deepEqual(json(config), { mediapipe_config_list: [{ name: "keep" }], model_config_list: [{ config: { name: "sd", base_path: "sd" } }] });
    assert.deepEqual(parseConfigText(read(config), config).servables.map((s) => [s.name, s.origin]), [["sd", "model_config_list[0]"], ["keep", "mediapipe_config_list[0]"]]);
  });

  test("every other field and entry is preserved", async () => {
    const dir = repo();
    mkdirSync(dir);
    const config = join(dir, "config.json");
    const doc = {
      monitoring: { metrics: { enable: true, metrics_list: ["ovms_requests_success"] } },
      model_config_list: [
        { config: { name: "resnet", base_path: "/models/resnet", nireq: 4, target_device: "CPU" } },
        { config: { name: "sd", base_path: "x", graph_path: "custom.pbtxt", subconfig: "s.json" } },
      ],
      pipeline_config_list: [],
      custom_key: { nested: [1, 2, { deep: true }] },
    };
    writeFileSync(config, JSON.stringify(doc, null, 4));
    assert.equal(await addServable(config, "sd", join(dir, "sd")), true);
    const expected = structuredClone(doc);
    expected.model_config_list[1].config.base_path = "sd";
    assert.deepEqual(json(config), expected);
    assert.deepEqual(Object.keys(json(config)), Object.keys(doc), "key order kept");
    const parsed = parseConfigText(read(config), config);
    assert.deepEqual(parsed.metrics, { enable: true, metricsList: ["ovms_requests_success"] });
    assert.deepEqual(parsed.servables.map((s) => [s.name, s.graphPath]), [["resnet", "/models/resnet/graph.pbtxt"], ["sd", join(dir, "sd/custom.pbtxt")]]);
  });

  for (const [what, text, pattern] of [
    ["not JSON", '{"model_config_list": [', /is not valid JSON/],
    ["an array", "[]", /must hold a JSON object, found an array/],
    ["null", "null", /must hold a JSON object, found null/],
    ["a string", '"x"', /must hold a JSON object, found string/],
    ["a non-array model_config_list", '{"model_config_list": {}}', /model_config_list must be an array/],
  ] as const) {
    test(`a config that is ${what} is refused and left untouched`, async () => {
      const dir = repo();
      mkdirSync(dir);
      const config = join(dir, "config.json");
      writeFileSync(config, text);
      const before = statSync(config).mtimeMs;
      await assert.rejects(addServable(config, "sd", join(dir, "sd")), (e: Error) => {
        assert.match(e.message, pattern);
        assert.ok(e.message.includes(config), "names the file");
        assert.ok(!e.message.includes("\n"));
        return true;
      });
      assert.equal(read(config), text);
      assert.equal(statSync(config).mtimeMs, before);
      assert.deepEqual(readdirSync(dir), ["config.json"]);
    });
  }

  test("concurrent calls on one file lose no update", async () => {
    const dir = repo();
    const config = join(dir, "config.json");
    const names = Array.from({ length: 8 }, (_, i) => `m${i}`);
    await Promise.all(names.map((name) => addServable(config, name, join(dir, name))));
    assert.deepEqual(json(config).model_config_list.map((e: { config: { name: string } }) => e.config.name).sort(), names);
    assert.deepEqual(readdirSync(dir), ["config.json"]);
  });

  test("a relative base path is resolved against the working directory", async () => {
    const dir = repo();
    const cfg = join(dir, "config.json");
    assert.equal(await addServable(cfg, "m", relative(process.cwd(), join(dir, "m"))), true);
    assert.equal(json(cfg).model_config_list[0].config.base_path, "m");
  });
});
