/**
 * The OpenVINO adapter against real IR folders: test/fixtures/openvino/<name>/
 * are optimum-intel exports of the tiny reference pipelines with the
 * graph.pbtxt OVMS's export script writes, and manifest.json records what
 * openvino_genai 2026.4.1 (Python) did with them (tools/reference/
 * openvino_ref.py). The native binding is not loaded here (the fake stands in
 * for it); what the adapter prepares for it is checked against what the real
 * runtime accepted: folder detection, native size, the rewritten scheduler
 * config and the properties.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chooseBackend, detectModelFormats } from "../src/backends/index.js";
import { BackendError } from "../src/backends/types.js";
import { OPENVINO_SCHEDULERS, OpenVinoBackend } from "../src/backends/openvino/openvino-backend.js";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";
import { checkImageGenOptions, type ImageGenCalculatorOptions } from "../calculators/image-gen/options.js";
import { createFakeOpenVino } from "./fixtures/fake-openvino-genai/index.js";

const ROOT = resolve("test/fixtures/openvino");

interface GenAiConfig {
  width: number;
  height: number;
  guidance_scale: number;
}
interface SchedulerRow {
  class: string;
  config_written: Record<string, unknown>;
  accepted: boolean;
  error?: string;
  same_image_as?: string[];
}
interface PropertyRow {
  properties: Record<string, string | number>;
  text2image: string;
  image2image: string;
  inpainting: string;
}
interface PipelineEntry {
  ir_folder: string;
  scheduler_config: Record<string, unknown>;
  defaults: Record<string, GenAiConfig | { error: string }>;
  scheduler_overrides?: SchedulerRow[];
  properties?: PropertyRow[];
}
interface Manifest {
  versions: Record<string, string>;
  pipelines: Record<string, PipelineEntry>;
}

let manifest: Manifest;
let registry: CalculatorRegistry;

before(async () => {
  manifest = JSON.parse(await readFile(join(ROOT, "manifest.json"), "utf8")) as Manifest;
  registry = await CalculatorRegistry.withBuiltins();
});

/** The ImageGenExecutor options of a graph.pbtxt text, parsed and validated as a served graph is. */
function graphOptions(text: string): ImageGenCalculatorOptions {
  const doc = parseGraphText(text, "graph.pbtxt", registry.schema);
  assert.deepEqual(doc.warnings, []);
  const node = validateGraph(doc, registry).nodes.find((n) => n.name === "ImageGenExecutor");
  assert.ok(node, "the graph has an ImageGenExecutor node");
  return node.options as unknown as ImageGenCalculatorOptions;
}

function loadWithFake(dir: string, opts: { scheduler?: string; properties?: Record<string, unknown>; tempDir?: string } = {}) {
  const fake = createFakeOpenVino();
  return OpenVinoBackend.load(dir, { loader: async () => fake.bindings, ...opts }).then((backend) => ({ fake, backend }));
}

const EXPECTED_FAMILY: Record<string, string> = { sd1: "sd", sdxl: "sdxl", "sd-inpaint": "sd" };

describe("real OpenVINO IR folders (optimum-intel exports)", () => {
  test("the manifest covers the pipelines and was made with openvino-genai", () => {
    assert.deepEqual(Object.keys(manifest.pipelines).sort(), ["sd-inpaint", "sd1", "sdxl"]);
    assert.match(manifest.versions["openvino-genai"] ?? "", /^\d{4}\.\d+/);
  });

  for (const name of ["sd1", "sdxl", "sd-inpaint"]) {
    test(`${name}: detected as OpenVINO, native size and family as GenAI reads them`, async () => {
      const entry = manifest.pipelines[name]!;
      const dir = resolve(entry.ir_folder);
      assert.deepEqual(detectModelFormats(dir), ["openvino"]);
      assert.equal(await chooseBackend(dir), "openvino");
      const { backend } = await loadWithFake(dir);
      try {
        const caps = backend.capabilities();
        assert.equal(caps.family, EXPECTED_FAMILY[name]);
        // GenAI's own default size for the model (width/height of its default generation config).
        const mode = name === "sd-inpaint" ? "inpainting" : "text2image";
        const genai = entry.defaults[mode] as GenAiConfig;
        assert.equal(typeof genai.width, "number", `GenAI built a ${mode} pipeline for ${name}`);
        assert.equal(caps.defaultWidth, genai.width);
        assert.equal(caps.defaultHeight, genai.height);
        // The adapter keeps the model's own scheduler when GenAI runs it.
        assert.deepEqual(caps.schedulers, [entry.scheduler_config["_class_name"]]);
      } finally {
        await backend.dispose();
      }
    });

    test(`${name}: graph.pbtxt as OVMS's export script writes it loads, options as OVMS reads them`, async () => {
      const settings = checkImageGenOptions(graphOptions(await readFile(join(ROOT, name, "graph.pbtxt"), "utf8")));
      assert.equal(settings.modelsPath, "./");
      assert.deepEqual(settings.devices, ["CPU"]);
      assert.deepEqual(settings.pluginConfig, {});
    });
  }

  test("sd-inpaint: GenAI builds only the inpainting pipeline; the adapter serves that mode and warns with GenAI's reasons", async () => {
    const entry = manifest.pipelines["sd-inpaint"]!;
    const refused = (mode: string): string => {
      const d = entry.defaults[mode]!;
      assert.ok("error" in d, `GenAI refused ${mode} on the inpainting model`);
      return d.error;
    };
    assert.equal(typeof (entry.defaults["inpainting"] as GenAiConfig).width, "number");
    const fail = { text2image: refused("text2image"), image2image: refused("image2image") };
    const fake = createFakeOpenVino({ fail });
    const backend = await OpenVinoBackend.load(resolve(entry.ir_folder), { loader: async () => fake.bindings });
    try {
      assert.deepEqual(backend.capabilities().modes, ["inpainting"]);
      assert.equal(backend.loadWarnings.length, 2);
      assert.ok(backend.loadWarnings.some((w) => w.includes(fail.text2image)));
      assert.ok(backend.loadWarnings.some((w) => w.includes(fail.image2image)));
    } finally {
      await backend.dispose();
    }
  });
});

describe("scheduler override: the adapter's rewritten scheduler_config.json against GenAI", () => {
  test("every class the adapter offers was run by GenAI as itself; every class it refuses GenAI refused or replaced", async () => {
    const entry = manifest.pipelines["sd1"]!;
    const dir = resolve(entry.ir_folder);
    const rows = entry.scheduler_overrides!;
    assert.ok(rows.length >= OPENVINO_SCHEDULERS.length);
    const tempDir = await mkdtemp(join(tmpdir(), "graphserve-ov-real-"));
    try {
      for (const row of rows) {
        const offered = (OPENVINO_SCHEDULERS as readonly string[]).includes(row.class);
        let loaded: Awaited<ReturnType<typeof loadWithFake>> | undefined;
        try {
          loaded = await loadWithFake(dir, { scheduler: row.class, tempDir });
        } catch (err) {
          assert.ok(err instanceof BackendError, String(err));
        }
        if (!loaded) {
          // Refused by the adapter: GenAI must not have run it as itself either.
          const replaced = row.accepted && (row.same_image_as ?? []).length > 0;
          assert.ok(!row.accepted || replaced, `${row.class}: refused by the adapter but GenAI ran it (${JSON.stringify(row)})`);
          continue;
        }
        const { fake, backend } = loaded;
        try {
          assert.ok(offered || row.class === entry.scheduler_config["_class_name"], `${row.class} loaded`);
          assert.equal(row.accepted, true, `${row.class}: GenAI refused the config (${row.error})`);
          const twins = (row.same_image_as ?? []).filter((c) => (OPENVINO_SCHEDULERS as readonly string[]).includes(c));
          assert.deepEqual(twins, [], `${row.class}: GenAI gave the same image for another offered scheduler`);
          const modelPath = fake.factoryCalls[0]!.modelPath;
          const viewed = row.class === entry.scheduler_config["_class_name"] ? dir : modelPath;
          const written = JSON.parse(await readFile(join(viewed, "scheduler", "scheduler_config.json"), "utf8")) as unknown;
          if (viewed === dir) {
            assert.equal(modelPath, dir, "no view when the override is the model's own scheduler");
            continue;
          }
          // What the adapter hands the binding is exactly the config GenAI accepted in Python.
          assert.deepEqual(written, row.config_written);
          // Every other entry of the view points at the real folder (GenAI read such a symlinked view).
          for (const item of await readdir(modelPath)) {
            if (item === "scheduler") continue;
            assert.ok((await lstat(join(modelPath, item))).isSymbolicLink() || item.endsWith(".json"), item);
            if ((await lstat(join(modelPath, item))).isSymbolicLink()) assert.equal(await readlink(join(modelPath, item)), join(dir, item));
          }
        } finally {
          await backend.dispose();
        }
      }
    } finally {
      await rm(tempDir, { recursive: true, force: true });
    }
  });

  test("LMSDiscreteScheduler: GenAI runs DDIM for it (same image), which is why the adapter does not offer it", () => {
    const rows = manifest.pipelines["sd1"]!.scheduler_overrides!;
    const lms = rows.find((r) => r.class === "LMSDiscreteScheduler")!;
    assert.deepEqual(lms.same_image_as, ["DDIMScheduler"]);
    assert.ok(!(OPENVINO_SCHEDULERS as readonly string[]).includes("LMSDiscreteScheduler"));
  });
});

describe("properties: OVMS plugin_config as the adapter passes it, against GenAI", () => {
  test("the properties reach every pipeline factory unchanged; GenAI accepted exactly the known ones", async () => {
    const entry = manifest.pipelines["sd1"]!;
    const dir = resolve(entry.ir_folder);
    const graph = await readFile(join(ROOT, "sd1", "graph.pbtxt"), "utf8");
    for (const row of entry.properties!) {
      // plugin_config is a JSON string in graph.pbtxt (OVMS's export script writes it after models_path);
      // the calculator parses it into the backend's properties.
      const pluginConfig = JSON.stringify(row.properties);
      const text = graph.replace(/(models_path: "\.\/",\n)/, `$1      plugin_config: '${pluginConfig}',\n`);
      assert.notEqual(text, graph);
      const settings = checkImageGenOptions(graphOptions(text));
      assert.deepEqual(settings.pluginConfig, row.properties);
      const { fake, backend } = await loadWithFake(dir, { properties: settings.pluginConfig });
      try {
        assert.equal(fake.factoryCalls.length, 3);
        for (const call of fake.factoryCalls) assert.deepEqual(call.properties, row.properties);
      } finally {
        await backend.dispose();
      }
      const known = !Object.keys(row.properties).includes("NOT_A_PROPERTY");
      for (const mode of ["text2image", "image2image", "inpainting"] as const) {
        if (known) assert.equal(row[mode], "accepted", `${pluginConfig} ${mode}`);
        else assert.match(row[mode], /^refused: .*Unsupported property NOT_A_PROPERTY/);
      }
    }
  });
});
