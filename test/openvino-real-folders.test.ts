/**
 * The OpenVINO adapter against real IR folders: test/fixtures/openvino/<name>/
 * are optimum-intel exports of the tiny reference pipelines with the
 * graph.pbtxt OVMS's export script writes, and manifest.json records what
 * openvino_genai 2026.4.1 (Python) did with them (tools/reference/
 * openvino_ref.py). The native binding is not loaded here (the fake stands in
 * for it); what the adapter prepares for it is checked against what the real
 * runtime accepted: folder detection, native size, the rewritten scheduler
 * config and the properties. FLUX.1-schnell and SD3 (manifest `flux_sd3`,
 * tools/reference/flux_sd3_openvino.py): family, GenAI's default size per
 * mode, size rule, guidance, scheduler, the exported graph, and the T5 length
 * GenAI keeps from a pipeline's first call.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chooseBackend, detectModelFormats } from "../src/backends/index.js";
import { BackendError, type GenerationMode } from "../src/backends/types.js";
import { OPENVINO_SCHEDULERS, OpenVinoBackend } from "../src/backends/openvino/openvino-backend.js";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";
import { imageGenerationGraph, imageGraphSettingsFromFlags } from "../src/servables/pull/graph-export.js";
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
/** GenAI's default generation config as tools/reference/flux_sd3_openvino.py recorded it. */
interface GenAiDefaults extends GenAiConfig {
  num_inference_steps: number;
  strength: number;
  max_sequence_length: number;
}
interface FluxSd3Entry {
  pipeline: { kind: string; scheduler: string; transformer: Record<string, unknown>; vae: { block_out_channels: number[] } };
  files: string[];
  versions: Record<string, string>;
  genai: {
    pipelines_loaded: string[];
    refused: Record<string, string>;
    default_generation_config: Record<string, GenAiDefaults>;
    cases: { id: string; mode: string; params: { max_sequence_length?: number; num_inference_steps: number; width?: number; height?: number }; reused_pipeline_of?: string; error?: string }[];
  };
}
interface Manifest {
  versions: Record<string, string>;
  pipelines: Record<string, PipelineEntry>;
  flux_sd3: Record<string, FluxSd3Entry>;
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

describe("real OpenVINO IR folders of FLUX.1-schnell and SD3 (manifest flux_sd3)", () => {
  const FAMILIES = { "flux-schnell": "flux", sd3: "sd3" } as const;
  const MODES: readonly GenerationMode[] = ["text2image", "image2image", "inpainting"];

  test("the manifest covers both, every GenAI pipeline class loaded, made with openvino-genai", () => {
    assert.deepEqual(Object.keys(manifest.flux_sd3).sort(), Object.keys(FAMILIES).sort());
    for (const entry of Object.values(manifest.flux_sd3)) {
      assert.deepEqual(entry.genai.pipelines_loaded, [...MODES].sort());
      assert.deepEqual(entry.genai.refused, {});
      assert.match(entry.versions["openvino-genai"] ?? "", /^\d{4}\.\d+/);
    }
  });

  for (const [name, family] of Object.entries(FAMILIES)) {
    test(`${name}: detected as OpenVINO ${family}; native size, size multiple, guidance and scheduler as GenAI has them`, async () => {
      const entry = manifest.flux_sd3[name]!;
      const dir = join(ROOT, name);
      for (const file of entry.files) await lstat(join(dir, file));
      assert.deepEqual(detectModelFormats(dir), ["openvino"]);
      assert.equal(await chooseBackend(dir), "openvino");
      const { backend } = await loadWithFake(dir);
      try {
        const caps = backend.capabilities();
        assert.equal(caps.family, family);
        assert.deepEqual(caps.modes, MODES);
        // GenAI's default size (FLUX: its fixed 128 × the VAE's 8 = 1024 even for this tiny model; SD3: sample_size 8 × 8 = 64), every mode.
        for (const mode of MODES) {
          const genai = entry.genai.default_generation_config[mode]!;
          assert.equal(caps.defaultWidth, genai.width, `${mode} width`);
          assert.equal(caps.defaultHeight, genai.height, `${mode} height`);
        }
        // The VAE's 8 (4 blocks) × 2: FLUX's 2×2 packing (its transformer config says patch_size 1), SD3's patch_size 2.
        assert.equal(2 ** (entry.pipeline.vae.block_out_channels.length - 1), 8);
        assert.equal(entry.pipeline.transformer["patch_size"], family === "flux" ? 1 : 2);
        assert.equal(caps.sizeMultiple, 16);
        // GenAI feeds FLUX's guidance_scale only to a transformer with guidance_embeds (schnell has none); SD3 runs CFG.
        assert.equal(caps.guidance, family === "flux" ? entry.pipeline.transformer["guidance_embeds"] === true : true);
        assert.equal(caps.guidance, family === "sd3");
        assert.deepEqual(caps.schedulers, [entry.pipeline.scheduler]);
        assert.deepEqual(caps.schedulers, ["FlowMatchEulerDiscreteScheduler"]);
      } finally {
        await backend.dispose();
      }
    });

    test(`${name}: graph.pbtxt as OVMS's export script writes it loads; graphserve's graph export gives the same settings`, async () => {
      const settings = checkImageGenOptions(graphOptions(await readFile(join(ROOT, name, "graph.pbtxt"), "utf8")));
      assert.equal(settings.modelsPath, "./");
      assert.deepEqual(settings.devices, ["CPU"]);
      assert.deepEqual(settings.pluginConfig, {});
      const ours = checkImageGenOptions(graphOptions(imageGenerationGraph(imageGraphSettingsFromFlags({ target_device: "CPU" }))));
      assert.deepEqual(ours, settings);
    });

    test(`${name}: GenAI keeps T5 at its first call's max_sequence_length, so the adapter refuses another length per mode with a 400 naming the field`, async () => {
      const entry = manifest.flux_sd3[name]!;
      const first = entry.genai.cases.find((c) => c.id === "t2i-seed42")!;
      const again = entry.genai.cases.find((c) => c.reused_pipeline_of === first.id)!;
      // What GenAI did: the second generate() on the same pipeline object, at the default length, raised in the T5 encoder.
      assert.equal(first.params.max_sequence_length, 32);
      assert.equal(again.params.max_sequence_length, undefined);
      assert.match(again.error ?? "", /max_sequence_length == input_ids_shape\[1\]/);
      const fallback = entry.genai.default_generation_config["text2image"]!.max_sequence_length;
      assert.equal(fallback, family === "flux" ? 512 : 256);

      const { fake, backend } = await loadWithFake(join(ROOT, name));
      try {
        const size = { width: 64, height: 64, numInferenceSteps: 2 };
        await backend.generate({ mode: "text2image", prompt: "a photo of a cat", maxSequenceLength: 32, ...size });
        const refused = (() => {
          try {
            backend.check({ mode: "text2image", prompt: "three cats", ...size });
          } catch (err) {
            return err;
          }
          return undefined;
        })();
        assert.ok(refused instanceof BackendError, "the default length after 32 is refused");
        assert.equal(refused.param, "max_sequence_length");
        assert.match(refused.message, new RegExp(`max_sequence_length ${fallback} \\(GenAI's ${family} default\\).* runs T5 at 32`));
        await assert.rejects(backend.generate({ mode: "text2image", prompt: "three cats", maxSequenceLength: 77, ...size }), /runs T5 at 32/);
        // The same length again runs; another mode has its own pipelines and its own first length.
        await backend.generate({ mode: "text2image", prompt: "three cats", maxSequenceLength: 32, ...size });
        const image = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
        await backend.generate({ mode: "image2image", prompt: "three cats", image, numInferenceSteps: 2 });
        await assert.rejects(backend.generate({ mode: "image2image", prompt: "three cats", image, maxSequenceLength: 32, numInferenceSteps: 2 }), /image2image pipeline runs T5 at \d+/);
        assert.deepEqual(
          fake.calls.map((c) => [c.mode, c.config.max_sequence_length]),
          [["text2image", 32], ["text2image", 32], ["image2image", undefined]],
        );
      } finally {
        await backend.dispose();
      }
    });

    test(`${name}: sizes off FLUX's/SD3's multiple of 16 and T5 lengths outside 1..512 are refused before GenAI sees them`, async () => {
      const { fake, backend } = await loadWithFake(join(ROOT, name));
      try {
        assert.throws(() => backend.check({ mode: "text2image", prompt: "x", width: 72, height: 64 }), /width 72 must be a positive multiple of 16/);
        for (const bad of [0, 513, 1.5, -1]) {
          assert.throws(
            () => backend.check({ mode: "text2image", prompt: "x", width: 64, height: 64, maxSequenceLength: bad }),
            (e: unknown) => e instanceof BackendError && e.param === "max_sequence_length" && /from 1 to 512/.test(e.message),
          );
        }
        backend.check({ mode: "text2image", prompt: "x", width: 80, height: 48, maxSequenceLength: 512 });
        assert.deepEqual(fake.calls, []);
      } finally {
        await backend.dispose();
      }
    });
  }
});
