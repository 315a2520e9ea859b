import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { Calculator, type CalculatorContract, type NodeShape } from "../src/engine/calculator.js";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { formatDiagnostic, GraphError } from "../src/graph/diagnostics.js";
import { parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";
import type { ValidatedGraph } from "../src/graph/validated.js";

// Test-only calculators: each declares just what a rule needs.
abstract class Test extends Calculator {
  override process(): void {}
}
const ANY = { inputs: "any", outputs: "any", inputSidePackets: "any", outputSidePackets: "any" } as const;
class Any extends Test {
  static override readonly contract: CalculatorContract = ANY;
}
class Strict extends Test {
  static override readonly contract: CalculatorContract = {
    inputs: { "": {}, EXTRA: { multiple: true, optional: true } },
    outputs: { OUT: {} },
    inputSidePackets: { MODEL: {} },
  };
}
class Typed extends Test {
  static override readonly contract: CalculatorContract = {
    inputs: { IMAGE: { type: "Image", optional: true }, TEXT: { type: "Text", optional: true }, RAW: { optional: true } },
    outputs: { IMAGE: { type: "Image", optional: true }, TEXT: { type: "Text", optional: true }, RAW: { optional: true } },
    inputSidePackets: { MODEL: { type: "Model", optional: true } },
    outputSidePackets: { MODEL: { type: "Model", optional: true }, TOKENIZER: { type: "Tokenizer", optional: true } },
  };
}
interface LimitOptions {
  max_in_flight: number;
  max_in_queue: number;
}
class Limited extends Test {
  static override readonly contract: CalculatorContract = {
    ...ANY,
    options: "mediapipe.FlowLimiterCalculatorOptions",
    validate: (node: NodeShape) => ((node.options as LimitOptions).max_in_flight > 5 ? "max_in_flight must be at most 5" : undefined),
  };
}
class NeedsOptions extends Test {
  static override readonly contract: CalculatorContract = { ...ANY, options: ".mediapipe.FlowLimiterCalculatorOptions", optionsRequired: true };
}
class Unloaded extends Test {
  static override readonly contract: CalculatorContract = { ...ANY, options: "test.NotLoadedOptions" };
}
class Throws extends Test {
  static override readonly contract: CalculatorContract = {
    ...ANY,
    validate() {
      throw new Error("kaboom");
    },
  };
}
class Heavy extends Test {
  static override readonly contract: CalculatorContract = { ...ANY, executor: "worker" };
}
class Eager extends Test {
  static override readonly contract: CalculatorContract = { ...ANY, inputStreamHandler: "ImmediateInputStreamHandler", timestampOffset: 0 };
}

const registry = new CalculatorRegistry();
for (const cls of [Any, Strict, Typed, Limited, NeedsOptions, Unloaded, Throws, Heavy, Eager]) registry.register(cls, import.meta.url);

/** Each array element is one line of the file, so line N is element N-1. */
const parse = (lines: readonly string[]) => parseGraphText(lines.join("\n"), "g.pbtxt", registry.schema);
const valid = (lines: readonly string[]): ValidatedGraph => validateGraph(parse(lines), registry);
const at = (line: number, column: number, message: string) => `g.pbtxt:${line}:${column}: ${message}`;

/** Validation fails with exactly these `file:line:col: message` diagnostics, in this order. */
function fails(lines: readonly string[], ...expected: string[]): void {
  const doc = parse(lines);
  assert.throws(
    () => validateGraph(doc, registry),
    (e: unknown) => {
      assert.ok(e instanceof GraphError, String(e));
      assert.deepEqual(e.diagnostics.map(formatDiagnostic), expected);
      assert.match(e.message, /^ValidatedGraphConfig Initialization failed\.\n/);
      return true;
    },
  );
}

const missingInput = (name: string, id: number, node: string) =>
  `Input Stream "${name}" for node with sorted index ${id} name ${node} does not have a corresponding output stream.`;

describe("a valid graph", () => {
  const graph = valid([
    'input_stream: "in"',
    'output_stream: "out"',
    'input_side_packet: "given"',
    "node {",
    '  calculator: "Any"',
    '  input_stream: "mid"',
    '  output_stream: "out"',
    "}",
    "node {",
    '  name: "first"',
    '  calculator: "Any"',
    '  input_stream: "in"',
    '  input_side_packet: "SP:model"',
    '  input_side_packet: "given"',
    '  output_stream: "mid"',
    '  output_side_packet: "made"',
    "  max_in_flight: 3",
    "}",
    "node {",
    '  calculator: "Any"',
    '  input_side_packet: "made"',
    '  input_side_packet: "model"',
    '  output_stream: "unused"',
    "  source_layer: 2",
    "}",
  ]);

  test("nodes are topologically sorted, keeping file order among ready nodes; ids are positions", () => {
    assert.deepEqual(graph.nodes.map((n) => [n.id, n.name]), [[0, "first"], [1, "Any_1"], [2, "Any_2"]]);
    assert.deepEqual(graph.nodes.map((n) => n.location), [
      { file: "g.pbtxt", line: 9, column: 1 },
      { file: "g.pbtxt", line: 4, column: 1 },
      { file: "g.pbtxt", line: 19, column: 1 },
    ]);
  });

  test("each node is bound and its ports are in flat order", () => {
    const first = graph.nodes[0];
    assert.equal(first.calculator, Any);
    assert.equal(first.calculatorName, "Any");
    assert.deepEqual(first.inputSidePackets, [
      { tag: "", index: 0, name: "given", key: 0 },
      { tag: "SP", index: 0, name: "model", key: "SP" },
    ]);
    assert.deepEqual(first.backEdge, [false]);
    assert.deepEqual([first.maxInFlight, graph.nodes[1].maxInFlight], [3, 1]);
    assert.deepEqual(graph.nodes.map((n) => n.sourceLayer), [0, 0, 2]);
    assert.deepEqual(graph.nodes.map((n) => [n.executor, n.inputStreamHandler, n.options, n.timestampOffset]), [
      ["", { kind: "default" }, undefined, undefined],
      ["", { kind: "default" }, undefined, undefined],
      ["", { kind: "default" }, undefined, undefined],
    ]);
  });

  test("streams and side packets with producers and consumers", () => {
    assert.deepEqual(graph.inputStreams, [{ tag: "", index: 0, name: "in", key: 0 }]);
    assert.deepEqual(graph.outputStreams, [{ tag: "", index: 0, name: "out", key: 0 }]);
    assert.deepEqual([...graph.streams.values()], [
      { name: "in", producer: "graph", consumers: [{ node: 0, port: 0 }], graphOutput: false },
      { name: "mid", producer: { node: 0, port: 0 }, consumers: [{ node: 1, port: 0 }], graphOutput: false },
      { name: "out", producer: { node: 1, port: 0 }, consumers: [], graphOutput: true },
      { name: "unused", producer: { node: 2, port: 0 }, consumers: [], graphOutput: false },
    ]);
    assert.deepEqual([...graph.sidePackets.values()], [
      { name: "given", producer: "graph", consumers: [{ node: 0, port: 0 }] },
      { name: "made", producer: { node: 0, port: 0 }, consumers: [{ node: 2, port: 0 }] },
      { name: "model", producer: "graph", consumers: [{ node: 0, port: 1 }, { node: 2, port: 1 }] },
    ]);
    // Consumed and produced by no node, in order of first use.
    assert.deepEqual(graph.requiredSidePackets, ["given", "model"]);
  });

  test("graph-wide defaults", () => {
    assert.deepEqual([...graph.executors.values()], [
      { name: "", type: "", numThreads: undefined },
      { name: "__workers", type: "ThreadPoolExecutor", numThreads: undefined },
    ]);
    assert.equal(graph.maxQueueSize, 100);
    assert.equal(graph.reportDeadlock, false);
    assert.equal(graph.graphQueueSize, undefined);
    assert.equal(graph.document.file, "g.pbtxt");
  });
});

describe("names, tags and indexes", () => {
  test("a malformed entry anywhere is reported at that entry", () => {
    fails(
      ['input_stream: "In"', 'output_stream: "a:b"', 'input_side_packet: "X:01:y"', "node {", '  calculator: "Any"', '  input_stream: "in"', '  input_stream: "TAG:"', '  output_stream: "out-1"', '  input_side_packet: "s p"', '  output_side_packet: "A:B:c:d"', "}"],
      at(1, 1, 'TAG:index:name is invalid, "In" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").'),
      at(2, 1, 'TAG:index:name is invalid, "a:b" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").'),
      at(3, 1, 'TAG:index:name is invalid, "X:01:y" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").'),
      at(6, 3, missingInput("in", 0, "Any")),
      at(7, 3, 'TAG:index:name is invalid, "TAG:" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").'),
      at(8, 3, 'TAG:index:name is invalid, "out-1" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").'),
      at(9, 3, 'TAG:index:name is invalid, "s p" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").'),
      at(10, 3, 'TAG:index:name is invalid, "A:B:c:d" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").'),
    );
  });

  test("TAG:name twice in one list", () => {
    fails(
      ['input_stream: "a"', 'input_stream: "b"', "node {", '  calculator: "Any"', '  input_stream: "TAG:a"', '  input_stream: "TAG:b"', "}"],
      at(6, 3, 'tag "TAG" index 0 already had a name "a" but is being reassigned a name "b"'),
    );
  });

  test("indexes of a tag must be dense", () => {
    fails(
      ['input_stream: "a"', 'input_stream: "b"', "node {", '  calculator: "Any"', '  input_stream: "T:0:a"', '  input_stream: "T:2:b"', "}"],
      at(6, 3, 'Not all indexes were assigned names.  Tag "T" has the following: index 0 name "a", index 1 name <missing>, index 2 name "b"'),
    );
  });

  test("graph output_stream tags are checked too", () => {
    fails(['input_stream: "a"', 'output_stream: "X:a"', 'output_stream: "X:a"'], at(3, 1, 'tag "X" index 0 already had a name "a" but is being reassigned a name "a"'));
  });
});

describe("producers and consumers", () => {
  test("a stream made by two nodes", () => {
    fails(
      ["node {", '  calculator: "Any"', '  output_stream: "x"', "}", "node {", '  calculator: "Any"', '  output_stream: "OUT:x"', "}"],
      at(7, 3, 'Output Stream "x" defined twice.'),
    );
  });

  test("a graph input stream counts as a producer", () => {
    fails(['input_stream: "x"', "node {", '  calculator: "Any"', '  output_stream: "x"', "}"], at(4, 3, 'Output Stream "x" defined twice.'));
    fails(['input_stream: "x"', 'input_stream: "T:x"'], at(2, 1, 'Output Stream "x" defined twice.'));
  });

  test("a side packet made twice; a graph input side packet counts as a producer", () => {
    fails(
      ['input_side_packet: "s"', "node {", '  calculator: "Any"', '  output_side_packet: "s"', '  output_side_packet: "A:t"', "}", "node {", '  calculator: "Any"', '  output_side_packet: "t"', "}"],
      at(4, 3, 'Output Side Packet "s" defined twice.'),
      at(9, 3, 'Output Side Packet "t" defined twice.'),
    );
  });

  test("a consumed stream nobody makes, with the node's sorted index and canonical name", () => {
    fails(
      ["node {", '  calculator: "Any"', '  input_stream: "b_out"', "}", "node {", '  name: "b"', '  calculator: "Any"', '  input_stream: "nowhere"', '  output_stream: "b_out"', "}"],
      at(8, 3, missingInput("nowhere", 0, "b")),
    );
  });

  test("graph output streams must be produced; a graph input may be one", () => {
    fails(['input_stream: "a"', 'output_stream: "a"', 'output_stream: "b"'], at(3, 1, 'Graph output stream "b" is not produced by any node or graph input stream.'));
    const graph = valid(['input_stream: "a"', 'output_stream: "a"']);
    assert.deepEqual([...graph.streams.values()], [{ name: "a", producer: "graph", consumers: [], graphOutput: true }]);
    assert.deepEqual(graph.nodes, []);
  });

  test("side packets the graph declares and that nodes consume are required", () => {
    const graph = valid(['input_side_packet: "x"', 'input_side_packet: "unused"', "node {", '  calculator: "Any"', '  input_side_packet: "x"', "}"]);
    assert.deepEqual(graph.requiredSidePackets, ["x"]);
    assert.deepEqual(graph.sidePackets.get("unused"), { name: "unused", producer: "graph", consumers: [] });
  });

  test("a side packet only optional ports read is not required; one a required port reads is", () => {
    const graph = valid([
      'node { name: "a" calculator: "Typed" input_side_packet: "MODEL:opt" }',
      'node { name: "b" calculator: "Typed" input_side_packet: "MODEL:both" }',
      'node { name: "c" calculator: "Strict" input_stream: "x" input_side_packet: "MODEL:both" output_stream: "OUT:y" }',
      'input_stream: "x"',
    ]);
    assert.deepEqual(graph.requiredSidePackets, ["both"]);
    assert.deepEqual(graph.sidePackets.get("opt"), { name: "opt", producer: "graph", consumers: [{ node: 0, port: 0 }] });
  });

  test("each node records the module its calculator was registered from, and the graph its schema files", () => {
    const graph = valid(['node { calculator: "Any" }']);
    assert.equal(graph.nodes[0].moduleUrl, import.meta.url);
    assert.deepEqual(graph.schemaFiles, registry.schema.files);
    assert.ok(graph.schemaFiles.length > 0);
  });

  test("external_input is the deprecated spelling of input_side_packet", () => {
    const graph = valid(["node {", '  calculator: "Any"', '  external_input: "old"', "}"]);
    assert.deepEqual(graph.nodes[0].inputSidePackets.map((p) => p.name), ["old"]);
    assert.deepEqual(graph.requiredSidePackets, ["old"]);
    fails(
      ["node {", '  calculator: "Any"', '  input_side_packet: "new"', '  external_input: "old"', "}"],
      at(4, 3, "external_input is a deprecated alias of input_side_packet; give the side packets in input_side_packet only."),
    );
  });
});

describe("calculators and node names", () => {
  test("an unregistered calculator", () => {
    fails(["node {", '  calculator: "NoSuchCalculator"', "}", "node {", "}"], at(2, 3, 'Unable to find Calculator "NoSuchCalculator"'), at(4, 1, 'Unable to find Calculator ""'));
  });

  test("an unknown calculator's outputs still count, so its consumers are not reported too", () => {
    fails(["node {", '  calculator: "Nope"', '  output_stream: "x"', "}", "node {", '  calculator: "Any"', '  input_stream: "x"', "}"], at(2, 3, 'Unable to find Calculator "Nope"'));
  });

  test("canonical names: the calculator name, suffixed _1, _2 … on every repeat", () => {
    const graph = valid(["node {", '  calculator: "Any"', "}", "node {", '  name: "solo"', '  calculator: "Any"', "}", "node {", '  calculator: "Any"', "}", "node {", '  calculator: "Heavy"', "}"]);
    assert.deepEqual(graph.nodes.map((n) => n.name), ["Any_1", "solo", "Any_2", "Heavy"]);
  });

  test("explicit node names must be unique", () => {
    fails(
      ["node {", '  name: "n"', '  calculator: "Any"', "}", "node {", '  name: "n"', '  calculator: "Any"', "}"],
      at(6, 3, 'Node name "n" is used by more than one node; give each node a distinct name (unnamed nodes are named after their calculator, with _1, _2 … when repeated).'),
    );
  });

  test("an explicit name may not take a generated one", () => {
    fails(
      ["node {", '  calculator: "Any"', "}", "node {", '  calculator: "Any"', "}", "node {", '  name: "Any_1"', '  calculator: "Heavy"', "}"],
      at(8, 3, 'Node name "Any_1" is used by more than one node; give each node a distinct name (unnamed nodes are named after their calculator, with _1, _2 … when repeated).'),
    );
  });

  test("legacy packet generators, factories and status handlers are not supported", () => {
    fails(
      ['packet_generator { packet_generator: "G" }', 'status_handler { status_handler: "S" }', 'packet_factory { packet_factory: "F" }'],
      at(1, 1, "packet_generator is a legacy MediaPipe feature graphserve does not support; use a calculator instead."),
      at(2, 1, "status_handler is a legacy MediaPipe feature graphserve does not support; use a calculator instead."),
      at(3, 1, "packet_factory is a legacy MediaPipe feature graphserve does not support; use a calculator instead."),
    );
  });
});

describe("cycles and back edges", () => {
  const loop = (info: string[]) => [
    'input_stream: "in"',
    "node {",
    '  name: "a"',
    '  calculator: "Any"',
    '  input_stream: "in"',
    '  input_stream: "LOOP:b_out"',
    ...info,
    '  output_stream: "a_out"',
    "}",
    "node {",
    '  name: "b"',
    '  calculator: "Any"',
    '  input_stream: "a_out"',
    '  output_stream: "b_out"',
    "}",
  ];

  test("a cycle not broken by a back edge", () => {
    fails(loop([]), at(6, 3, "Generator side packet cycle or calculator stream cycle detected in graph: [a, b]"));
  });

  test("a back edge breaks it and is left out of the sort", () => {
    const graph = valid(loop(['  input_stream_info { tag_index: "LOOP" back_edge: true }']));
    assert.deepEqual(graph.nodes.map((n) => [n.name, n.backEdge]), [["a", [false, true]], ["b", [false]]]);
    assert.deepEqual(graph.streams.get("b_out")?.consumers, [{ node: 0, port: 1 }]);
  });

  test("input_stream_info without back_edge does not break it", () => {
    fails(loop(['  input_stream_info { tag_index: "LOOP" }']), at(6, 3, "Generator side packet cycle or calculator stream cycle detected in graph: [a, b]"));
  });

  test("a node reading its own output must mark it", () => {
    const self = ["node {", '  calculator: "Any"', '  input_stream: "x"', '  output_stream: "x"', "}"];
    fails(self, at(3, 3, "Generator side packet cycle or calculator stream cycle detected in graph: [Any]"));
    assert.deepEqual(valid([...self.slice(0, 4), '  input_stream_info: { tag_index: ":0", back_edge: true }', "}"]).nodes[0].backEdge, [true]);
  });

  test("side packets take part in the sort, and in cycles", () => {
    const graph = valid(["node {", '  name: "user"', '  calculator: "Any"', '  input_side_packet: "s"', "}", "node {", '  name: "maker"', '  calculator: "Any"', '  output_side_packet: "s"', "}"]);
    assert.deepEqual(graph.nodes.map((n) => n.name), ["maker", "user"]);
    fails(
      ["node {", '  name: "p"', '  calculator: "Any"', '  input_side_packet: "s"', '  output_stream: "x"', "}", "node {", '  name: "q"', '  calculator: "Any"', '  input_stream: "x"', '  output_side_packet: "s"', "}"],
      at(4, 3, "Generator side packet cycle or calculator stream cycle detected in graph: [p, q]"),
    );
  });

  test("the cycle is named in stream order from its earliest node, and its nodes still get an index", () => {
    fails(
      [
        "node {", '  name: "c"', '  calculator: "Any"', '  input_stream: "b_out"', '  output_stream: "c_out"', "}",
        "node {", '  name: "a"', '  calculator: "Any"', '  input_stream: "c_out"', '  output_stream: "a_out"', "}",
        "node {", '  name: "b"', '  calculator: "Any"', '  input_stream: "a_out"', '  output_stream: "b_out"', '  input_stream: "missing"', "}",
      ],
      at(4, 3, "Generator side packet cycle or calculator stream cycle detected in graph: [c, a, b]"),
      at(18, 3, missingInput("missing", 2, "b")),
    );
  });
});

describe("input_stream_info", () => {
  const node = (...info: string[]) => ['input_stream: "a"', 'input_stream: "b"', "node {", '  calculator: "Any"', '  input_stream: "a"', '  input_stream: "T:1:b"', '  input_stream: "T:0:a"', ...info, "}"];

  test("tag_index forms resolve to flat inputs", () => {
    const graph = valid(node('  input_stream_info { tag_index: "T:1" back_edge: true }', '  input_stream_info { tag_index: "" back_edge: false }'));
    assert.deepEqual(graph.nodes[0].backEdge, [false, false, true]);
  });

  test("must name an input of the node", () => {
    fails(
      node('  input_stream_info { tag_index: "T:2" back_edge: true }', '  input_stream_info { tag_index: ":1" }'),
      at(8, 23, 'Input stream with tag_index "T:2" requested in InputStreamInfo but is not an input stream of the calculator.'),
      at(9, 23, 'Input stream with tag_index ":1" requested in InputStreamInfo but is not an input stream of the calculator.'),
    );
  });

  test("at most one per input", () => {
    fails(node('  input_stream_info { tag_index: "T" }', '  input_stream_info { tag_index: "T:0" }'), at(9, 23, 'Input stream with tag_index "T:0" has more than one InputStreamInfo.'));
  });

  test("a malformed tag_index", () => {
    fails(node('  input_stream_info { tag_index: "t" }'), at(8, 23, 'TAG:index is invalid, "t" does not match "([A-Z_][A-Z0-9_]*)?(:(0|[1-9][0-9]*))?" (examples: "TAG" "VIDEO:2").'));
  });
});

describe("executors", () => {
  test("declared executors; a node's executor; the worker pool for calculators that prefer it", () => {
    const graph = valid([
      'executor { name: "pool" type: "ThreadPoolExecutor" options { [mediapipe.ThreadPoolExecutorOptions.ext] { num_threads: 3 } } }',
      'executor { name: "app" }',
      "num_threads: 2",
      'node { calculator: "Any" executor: "pool" }',
      'node { calculator: "Heavy" }',
      'node { calculator: "Heavy" executor: "app" }',
      'node { calculator: "Any" }',
    ]);
    assert.deepEqual(graph.nodes.map((n) => n.executor), ["pool", "__workers", "app", ""]);
    assert.deepEqual(Object.fromEntries(graph.executors), {
      pool: { name: "pool", type: "ThreadPoolExecutor", numThreads: 3 },
      app: { name: "app", type: "", numThreads: undefined },
      // graph-level num_threads folds into the default executor
      "": { name: "", type: "", numThreads: 2 },
      __workers: { name: "__workers", type: "ThreadPoolExecutor", numThreads: undefined },
    });
  });

  test("an explicit default ExecutorConfig stays the main thread", () => {
    const graph = valid(['executor { type: "ThreadPoolExecutor" options { [mediapipe.ThreadPoolExecutorOptions.ext] { num_threads: 4 } } }']);
    assert.deepEqual(graph.executors.get(""), { name: "", type: "", numThreads: 4 });
  });

  test("reserved, duplicate, unsupported and undeclared executors", () => {
    fails(
      [
        'executor { name: "default" }',
        'executor { name: "gpu" }',
        'executor { name: "__mine" }',
        'executor { name: "x" }',
        'executor { name: "x" }',
        'executor { name: "y" type: "ApplicationThreadExecutor" }',
        'node { calculator: "Any" executor: "nope" }',
        'node { calculator: "Any" executor: "__workers" }',
        'node { calculator: "Any" executor: "x" }',
      ],
      at(1, 12, '"default" is a reserved executor name.'),
      at(2, 12, '"gpu" is a reserved executor name.'),
      at(3, 12, '"__mine" is a reserved executor name.'),
      at(5, 12, 'ExecutorConfig for "x" is duplicate.'),
      at(6, 22, 'Executor type "ApplicationThreadExecutor" is not supported: use "ThreadPoolExecutor" (a worker pool) or leave the type empty.'),
      at(7, 26, 'The executor "nope" is not declared in an ExecutorConfig.'),
      at(8, 26, '"__workers" is a reserved executor name.'),
    );
  });

  test("two default ExecutorConfigs; num_threads beside one", () => {
    fails(['executor { type: "" }', "executor {}"], at(2, 1, "ExecutorConfig for the default executor is duplicate."));
    fails(
      ['executor { name: "" }', "num_threads: 4"],
      at(2, 1, "ExecutorConfig for the default executor and the graph-level num_threads field should not both be specified."),
    );
  });
});

describe("calculator contracts", () => {
  test("required tags, unknown tags, and single tags given twice", () => {
    fails(
      [
        'input_stream: "a"',
        'input_stream: "b"',
        "node {",
        '  calculator: "Strict"',
        '  input_stream: "EXTRA:a"',
        '  input_stream: "WHAT:a"',
        '  output_stream: "OUT:0:x"',
        '  output_stream: "OUT:1:y"',
        '  output_stream: "z"',
        '  input_side_packet: "IDK:m"',
        '  output_side_packet: "s"',
        "}",
      ],
      at(4, 3, 'Calculator "Strict" requires an input stream untagged, but node "Strict" has none.'),
      at(4, 3, 'Calculator "Strict" requires an input side packet tagged "MODEL", but node "Strict" has none.'),
      at(6, 3, 'Calculator "Strict" has no input stream tagged "WHAT"; its input streams are: untagged, "EXTRA".'),
      at(8, 3, 'Calculator "Strict" takes only one output stream tagged "OUT", but node "Strict" gives 2.'),
      at(9, 3, 'Calculator "Strict" has no output stream untagged; its output streams are: "OUT".'),
      at(10, 3, 'Calculator "Strict" has no input side packet tagged "IDK"; its input side packets are: "MODEL".'),
      at(11, 3, 'Calculator "Strict" has no output side packet untagged; it takes no output side packets.'),
    );
  });

  test("untagged ports given twice to a single untagged spec; multiple tags take indexes", () => {
    fails(
      ['input_stream: "a"', 'input_stream: "b"', "node {", '  calculator: "Strict"', '  input_stream: "a"', '  input_stream: "b"', '  input_stream: "EXTRA:0:a"', '  input_stream: "EXTRA:1:b"', '  output_stream: "OUT:x"', '  input_side_packet: "MODEL:m"', "}"],
      at(6, 3, 'Calculator "Strict" takes only one input stream untagged, but node "Strict" gives 2.'),
    );
  });

  test("a calculator's own validate(), reported at its options (or its calculator field)", () => {
    fails(
      ["node {", '  calculator: "Limited"', "  node_options { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { max_in_flight: 6 } }", "}", "node {", '  calculator: "Throws"', "}"],
      at(3, 18, "Limited: max_in_flight must be at most 5"),
      at(6, 3, "Throws: contract.validate threw: kaboom"),
    );
  });

  test("validate() does not run on a node already in error", () => {
    fails(["node {", '  calculator: "Throws"', '  input_stream: "bad-name"', "}"], at(3, 3, 'TAG:index:name is invalid, "bad-name" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").'));
  });

  test("packet type labels must agree across an edge when both ends declare one", () => {
    fails(
      [
        "node {", '  name: "src"', '  calculator: "Typed"', '  output_stream: "IMAGE:img"', '  output_stream: "TEXT:txt"', '  output_stream: "RAW:raw"', '  output_side_packet: "TOKENIZER:tok"', "}",
        "node {", '  name: "dst"', '  calculator: "Typed"', '  input_stream: "TEXT:img"', '  input_stream: "IMAGE:txt"', '  input_stream: "RAW:img"', '  input_side_packet: "MODEL:tok"', "}",
        "node {", '  calculator: "Any"', '  input_stream: "txt"', "}",
      ],
      at(12, 3, 'Input stream "img" of calculator "dst" expects packets of type "Text" but the connected output stream will contain packets of type "Image"'),
      at(13, 3, 'Input stream "txt" of calculator "dst" expects packets of type "Image" but the connected output stream will contain packets of type "Text"'),
      at(15, 3, 'Input side packet "tok" of Calculator "dst" expected a packet of type "Model" but the connected output side packet will be of type "Tokenizer"'),
    );
  });
});

describe("node options", () => {
  const limited = (...body: string[]) => ["node {", '  calculator: "Limited"', ...body, "}"];

  test("decoded from node_options or options; defaults when absent", () => {
    const viaAny = valid(limited("  node_options { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { max_in_flight: 2 } }")).nodes[0].options as unknown as LimitOptions;
    assert.equal(viaAny.max_in_flight, 2);
    const viaExt = valid(limited("  options { [mediapipe.FlowLimiterCalculatorOptions.ext] { max_in_queue: 4 } }")).nodes[0].options as unknown as LimitOptions;
    assert.deepEqual([viaExt.max_in_flight, viaExt.max_in_queue, Object.hasOwn(viaExt, "max_in_flight")], [1, 4, false]);
    const defaults = valid(limited()).nodes[0].options as unknown as LimitOptions;
    assert.deepEqual([defaults.max_in_flight, defaults.max_in_queue], [1, 0]);
    assert.equal((defaults as unknown as { $type: { fullName: string } }).$type.fullName, ".mediapipe.FlowLimiterCalculatorOptions");
  });

  test("options wins over node_options", () => {
    const graph = valid(
      limited(
        "  node_options { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { max_in_flight: 2 } }",
        "  options { [mediapipe.FlowLimiterCalculatorOptions.ext] { max_in_flight: 3 } }",
      ),
    );
    assert.equal((graph.nodes[0].options as unknown as LimitOptions).max_in_flight, 3);
  });

  test("the same type twice in node_options", () => {
    fails(
      limited(
        "  node_options { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { max_in_flight: 2 } }",
        "  node_options { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { max_in_flight: 3 } }",
      ),
      at(4, 18, "Options type: 'mediapipe.FlowLimiterCalculatorOptions' specified more than once for a single calculator node config."),
    );
  });

  test("options of another known type", () => {
    fails(
      [
        ...limited("  node_options { [type.googleapis.com/mediapipe.DefaultInputStreamHandlerOptions] { batch_size: 2 } }"),
        "node {",
        '  calculator: "Any"',
        "  options { [mediapipe.FlowLimiterCalculatorOptions.ext] { max_in_flight: 3 } }",
        "}",
      ],
      at(3, 18, "Options of type 'mediapipe.DefaultInputStreamHandlerOptions' given to node \"Limited\", but calculator \"Limited\" takes options of type 'mediapipe.FlowLimiterCalculatorOptions'."),
      at(7, 13, "Options of type 'mediapipe.FlowLimiterCalculatorOptions' given to node \"Any\", but calculator \"Any\" takes no options."),
    );
  });

  test("an options type the server does not know, on a calculator that needs it", () => {
    fails(
      ["node {", '  calculator: "Unloaded"', "  node_options { [type.googleapis.com/test.NotLoadedOptions] { x: 1 } }", "}"],
      at(3, 18, "Calculator \"Unloaded\" needs options of type 'test.NotLoadedOptions', but that options type 'test.NotLoadedOptions' is not known to this server; load its .proto file (put it in the --calculators_dir folder) so the options can be read."),
    );
  });

  test("an unknown options type on a calculator that does not take it is ignored (the parser warned)", () => {
    const doc = parse(["node {", '  calculator: "Limited"', "  node_options { [type.googleapis.com/other.Thing] { x: 1 } }", "}"]);
    assert.equal(doc.warnings.length, 1);
    assert.equal((validateGraph(doc, registry).nodes[0].options as unknown as LimitOptions).max_in_flight, 1);
  });

  test("a calculator whose declared options type no loaded .proto defines", () => {
    fails(["node {", '  calculator: "Unloaded"', "}"], at(2, 3, "Calculator \"Unloaded\" declares options type 'test.NotLoadedOptions', but no loaded .proto file defines it."));
  });

  test("required options", () => {
    fails(["node {", '  name: "n"', '  calculator: "NeedsOptions"', "}"], at(3, 3, "Calculator \"NeedsOptions\" requires options of type 'mediapipe.FlowLimiterCalculatorOptions', but node \"n\" gives none."));
    assert.ok(valid(["node {", '  calculator: "NeedsOptions"', "  options { [mediapipe.FlowLimiterCalculatorOptions.ext] { } }", "}"]).nodes[0].options);
  });
});

describe("input stream handlers", () => {
  const SYNC = (...sets: string[]) =>
    `  input_stream_handler { input_stream_handler: "SyncSetInputStreamHandler" options { [mediapipe.SyncSetInputStreamHandlerOptions.ext] { ${sets.map((s) => `sync_set { ${s} }`).join(" ")} } } }`;

  test("the node's, else the graph's, else the contract's, else default: what the graph sets wins over the contract", () => {
    const graph = valid([
      'input_stream_handler { input_stream_handler: "ImmediateInputStreamHandler" }',
      'node { name: "graphs" calculator: "Any" }',
      'node { name: "own" calculator: "Any" input_stream_handler { input_stream_handler: "DefaultInputStreamHandler" } }',
      'node { name: "contract" calculator: "Eager" input_stream_handler { input_stream_handler: "DefaultInputStreamHandler" } }',
    ]);
    assert.deepEqual(graph.nodes.map((n) => [n.name, n.inputStreamHandler.kind]), [["graphs", "immediate"], ["own", "default"], ["contract", "default"]]);
    assert.equal(graph.nodes[2].timestampOffset, 0);
    assert.equal(graph.nodes[0].timestampOffset, undefined);
    // The graph-wide default is copied into every node that sets none, so it beats the contract too.
    const wide = valid([
      'input_stream_handler { input_stream_handler: "DefaultInputStreamHandler" }',
      'node { name: "eager" calculator: "Eager" }',
    ]);
    assert.deepEqual(wide.nodes[0].inputStreamHandler, { kind: "default" });
    // Only when the graph names none does the contract's apply.
    const bare = valid(['node { name: "eager" calculator: "Eager" }', 'node { name: "any" calculator: "Any" }']);
    assert.deepEqual(bare.nodes.map((n) => n.inputStreamHandler.kind), ["immediate", "default"]);
  });

  test("sync sets map to flat input indexes", () => {
    const graph = valid([
      'input_stream: "a"',
      'input_stream: "b"',
      "node {",
      '  calculator: "Any"',
      '  input_stream: "LOOPBACK:b"',
      '  input_stream: "a"',
      '  input_stream: "b"',
      SYNC('tag_index: "LOOPBACK" tag_index: ":1"', 'tag_index: ""'),
      "}",
    ]);
    assert.deepEqual(graph.nodes[0].inputStreamHandler, { kind: "sync_set", sets: [[2, 1], [0]] });
  });

  test("a sync set tag_index that is no input, or listed twice, or malformed", () => {
    fails(
      ['input_stream: "a"', "node {", '  calculator: "Any"', '  input_stream: "a"', SYNC('tag_index: "A"', 'tag_index: ":0" tag_index: ":0"', 'tag_index: "a"', 'tag_index: ""'), "}"],
      at(5, 148, 'SyncSetInputStreamHandler of node "Any": tag_index "A" is not an input stream of the node.'),
      at(5, 192, 'SyncSetInputStreamHandler of node "Any": tag_index ":0" is listed more than once in its sync sets.'),
      at(5, 221, 'TAG:index is invalid, "a" does not match "([A-Z_][A-Z0-9_]*)?(:(0|[1-9][0-9]*))?" (examples: "TAG" "VIDEO:2").'),
      at(5, 249, 'SyncSetInputStreamHandler of node "Any": tag_index "" is listed more than once in its sync sets.'),
    );
  });

  test("an unknown handler, once even when it comes from the graph", () => {
    fails(
      ['input_stream_handler { input_stream_handler: "BarrierInputStreamHandler" }', 'node { calculator: "Any" }', 'node { calculator: "Any" }', 'node { calculator: "Eager" }'],
      at(1, 24, 'Input stream handler "BarrierInputStreamHandler" is not supported; use one of DefaultInputStreamHandler, ImmediateInputStreamHandler, SyncSetInputStreamHandler, FixedSizeInputStreamHandler.'),
    );
  });
});

describe("queues", () => {
  const saved = process.env.OVMS_GRAPH_QUEUE_OFF;
  afterEach(() => {
    if (saved === undefined) delete process.env.OVMS_GRAPH_QUEUE_OFF;
    else process.env.OVMS_GRAPH_QUEUE_OFF = saved;
  });

  test("max_queue_size: 100 when unset or 0, -1 unlimited; report_deadlock", () => {
    assert.equal(valid(["max_queue_size: 0"]).maxQueueSize, 100);
    assert.equal(valid(["max_queue_size: -1"]).maxQueueSize, -1);
    assert.equal(valid(["max_queue_size: 7"]).maxQueueSize, 7);
    assert.equal(valid(["report_deadlock: true"]).reportDeadlock, true);
  });

  test("graph queue size from the OVMS_GRAPH_QUEUE_MAX_SIZE directive", () => {
    delete process.env.OVMS_GRAPH_QUEUE_OFF;
    const cores = availableParallelism();
    assert.equal(valid(["# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO", 'input_stream: "a"']).graphQueueSize, cores);
    assert.equal(valid(["# OVMS_GRAPH_QUEUE_MAX_SIZE: 1", 'input_stream: "a"']).graphQueueSize, 1);
    assert.equal(valid(["# OVMS_GRAPH_QUEUE_MAX_SIZE: 100000", 'input_stream: "a"']).graphQueueSize, cores);
    assert.equal(valid(["# OVMS_GRAPH_QUEUE_MAX_SIZE: 0", 'input_stream: "a"']).graphQueueSize, undefined);
    process.env.OVMS_GRAPH_QUEUE_OFF = "1";
    assert.equal(valid(["# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO", 'input_stream: "a"']).graphQueueSize, undefined);
  });
});

test("every problem is reported at once, in file order", () => {
  fails(
    [
      'executor { name: "gpu" }',
      "node {",
      '  calculator: "Missing"',
      '  input_stream: "nope"',
      '  output_stream: "x"',
      "}",
      "node {",
      '  calculator: "Any"',
      '  output_stream: "x"',
      '  executor: "undeclared"',
      "}",
    ],
    at(1, 12, '"gpu" is a reserved executor name.'),
    at(3, 3, 'Unable to find Calculator "Missing"'),
    at(4, 3, missingInput("nope", 0, "Missing")),
    at(9, 3, 'Output Stream "x" defined twice.'),
    at(10, 3, 'The executor "undeclared" is not declared in an ExecutorConfig.'),
  );
});

test("the example graphs and OVMS exports validate against the built-in calculators", async () => {
  const { loadGraphFile } = await import("../src/graph/load.js");
  const builtins = await CalculatorRegistry.withBuiltins();
  const file = (p: string) => new URL(`../../${p}`, import.meta.url).pathname;
  const echo = validateGraph(await loadGraphFile(file("graphs/flow-limited-echo/graph.pbtxt"), builtins.schema), builtins);
  assert.deepEqual(echo.nodes.map((n) => [n.name, n.backEdge, n.inputStreamHandler.kind]), [
    ["FlowLimiterCalculator", [false, true], "immediate"],
    ["PassThroughCalculator", [false], "default"],
  ]);
  const imageGen = validateGraph(await loadGraphFile(file("test/fixtures/graphs/ovms-v2025.2-export.pbtxt"), builtins.schema), builtins);
  assert.deepEqual(imageGen.requiredSidePackets, ["pipes"]);
  assert.equal(imageGen.nodes[0].name, "ImageGenExecutor");
});
