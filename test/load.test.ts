import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GraphDocument, NodeOptionsEntry, OptionsMessage } from "../src/graph/config.js";
import { formatDiagnostic, GraphError } from "../src/graph/diagnostics.js";
import { loadGraphFile, parseGraphText } from "../src/graph/load.js";
import { Schema } from "../src/graph/schema.js";

const schema = new Schema();
const fixture = (name: string) => fileURLToPath(new URL(`../../test/fixtures/graphs/${name}`, import.meta.url));
const load = (name: string) => loadGraphFile(fixture(name), schema);
const at = (file: string, line: number, column: number) => ({ file, line, column });

/** The only payload of node 0, which must be a decoded message. */
function onlyOptions(doc: GraphDocument, node = 0): { entry: NodeOptionsEntry; o: OptionsMessage } {
  assert.equal(doc.nodeOptions[node].length, 1);
  const entry = doc.nodeOptions[node][0];
  assert.ok(entry.message, "decoded");
  return { entry, o: entry.message };
}
const list = (v: unknown) => v as OptionsMessage[];

/** Asserts parseGraphText fails with exactly this one `file:line:col: message`. */
function fails(text: string, expected: string): void {
  assert.throws(
    () => parseGraphText(text, "graph.pbtxt", schema),
    (e: unknown) => {
      assert.ok(e instanceof GraphError, String(e));
      assert.deepEqual(e.diagnostics.map(formatDiagnostic), [expected]);
      return true;
    },
  );
}

describe("OVMS image-generation graphs", () => {
  test("the Python exporter's template with every ImageGenCalculatorOptions field", async () => {
    const file = fixture("ovms-python-export.pbtxt");
    const doc = await loadGraphFile(file, schema);
    assert.equal(doc.file, file);
    assert.deepEqual(doc.directives, { graphQueueMaxSize: "AUTO" });
    assert.deepEqual(doc.headerComments, ["OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO"]);
    assert.deepEqual(doc.warnings, []);
    const node = doc.config.node[0];
    assert.deepEqual([node.name, node.calculator, node.input_stream, node.input_side_packet, node.output_stream], [
      "ImageGenExecutor", "ImageGenCalculator", ["HTTP_REQUEST_PAYLOAD:input"], ["IMAGE_GEN_NODE_RESOURCES:pipes"], ["HTTP_RESPONSE_PAYLOAD:output"],
    ]);
    assert.deepEqual(doc.config.input_stream, ["HTTP_REQUEST_PAYLOAD:input"]);

    const { entry, o } = onlyOptions(doc);
    assert.equal(entry.typeName, "mediapipe.ImageGenCalculatorOptions");
    assert.equal(entry.via, "node_options");
    assert.deepEqual(entry.location, at(file, 12, 5));
    const optionsType = schema.findType("mediapipe.ImageGenCalculatorOptions")!;
    // Every OVMS field (graphserve's own start at 1001).
    assert.ok(optionsType.fieldsArray.filter((f) => f.id < 1000).every((f) => Object.hasOwn(o, f.name)), "every field is set");
    assert.deepEqual(
      [o.models_path, o.plugin_config, o.device, o.resolution, o.num_images_per_prompt, o.guidance_scale, o.max_resolution,
        o.default_resolution, o.max_num_images_per_prompt, o.default_num_inference_steps, o.max_num_inference_steps],
      ["./", '{"NUM_STREAMS":"14","CACHE_DIR":"/cache"}', "GPU", "512x512", 4, 7.5, "3000x4000", "300x400", 7, 2, 3],
    );
    const [a, b] = list(o.lora_adapters);
    assert.deepEqual([a.alias, a.path, a.alpha, a.mode], ["a", "loras/a.safetensors", 0.7, 0]);
    assert.deepEqual([b.alias, b.path, b.alpha, b.mode, Object.hasOwn(b, "alpha")], ["b", "loras/b.safetensors", 1, 0, false]);
    const [combo] = list(o.composite_lora_adapters);
    assert.equal(combo.alias, "ab");
    assert.deepEqual(list(combo.components).map((c) => [c.adapter_alias, c.alpha]), [["a", 0.25], ["b", 1]]);

    // The Any carries the same payload, encoded.
    const any = node.node_options[0];
    assert.equal(any.type_url, "type.googleapis.com/mediapipe.ImageGenCalculatorOptions");
    const decoded = optionsType.toObject(optionsType.decode(any.value));
    assert.equal(decoded.plugin_config, o.plugin_config);
    assert.equal(decoded.lora_adapters[0].alias, "a");
    // Option fields are located too.
    assert.deepEqual(doc.locate(o, "guidance_scale"), at(file, 18, 7));
    assert.deepEqual(doc.locate(list(combo.components)[1], "adapter_alias"), at(file, 29, 26));
  });

  test("the C++ exporter's layout: 10-space indentation, no commas, device, LoRA mode STATIC", async () => {
    const doc = await load("ovms-cpp-export.pbtxt");
    assert.deepEqual(doc.directives, { graphQueueMaxSize: "AUTO" });
    const { o } = onlyOptions(doc);
    assert.deepEqual([o.models_path, o.device, o.resolution, o.max_num_inference_steps], ["./", "NPU", "512x512", 40]);
    const [lora] = list(o.lora_adapters);
    assert.deepEqual([lora.alias, lora.path, lora.alpha, lora.mode], ["style", "loras/style.safetensors", 0.5, 1]);
    assert.deepEqual(list(list(o.composite_lora_adapters)[0].components).map((c) => c.adapter_alias), ["style"]);
    assert.deepEqual(doc.locate(o, "device"), at(fixture("ovms-cpp-export.pbtxt"), 14, 11));
  });

  test("the older header-less v2025.2 template: defaults come from the proto", async () => {
    const doc = await load("ovms-v2025.2-export.pbtxt");
    assert.deepEqual(doc.directives, {});
    assert.deepEqual(doc.headerComments, []);
    const { o } = onlyOptions(doc);
    assert.deepEqual([o.models_path, o.device], ["./", "CPU"]);
    assert.ok(!Object.hasOwn(o, "plugin_config"));
    assert.deepEqual([o.plugin_config, o.max_resolution, o.max_num_images_per_prompt, o.default_num_inference_steps], ["{}", "4096x4096", 10, 50]);
    assert.deepEqual(list(o.lora_adapters), []);
  });

  test("a required option missing is a located error", () => {
    fails(
      `node {\n  node_options: {\n    [type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: { device: "CPU" }\n  }\n}\n`,
      `graph.pbtxt:3:5: missing required field "models_path" in mediapipe.ImageGenCalculatorOptions`,
    );
  });
});

describe("MediaPipe graph syntax", () => {
  test("node forms, <…> bodies, loopback, sync-set handler, executor, both option styles and an unknown option type", async () => {
    const file = fixture("mixed-syntax.pbtxt");
    const doc = await loadGraphFile(file, schema);
    const { config } = doc;
    assert.deepEqual(doc.directives, {});
    assert.equal(doc.headerComments.length, 3);
    assert.equal(config.node.length, 3);
    assert.equal(doc.nodeOptions.length, 3);

    // executor { … options { [mediapipe.ThreadPoolExecutorOptions.ext] { num_threads: 2 } } }
    const [executor] = config.executor;
    assert.deepEqual([executor.name, executor.type], ["workers", "ThreadPoolExecutor"]);
    const pool = executor.options?.[".mediapipe.ThreadPoolExecutorOptions.ext"] as OptionsMessage;
    assert.equal(pool.num_threads, 2);

    // node { … node_options: { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { max_in_flight: 2 } } }
    const [limiter, queueLimiter, llm] = config.node;
    assert.deepEqual(limiter.input_stream_info.map((i) => [i.tag_index, i.back_edge]), [["FINISHED", true]]);
    const first = onlyOptions(doc, 0);
    assert.deepEqual([first.entry.typeName, first.entry.via, first.entry.location], ["mediapipe.FlowLimiterCalculatorOptions", "node_options", at(file, 16, 19)]);
    assert.deepEqual([first.o.max_in_flight, first.o.max_in_queue, Object.hasOwn(first.o, "max_in_queue")], [2, 0, false]);

    // node: < … options { [mediapipe.FlowLimiterCalculatorOptions.ext] { max_in_queue: 1 } } >
    assert.deepEqual(queueLimiter.input_stream, ["limited", "FINISHED:output"]);
    assert.equal(queueLimiter.executor, "workers");
    assert.deepEqual(queueLimiter.input_stream_info.map((i) => [i.tag_index, i.back_edge]), [["FINISHED", true]]);
    const second = onlyOptions(doc, 1);
    assert.deepEqual([second.entry.typeName, second.entry.via, second.entry.location], ["mediapipe.FlowLimiterCalculatorOptions", "options", at(file, 27, 13)]);
    assert.deepEqual([second.o.max_in_queue, second.o.max_in_flight], [1, 1]);
    assert.equal(queueLimiter.options?.[".mediapipe.FlowLimiterCalculatorOptions.ext"], second.o);

    // node{ … LOOPBACK back edge, SyncSetInputStreamHandler, unknown LLMCalculatorOptions }
    assert.deepEqual(llm.input_stream_info.map((i) => [i.tag_index, i.back_edge]), [["LOOPBACK:0", true]]);
    const handler = llm.input_stream_handler!;
    assert.equal(handler.input_stream_handler, "SyncSetInputStreamHandler");
    const syncSet = handler.options?.[".mediapipe.SyncSetInputStreamHandlerOptions.ext"] as OptionsMessage;
    assert.deepEqual(list(syncSet.sync_set).map((s) => s.tag_index), [["LOOPBACK:0"]]);
    assert.deepEqual(doc.nodeOptions[2], [{
      typeName: "mediapipe.LLMCalculatorOptions", via: "node_options", rawText: `{ models_path: "./" }`, location: at(file, 48, 7),
    }]);
    assert.equal(llm.node_options[0].type_url, "type.googleapis.com/mediapipe.LLMCalculatorOptions");
    assert.equal(doc.warnings.length, 1);
    assert.equal(formatDiagnostic(doc.warnings[0]), `${file}:48:7: unknown options type 'mediapipe.LLMCalculatorOptions' kept unparsed: no loaded .proto file defines it`);

    // locate(): the node, a list element, an absent field.
    assert.deepEqual(doc.locate(queueLimiter), at(file, 19, 1));
    assert.deepEqual(doc.locate(queueLimiter, "input_stream", 1), at(file, 22, 29));
    assert.deepEqual(doc.locate(queueLimiter, "input_side_packet"), at(file, 19, 1));
    assert.deepEqual(doc.locate(config, "node", 2), at(file, 30, 1));
  });

  test("a node may carry options both ways; entries keep source order", () => {
    const doc = parseGraphText(`node {
  node_options { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { max_in_flight: 3 } }
  options { [mediapipe.ImageGenCalculatorOptions.ext] { models_path: "m" } }
  node_options { [type.googleapis.com/mediapipe.SomethingElse] { } }
}
node {}`, "g.pbtxt", schema);
    assert.deepEqual(doc.nodeOptions.map((n) => n.map((e) => [e.typeName, e.via, e.location.line])), [
      [["mediapipe.FlowLimiterCalculatorOptions", "node_options", 2], ["mediapipe.ImageGenCalculatorOptions", "options", 3], ["mediapipe.SomethingElse", "node_options", 4]],
      [],
    ]);
    assert.equal(doc.nodeOptions[0][1].message?.models_path, "m");
  });

  test("node_options written with explicit type_url and value fields are decoded too", () => {
    const doc = parseGraphText(String.raw`node {
  node_options { type_url: "type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions" value: "\x08\x03" }
  node_options { type_url: "type.googleapis.com/mediapipe.Unknown" }
}`, "g.pbtxt", schema);
    const [known, unknown] = doc.nodeOptions[0];
    assert.deepEqual([known.typeName, known.via, known.message?.max_in_flight, known.location], ["mediapipe.FlowLimiterCalculatorOptions", "node_options", 3, at("g.pbtxt", 2, 3)]);
    assert.deepEqual(doc.locate(known.message!), at("g.pbtxt", 2, 3));
    assert.deepEqual([unknown.typeName, unknown.message, unknown.rawText], ["mediapipe.Unknown", undefined, undefined]);
    assert.match(doc.warnings[0].message, /^unknown options type 'mediapipe.Unknown' kept unparsed/);
    assert.throws(
      () => parseGraphText(String.raw`node { node_options { type_url: "type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions" value: "\x08" } }`, "g.pbtxt", schema),
      (e: unknown) => e instanceof GraphError && /^g\.pbtxt:1:8: expected node_options value to be an encoded mediapipe\.FlowLimiterCalculatorOptions, found bytes that do not decode: /.test(formatDiagnostic(e.diagnostics[0])),
    );
  });

  test("an unknown extension in node options is kept and warned about", () => {
    const doc = parseGraphText(`node {\n  options { [mediapipe.FooCalculatorOptions.ext] { x: 1 } }\n}`, "g.pbtxt", schema);
    assert.deepEqual(doc.nodeOptions[0], [{ typeName: "mediapipe.FooCalculatorOptions", via: "options", rawText: "{ x: 1 }", location: at("g.pbtxt", 2, 13) }]);
    assert.deepEqual(doc.warnings, [{ message: "unknown options type 'mediapipe.FooCalculatorOptions' kept unparsed: no loaded .proto file defines it", location: at("g.pbtxt", 2, 13) }]);
  });

  test("errors name file:line:col, what was expected and what was found", () => {
    fails(`# header
input_stream: "in"
node {
  calculator: "PassThroughCalculator"
  input_stream: "in"
  output_stream: "out"
}
node {
  calculator: "PassThroughCalculator"
  output_stream: "out2"
  # indented by four below
    inptu_stream: "out"
}`, `graph.pbtxt:12:5: unknown field "inptu_stream" in mediapipe.CalculatorGraphConfig.Node (did you mean "input_stream"?)`);
    fails(`input_stream: "in"\nnode = {\n}`, `graph.pbtxt:2:6: expected ":" or "{" after field name "node", found "="`);
    fails(`input_stream: "in"\n\nnode {\n  calculator: "X"\n`, `graph.pbtxt:5:1: unexpected end of file: expected "}" to close "node" opened at 3:1`);
    fails(`node { calculator: "X" max_in_flight: 1.5 }`, `graph.pbtxt:1:39: expected an integer for "max_in_flight" (int32), found "1.5"`);
    fails(`node { input_stream_info { back_edge: yes } }`, `graph.pbtxt:1:39: expected true or false for "back_edge", found "yes"`);
    fails(`node { options { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] {} } }`,
      `graph.pbtxt:1:18: expected a field name or "[extension]", found the type URL "[type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions]": expanded values belong only inside a google.protobuf.Any field, and this is mediapipe.CalculatorOptions`);
    fails(`executor { options { [mediapipe.FlowLimiterCalculatorOptions.ext] { max_in_flight: 1 } } }`,
      `graph.pbtxt:1:22: extension "[mediapipe.FlowLimiterCalculatorOptions.ext]" extends mediapipe.CalculatorOptions, not mediapipe.MediaPipeOptions: expected an extension of mediapipe.MediaPipeOptions`);
    fails(`node { options { max_in_flight: 1 } }`,
      `graph.pbtxt:1:18: unknown field "max_in_flight" in mediapipe.CalculatorOptions (expected a field of mediapipe.CalculatorOptions or an extension such as "[package.XOptions.ext] { … }")`);
  });
});

describe("the OVMS_GRAPH_QUEUE_MAX_SIZE header directive", () => {
  const directive = (header: string) => parseGraphText(`${header}\ninput_stream: "in"\n`, "g.pbtxt", schema).directives;

  test("AUTO or a non-negative count, among other header comments", () => {
    assert.deepEqual(directive("# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO"), { graphQueueMaxSize: "AUTO" });
    assert.deepEqual(directive("# Copyright\n\n#OVMS_GRAPH_QUEUE_MAX_SIZE:4  \n# more"), { graphQueueMaxSize: 4 });
    assert.deepEqual(directive("#   OVMS_GRAPH_QUEUE_MAX_SIZE :  0"), { graphQueueMaxSize: 0 });
    assert.deepEqual(directive("# OVMS_GRAPH_QUEUE_MAX_SIZE_OTHER: x"), {});
    assert.deepEqual(parseGraphText("# OVMS_GRAPH_QUEUE_MAX_SIZE: 3\r\n# b\r\ninput_stream: \"in\"\r\n", "g.pbtxt", schema).directives, { graphQueueMaxSize: 3 });
    // Only header comments count.
    assert.deepEqual(parseGraphText(`input_stream: "in"\n# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO\n`, "g.pbtxt", schema).directives, {});
    const doc = parseGraphText(`# A\n  #  B  \n\ninput_stream: "in" # not header\n`, "g.pbtxt", schema);
    assert.deepEqual(doc.headerComments, ["A", "B"]);
  });

  test("anything else is a located error", () => {
    fails(`# OVMS_GRAPH_QUEUE_MAX_SIZE: -1`, `graph.pbtxt:1:30: expected AUTO or a non-negative integer after "OVMS_GRAPH_QUEUE_MAX_SIZE:", found "-1"`);
    fails(`# x\n#  OVMS_GRAPH_QUEUE_MAX_SIZE: auto`, `graph.pbtxt:2:31: expected AUTO or a non-negative integer after "OVMS_GRAPH_QUEUE_MAX_SIZE:", found "auto"`);
    fails(`# OVMS_GRAPH_QUEUE_MAX_SIZE: 1.5`, `graph.pbtxt:1:30: expected AUTO or a non-negative integer after "OVMS_GRAPH_QUEUE_MAX_SIZE:", found "1.5"`);
    fails(`# OVMS_GRAPH_QUEUE_MAX_SIZE: 99999999999999999999`, `graph.pbtxt:1:30: expected AUTO or a non-negative integer after "OVMS_GRAPH_QUEUE_MAX_SIZE:", found "99999999999999999999"`);
    fails(`# OVMS_GRAPH_QUEUE_MAX_SIZE:`, `graph.pbtxt:1:29: expected AUTO or a non-negative integer after "OVMS_GRAPH_QUEUE_MAX_SIZE:", found end of line`);
    fails(`# OVMS_GRAPH_QUEUE_MAX_SIZE AUTO`, `graph.pbtxt:1:29: expected ":" after OVMS_GRAPH_QUEUE_MAX_SIZE, found "AUTO"`);
    fails(`# OVMS_GRAPH_QUEUE_MAX_SIZE: 1\n# OVMS_GRAPH_QUEUE_MAX_SIZE: 2`, `graph.pbtxt:2:3: OVMS_GRAPH_QUEUE_MAX_SIZE is given more than once: expected one directive, already given at 1:3`);
  });
});

describe("loadGraphFile", () => {
  test("an unreadable file is a GraphError naming the path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "graphserve-load-"));
    const missing = join(dir, "missing.pbtxt");
    await assert.rejects(loadGraphFile(missing, schema), (e: unknown) => e instanceof GraphError && e.message === `cannot read graph file "${missing}": no such file`);
    await assert.rejects(loadGraphFile(dir, schema), (e: unknown) => e instanceof GraphError && e.message === `cannot read graph file "${dir}": it is a directory`);
    const bad = join(dir, "bad.pbtxt");
    writeFileSync(bad, "node {");
    await assert.rejects(loadGraphFile(bad, schema), (e: unknown) => e instanceof GraphError && e.message === `${bad}:1:7: unexpected end of file: expected "}" to close "node" opened at 1:1`);
  });

  test("the example graphs in graphs/ load", async () => {
    for (const name of ["image-generation", "flow-limited-echo"]) {
      const doc = await loadGraphFile(fileURLToPath(new URL(`../../graphs/${name}/graph.pbtxt`, import.meta.url)), schema);
      assert.ok(doc.config.node.length > 0);
      assert.ok(doc.nodeOptions[0][0].message);
      assert.ok(doc.directives.graphQueueMaxSize !== undefined);
    }
  });
});
