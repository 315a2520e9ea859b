/** Pull mode's image-generation graph: flags → settings → graph.pbtxt that loads. */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";
import { checkImageGenOptions, type ImageGenCalculatorOptions, type ImageGenSettings } from "../calculators/image-gen/options.js";
import {
  checkExportedGraph,
  GraphExportError,
  imageGenerationGraph,
  imageGraphSettingsFromFlags,
  parseSourceLoras,
  type ImageGraphSettings,
} from "../src/servables/pull/graph-export.js";

let registry: CalculatorRegistry;
before(async () => {
  registry = await CalculatorRegistry.withBuiltins();
});

/** Parses, validates (which runs the calculator's own load checks) and returns the node's options. */
function load(text: string): { options: ImageGenCalculatorOptions; settings: ImageGenSettings; doc: ReturnType<typeof parseGraphText> } {
  const doc = parseGraphText(text, "graph.pbtxt", registry.schema);
  assert.deepEqual(doc.warnings, []);
  const graph = validateGraph(doc, registry);
  const node = graph.nodes.find((n) => n.name === "ImageGenExecutor");
  assert.ok(node, "the graph has an ImageGenExecutor node");
  const options = node.options as unknown as ImageGenCalculatorOptions;
  return { options, settings: checkImageGenOptions(options), doc };
}

/** The GraphExportError `fn` throws; asserts it names `flag` and is one line. */
function refusal(fn: () => unknown, flag: string): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GraphExportError, `expected a GraphExportError, got ${String(e)}`);
    assert.ok(e.message.includes(`--${flag}`), `"${e.message}" names --${flag}`);
    assert.ok(!e.message.includes("\n"), "one line");
    return e.message;
  }
  assert.fail(`expected --${flag} to be refused`);
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;

describe("imageGenerationGraph", () => {
  test("defaults only: models_path and nothing else; OVMS's defaults apply", () => {
    const text = imageGenerationGraph(imageGraphSettingsFromFlags({}));
    assert.ok(text.startsWith("# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO\n"));
    assert.match(text.split("\n")[1], /^#.*graphserve/);
    const { options, settings, doc } = load(text);
    assert.deepEqual(doc.directives, { graphQueueMaxSize: "AUTO" });
    assert.equal(options.models_path, "./");
    for (const field of ["device", "plugin_config", "resolution", "max_resolution", "default_resolution", "max_num_images_per_prompt", "default_num_inference_steps", "max_num_inference_steps", "num_images_per_prompt", "guidance_scale"]) {
      assert.equal(Object.hasOwn(options, field), false, `${field} is not set`);
    }
    assert.deepEqual(settings.devices, []);
    assert.deepEqual(settings.pluginConfig, {});
    assert.deepEqual(settings.maxResolution, { width: 4096, height: 4096 });
    assert.equal(settings.maxImagesPerPrompt, 10);
    assert.equal(settings.defaultSteps, 50);
    assert.equal(settings.maxSteps, 100);
    assert.deepEqual(settings.loraAdapters, []);
    assert.deepEqual(doc.config.input_stream, ["HTTP_REQUEST_PAYLOAD:input"]);
    assert.deepEqual(doc.config.output_stream, ["HTTP_RESPONSE_PAYLOAD:output"]);
    const node = doc.config.node[0];
    assert.equal(node.calculator, "ImageGenCalculator");
    assert.deepEqual(node.input_side_packet, ["IMAGE_GEN_NODE_RESOURCES:pipes"]);
  });

  test("dynamic-shape flags round-trip (OVMS's unit-test values)", () => {
    const s = imageGraphSettingsFromFlags({
      target_device: "GPU", num_streams: "14", cache_dir: "/cache", max_resolution: "3000x4000", default_resolution: "300x400",
      max_num_images_per_prompt: "7", default_num_inference_steps: "2", max_num_inference_steps: "3",
    });
    const text = imageGenerationGraph(s);
    assert.ok(text.includes(String.raw`plugin_config: "{\"NUM_STREAMS\":\"14\",\"CACHE_DIR\":\"/cache\"}"`), text);
    const { options, settings } = load(text);
    assert.equal(options.plugin_config, '{"NUM_STREAMS":"14","CACHE_DIR":"/cache"}');
    assert.deepEqual(settings.devices, ["GPU"]);
    assert.deepEqual(settings.pluginConfig, { NUM_STREAMS: "14", CACHE_DIR: "/cache" });
    assert.deepEqual(settings.maxResolution, { width: 3000, height: 4000 });
    assert.deepEqual(settings.defaultResolution, { width: 300, height: 400 });
    assert.deepEqual(settings.staticResolutions, []);
    assert.equal(settings.maxImagesPerPrompt, 7);
    assert.equal(settings.defaultSteps, 2);
    assert.equal(settings.maxSteps, 3);
  });

  test("static-shape flags round-trip: resolution, num_images_per_prompt, guidance_scale, three devices", () => {
    const s = imageGraphSettingsFromFlags({
      target_device: "NPU NPU GPU", resolution: "512x768", num_images_per_prompt: "3", guidance_scale: "6.25", default_resolution: "512x768",
    });
    const { settings } = load(imageGenerationGraph(s));
    assert.deepEqual(settings.devices, ["NPU", "NPU", "GPU"]);
    assert.deepEqual(settings.staticResolutions, [{ width: 512, height: 768 }]);
    assert.deepEqual(settings.defaultResolution, { width: 512, height: 768 });
    assert.equal(settings.staticImagesPerPrompt, 3);
    assert.equal(settings.maxImagesPerPrompt, 3);
    assert.ok(close(settings.staticGuidanceScale!, 6.25));
  });

  test("a resolution list (spaces normalised) round-trips; the first is the default", () => {
    const s = imageGraphSettingsFromFlags({ resolution: " 512x512   768x768 1024x576 " });
    assert.equal(s.resolution, "512x512 768x768 1024x576");
    const { settings } = load(imageGenerationGraph(s));
    assert.deepEqual(settings.staticResolutions, [{ width: 512, height: 512 }, { width: 768, height: 768 }, { width: 1024, height: 576 }]);
    assert.deepEqual(settings.defaultResolution, { width: 512, height: 512 });
  });

  test("guidance_scale in exponent form and negative LoRA alpha round-trip", () => {
    const s = imageGraphSettingsFromFlags({ resolution: "256x256", guidance_scale: "1.5e1", source_loras: "a=org/a:-0.25" });
    const { settings } = load(imageGenerationGraph(s, { a: "loras/a/a.safetensors" }));
    assert.ok(close(settings.staticGuidanceScale!, 15));
    assert.ok(close(settings.loraAdapters[0].alpha, -0.25));
  });

  test("LoRA adapters and composites round-trip with DYNAMIC mode off NPU", () => {
    const s = imageGraphSettingsFromFlags({
      target_device: "CPU",
      source_loras: "sketch=org/sketch-lora@weights/sketch.safetensors:0.8,pix=https://example.com:8443/l/pix.safetensors,loc=./loras/x.safetensors,both=@sketch:0.7+@pix:0.5",
    });
    const text = imageGenerationGraph(s, { sketch: "loras/sketch/sketch.safetensors", pix: "loras/pix/pix.safetensors", loc: "loras/x.safetensors" });
    const { options, settings } = load(text);
    assert.deepEqual(settings.loraAdapters.map((a) => [a.alias, a.path]), [
      ["sketch", "loras/sketch/sketch.safetensors"],
      ["pix", "loras/pix/pix.safetensors"],
      ["loc", "loras/x.safetensors"],
    ]);
    assert.ok(close(settings.loraAdapters[0].alpha, 0.8));
    assert.equal(settings.loraAdapters[1].alpha, 1, "alpha left out: the proto default 1.0");
    assert.equal(Object.hasOwn(options.lora_adapters[1], "alpha"), false);
    // Enum values arrive as numbers: DYNAMIC = 0, written explicitly.
    assert.deepEqual(settings.loraAdapters.map((a) => a.mode), [0, 0, 0]);
    assert.ok(options.lora_adapters.every((a) => Object.hasOwn(a, "mode")));
    assert.equal(settings.compositeLoraAdapters.length, 1);
    const both = settings.compositeLoraAdapters[0];
    assert.equal(both.alias, "both");
    assert.deepEqual(both.components.map((c) => c.adapter_alias), ["sketch", "pix"]);
    assert.ok(close(both.components[0].alpha, 0.7) && close(both.components[1].alpha, 0.5));
  });

  test("an NPU device writes STATIC LoRA mode", () => {
    const s = imageGraphSettingsFromFlags({ target_device: "NPU", resolution: "512x512", source_loras: "a=org/a,b=org/b,ab=@a:0.6+@b:0.4" });
    const text = imageGenerationGraph(s, { a: "loras/a.safetensors", b: "loras/b.safetensors" });
    assert.ok(text.includes("mode: STATIC"));
    assert.ok(!text.includes("DYNAMIC"));
    const { settings } = load(text);
    assert.deepEqual(settings.loraAdapters.map((a) => a.mode), [1, 1], "STATIC = 1");
  });

  test("strings are escaped for the text format", () => {
    const cacheDir = String.raw`C:\cache "quoted"` + "\t\n\u0001é";
    const device = 'GPU.0';
    const s: ImageGraphSettings = { targetDevice: device, cacheDir, loras: { adapters: [{ alias: "a", source: { kind: "local", path: "/x" } }], composites: [] } };
    const path = String.raw`loras\we"ird\a.safetensors`;
    const { options, settings } = load(imageGenerationGraph(s, { a: path }));
    assert.deepEqual(settings.pluginConfig, { CACHE_DIR: cacheDir });
    assert.equal(options.device, device);
    assert.equal(settings.loraAdapters[0].path, path);
  });

  test("a LoRA adapter without a downloaded path is refused", () => {
    const s = imageGraphSettingsFromFlags({ source_loras: "a=org/a" });
    refusal(() => imageGenerationGraph(s), "source_loras");
    refusal(() => imageGenerationGraph(s, { b: "x" }), "source_loras");
  });
});

describe("flag refusals", () => {
  const integerFlags = ["num_images_per_prompt", "max_num_images_per_prompt", "default_num_inference_steps", "max_num_inference_steps", "num_streams"] as const;
  for (const flag of integerFlags) {
    for (const bad of ["0", "-1", "abc", "1.5", "", "4294967296", "1e3"]) {
      test(`--${flag} ${JSON.stringify(bad)}`, () => {
        const message = refusal(() => imageGraphSettingsFromFlags({ [flag]: bad }), flag);
        assert.ok(message.includes(JSON.stringify(bad)), `"${message}" shows the value`);
      });
    }
  }
  test("uint32 maximum is accepted", () => {
    assert.equal(imageGraphSettingsFromFlags({ num_streams: "4294967295" }).numStreams, 4294967295);
  });

  for (const flag of ["resolution", "max_resolution", "default_resolution"] as const) {
    for (const bad of ["12x", "x12", "1024*1024", "big", "", "0x512", "512x0", "-512x512", "512X512"]) {
      test(`--${flag} ${JSON.stringify(bad)}`, () => {
        const message = refusal(() => imageGraphSettingsFromFlags({ [flag]: bad }), flag);
        assert.ok(message.includes(JSON.stringify(bad)), `"${message}" shows the value`);
      });
    }
  }
  test("the example message", () => {
    assert.throws(() => imageGraphSettingsFromFlags({ max_resolution: "big" }), { message: '--max_resolution must be WxH with both sides greater than 0 (e.g. 1024x1024), got "big"' });
  });
  test("--max_resolution and --default_resolution take one WxH, --resolution a list without duplicates", () => {
    refusal(() => imageGraphSettingsFromFlags({ max_resolution: "512x512 768x768" }), "max_resolution");
    refusal(() => imageGraphSettingsFromFlags({ resolution: "512x512 256x256 512x512" }), "resolution");
    refusal(() => imageGraphSettingsFromFlags({ resolution: "512x512,768x768" }), "resolution");
  });

  for (const bad of ["nan", "NaN", "inf", "Infinity", "abc", "", "1e39", "7.5x"]) {
    test(`--guidance_scale ${JSON.stringify(bad)}`, () => {
      refusal(() => imageGraphSettingsFromFlags({ resolution: "512x512", guidance_scale: bad }), "guidance_scale");
    });
  }

  test("--target_device must name one or three devices", () => {
    refusal(() => imageGraphSettingsFromFlags({ target_device: "" }), "target_device");
    refusal(() => imageGraphSettingsFromFlags({ target_device: "CPU GPU" }), "target_device");
  });
  test("--cache_dir must not be empty", () => {
    refusal(() => imageGraphSettingsFromFlags({ cache_dir: "" }), "cache_dir");
  });
});

describe("combinations the calculator refuses at load are refused before anything is written", () => {
  // The text is read back through our own parser and validation, which run ImageGenCalculator's load-time rules.
  const cases: [string, Record<string, string>, RegExp][] = [
    ["--resolution with --max_resolution", { resolution: "512x512", max_resolution: "1024x1024" }, /max_resolution/],
    ["default over max", { max_resolution: "512x512", default_resolution: "1024x512" }, /default_resolution/],
    ["default over the built-in max", { default_resolution: "8192x512" }, /default_resolution/],
    ["default not listed", { resolution: "512x512 256x256", default_resolution: "128x128" }, /default_resolution/],
    ["max images with one static resolution", { resolution: "512x512", max_num_images_per_prompt: "4" }, /max_num_images_per_prompt/],
    ["static n without a static resolution", { num_images_per_prompt: "2" }, /num_images_per_prompt/],
    ["guidance without a static resolution", { guidance_scale: "3" }, /guidance_scale/],
    ["default steps over max", { default_num_inference_steps: "60", max_num_inference_steps: "50" }, /default_num_inference_steps/],
    ["NPU without a resolution", { target_device: "NPU" }, /NPU/],
    ["NPU with two loose adapters", { target_device: "NPU", resolution: "512x512", source_loras: "a=./a.safetensors,b=./b.safetensors" }, /LoRA|lora|composite/],
  ];
  for (const [what, flags, reason] of cases) {
    test(what, async () => {
      const settings = imageGraphSettingsFromFlags(flags);
      const paths = Object.fromEntries((settings.loras?.adapters ?? []).map((a) => [a.alias, `loras/${a.alias}.safetensors`]));
      const text = imageGenerationGraph(settings, paths);
      await assert.rejects(checkExportedGraph(text), (e: unknown) => {
        assert.ok(e instanceof GraphExportError, String(e));
        assert.match(e.message, /^these flags describe a graph that would not load: /);
        assert.match(e.message, reason);
        assert.ok(!e.message.includes("\n"), "one line");
        return true;
      });
    });
  }
  test("a graph from sound flags passes the same check", async () => {
    await checkExportedGraph(imageGenerationGraph(imageGraphSettingsFromFlags({ resolution: "512x512", num_images_per_prompt: "2", guidance_scale: "5", target_device: "NPU" })));
  });
  test("settings given directly are checked field by field by imageGenerationGraph", () => {
    refusal(() => imageGenerationGraph({ maxNumInferenceSteps: 0 }), "max_num_inference_steps");
    refusal(() => imageGenerationGraph({ guidanceScale: Number.NaN, resolution: "512x512" }), "guidance_scale");
    refusal(() => imageGenerationGraph({ maxResolution: "big" }), "max_resolution");
  });
});

describe("parseSourceLoras", () => {
  test("every kind of source, with and without alpha", () => {
    assert.deepEqual(parseSourceLoras("a=org/name,b=org/name@dir/file.safetensors:0.5,c=https://host.example:8080/x.safetensors,d=http://h/x.safetensors:2,e=/abs/x.safetensors:1e-1,f=./rel.safetensors,g=.\\win.safetensors,h=C:\\loras\\x.safetensors:0.3,i=D:\\y.safetensors"), {
      adapters: [
        { alias: "a", source: { kind: "hf", repo: "org/name" } },
        { alias: "b", source: { kind: "hf", repo: "org/name", file: "dir/file.safetensors" }, alpha: 0.5 },
        { alias: "c", source: { kind: "url", url: "https://host.example:8080/x.safetensors" } },
        { alias: "d", source: { kind: "url", url: "http://h/x.safetensors" }, alpha: 2 },
        { alias: "e", source: { kind: "local", path: "/abs/x.safetensors" }, alpha: 0.1 },
        { alias: "f", source: { kind: "local", path: "./rel.safetensors" } },
        { alias: "g", source: { kind: "local", path: ".\\win.safetensors" } },
        { alias: "h", source: { kind: "local", path: "C:\\loras\\x.safetensors" }, alpha: 0.3 },
        { alias: "i", source: { kind: "local", path: "D:\\y.safetensors" } },
      ],
      composites: [],
    });
  });
  test("a URL whose only colons are scheme and port has no alpha", () => {
    assert.deepEqual(parseSourceLoras("u=https://host:8443").adapters[0], { alias: "u", source: { kind: "url", url: "https://host:8443" } });
    assert.deepEqual(parseSourceLoras("u=https://host:8443/a.safetensors:0.25").adapters[0], { alias: "u", source: { kind: "url", url: "https://host:8443/a.safetensors" }, alpha: 0.25 });
  });
  test("composites, defined before or after their adapters; component alpha defaults to 1", () => {
    assert.deepEqual(parseSourceLoras("mix=@a:0.7+@b, a=org/a , b=org/b:0.5"), {
      adapters: [{ alias: "a", source: { kind: "hf", repo: "org/a" } }, { alias: "b", source: { kind: "hf", repo: "org/b" }, alpha: 0.5 }],
      composites: [{ alias: "mix", components: [{ adapter: "a", alpha: 0.7 }, { adapter: "b", alpha: 1 }] }],
    });
  });
  const bad: [string, string, RegExp][] = [
    ["empty alias", "=org/a", /empty alias/],
    ["duplicate alias", "a=org/a,a=org/b", /"a" is defined twice/],
    ["duplicate alias across a composite", "a=org/a,a=@a", /"a" is defined twice/],
    ["alias with a space", "my lora=org/a", /"my lora" may only contain/],
    ["composite naming an unknown adapter", "a=org/a,c=@a+@zz", /"c" names "zz"/],
    ["composite naming a composite", "a=org/a,c=@a,d=@c", /"d" names "c"/],
    ["alpha x", "a=org/a:x", /alpha "x"/],
    ["component alpha x", "a=org/a,c=@a:x", /alpha "x"/],
    ["url alpha x", "a=https://h:1/a.safetensors:x", /alpha "x"/],
    ["alpha nan", "a=org/a:nan", /alpha "nan"/],
    ["no =", "org/a", /must be alias=source/],
    ["empty source", "a=", /no source/],
    ["empty entry", "a=org/a,,b=org/b", /empty entry/],
    ["trailing comma", "a=org/a,", /empty entry/],
    ["empty text", "", /at least one/],
    ["not a repo", "a=justaname", /expected a Hugging Face repo/],
    ["relative without ./", "a=../up.safetensors", /expected a Hugging Face repo/],
    ["repo file not safetensors", "a=org/a@file.bin", /expected a Hugging Face repo/],
    ["empty component", "c=@", /component "@"/],
    ["component without @", "a=org/a,c=@a+a", /component "a"/],
    ["component twice", "a=org/a,c=@a+@a", /twice/],
    ["bad URL", "a=https://", /invalid URL/],
  ];
  for (const [what, text, message] of bad) {
    test(`refused: ${what}`, () => {
      const m = refusal(() => parseSourceLoras(text), "source_loras");
      assert.match(m, message);
      refusal(() => imageGraphSettingsFromFlags({ source_loras: text }), "source_loras");
    });
  }
});
