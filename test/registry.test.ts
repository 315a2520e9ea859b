import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Calculator, type CalculatorContract } from "../src/engine/calculator.js";
import { CalculatorRegistry, isCalculatorClass } from "../src/engine/registry.js";
import { parseGraphText } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";

// The compiled calculator module, for user modules that extend this copy of Calculator.
const calculatorModule = new URL("../src/engine/calculator.js", import.meta.url).href;

class EchoCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { inputs: "any", outputs: "any" };
  override process(): void {}
}

class Renamed extends Calculator {
  static override readonly calculatorName = "EchoCalculator";
  static override readonly contract: CalculatorContract = {};
  override process(): void {}
}

const tmp = mkdtempSync(join(tmpdir(), "graphserve-registry-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
/** A fresh folder holding these files. */
function folder(files: Record<string, string>): string {
  const dir = join(tmp, `d${dirs++}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const EXTENDS = (name: string) =>
  `import { Calculator } from ${JSON.stringify(calculatorModule)};\nexport class ${name} extends Calculator { static contract = { inputs: "any", outputs: "any" }; process() {} }\n`;
// Built against "another copy" of graphserve: no import at all, just the shape.
const LOOKALIKE = (name: string) => `export class ${name} { static contract = { inputs: "any" }; process() {} }\n`;

describe("CalculatorRegistry", () => {
  test("register, get, has, names, moduleUrlOf", () => {
    const registry = new CalculatorRegistry();
    registry.register(EchoCalculator, import.meta.url);
    assert.equal(registry.get("EchoCalculator"), EchoCalculator);
    assert.equal(registry.has("EchoCalculator"), true);
    assert.equal(registry.has("Nope"), false);
    assert.equal(registry.get("Nope"), undefined);
    assert.deepEqual(registry.names(), ["EchoCalculator"]);
    assert.equal(registry.moduleUrlOf("EchoCalculator"), import.meta.url);
    assert.equal(registry.moduleUrlOf("Nope"), undefined);
    assert.ok(registry.schema.findType("mediapipe.CalculatorGraphConfig"), "starts with the graph schema");
  });

  test("registering the same class again is a no-op", () => {
    const registry = new CalculatorRegistry();
    registry.register(EchoCalculator, import.meta.url);
    registry.register(EchoCalculator, import.meta.url);
    assert.deepEqual(registry.names(), ["EchoCalculator"]);
  });

  test("a second class under a taken name is an error naming both modules", () => {
    const registry = new CalculatorRegistry();
    registry.register(EchoCalculator, "file:///a/echo.js");
    assert.throws(() => registry.register(Renamed, "file:///b/other.js"), {
      message: 'Calculator "EchoCalculator" is defined twice: by file:///a/echo.js and by file:///b/other.js. Calculator names must be unique; rename one (static calculatorName).',
    });
  });

  test("recognises subclasses and look-alikes, nothing else", () => {
    class Lookalike {
      static contract = {};
      process(): void {}
    }
    assert.equal(isCalculatorClass(EchoCalculator), true);
    assert.equal(isCalculatorClass(Lookalike), true);
    assert.equal(isCalculatorClass(Calculator), false, "the abstract base itself");
    assert.equal(isCalculatorClass(class { static contract = {}; }), false, "no process");
    assert.equal(isCalculatorClass(class { process(): void {} }), false, "no contract");
    assert.equal(isCalculatorClass(() => undefined), false);
    assert.equal(isCalculatorClass({ contract: {}, prototype: { process() {} } }), false);
    assert.equal(isCalculatorClass(undefined), false);
  });
});

describe("CalculatorRegistry.withBuiltins", () => {
  test("registers every calculator module in the compiled calculators/ folder", async () => {
    const registry = await CalculatorRegistry.withBuiltins();
    assert.ok(registry.has("ImageGenCalculator"));
    const url = registry.moduleUrlOf("ImageGenCalculator")!;
    // Beside this build's src/: dist*/calculators/image-gen.js.
    assert.equal(url, new URL("../calculators/image-gen.js", import.meta.url).href);
    assert.equal(isCalculatorClass(registry.get("ImageGenCalculator")), true);
    for (const name of registry.names()) assert.match(registry.moduleUrlOf(name)!, /\/calculators\/[^/]+\.js$/);
  });
});

describe("CalculatorRegistry.loadDirectory", () => {
  test("loads .proto files first, then .js, .mjs, .ts and .mts modules", async () => {
    const dir = folder({
      "style.proto": [
        'syntax = "proto2";',
        "package test;",
        'import "mediapipe/framework/calculator_options.proto";',
        "message StyleOptions {",
        "  extend mediapipe.CalculatorOptions { optional StyleOptions ext = 500123; }",
        '  optional string template = 1 [default = "{p}"];',
        "}",
      ].join("\n"),
      "a.js": EXTENDS("FromJs"),
      "b.mjs": LOOKALIKE("FromMjs"),
      // No package.json here: a .ts file in a CommonJS scope, which tsx's global loader cannot import on Node 20.
      "c.ts": `export class FromTs { static contract = { inputs: "any", options: "test.StyleOptions" }; process(): void {} }\nexport const notACalculator: number = 1;\n`,
      "d.mts": `export class FromMts { static contract = {}; process(): void {} }\n`,
      "types.d.ts": "this is not even TypeScript",
      "README.md": "ignored",
    });
    mkdirSync(join(dir, "helpers"));
    writeFileSync(join(dir, "helpers", "broken.js"), "syntax error (");
    const registry = new CalculatorRegistry();
    await registry.loadDirectory(dir);
    assert.deepEqual(registry.names(), ["FromJs", "FromMjs", "FromTs", "FromMts"]);
    assert.equal(registry.moduleUrlOf("FromTs"), pathToFileURL(join(dir, "c.ts")).href);
    assert.ok(registry.get("FromJs")!.prototype instanceof Calculator);
    assert.ok(registry.schema.findType("test.StyleOptions"), "the proto was loaded");

    // The options type from the folder is usable in graphs.
    const graph = validateGraph(
      parseGraphText('input_stream: "a"\nnode { calculator: "FromTs" input_stream: "a" options { [test.StyleOptions.ext] { template: "x {p}" } } }', "g.pbtxt", registry.schema),
      registry,
    );
    assert.equal(graph.nodes[0].options?.template, "x {p}");
  });

  test("a folder compiled in place: x.js wins over x.ts", async () => {
    const dir = folder({ "x.ts": LOOKALIKE("Twice"), "x.js": LOOKALIKE("Twice") });
    const registry = new CalculatorRegistry();
    await registry.loadDirectory(dir);
    assert.equal(registry.moduleUrlOf("Twice"), pathToFileURL(join(dir, "x.js")).href);
  });

  test("loading the same folder twice registers the same classes again, harmlessly", async () => {
    const dir = folder({ "x.ts": LOOKALIKE("Again"), "y.mjs": LOOKALIKE("AgainJs") });
    const registry = new CalculatorRegistry();
    await registry.loadDirectory(dir);
    await registry.loadDirectory(dir);
    assert.deepEqual(registry.names(), ["Again", "AgainJs"]);
  });

  test("a module exporting no calculator is an error naming the file", async () => {
    const dir = folder({ "util.js": "export const x = 1;\nexport class NotOne {}\n" });
    await assert.rejects(new CalculatorRegistry().loadDirectory(dir), {
      message: `calculator module "${join(dir, "util.js")}" exports no calculator: export a class that extends Calculator (with a static contract and a process method)`,
    });
  });

  test("a module that fails to import is an error naming the file", async () => {
    const dir = folder({ "broken.mjs": "export const = ;" });
    await assert.rejects(new CalculatorRegistry().loadDirectory(dir), (e: Error) => {
      assert.ok(e.message.startsWith(`cannot import calculator module "${join(dir, "broken.mjs")}": `), e.message);
      return true;
    });
    const thrower = folder({ "throws.ts": 'throw new Error("boom at load");\nexport {};\n' });
    await assert.rejects(new CalculatorRegistry().loadDirectory(thrower), {
      message: `cannot import calculator module "${join(thrower, "throws.ts")}": boom at load`,
    });
  });

  test("a calculator name taken by a built-in is an error naming both modules", async () => {
    const dir = folder({ "mine.mjs": LOOKALIKE("ImageGenCalculator") });
    const registry = await CalculatorRegistry.withBuiltins();
    await assert.rejects(registry.loadDirectory(dir), (e: Error) => {
      assert.match(e.message, /^Calculator "ImageGenCalculator" is defined twice: by file:.*\/calculators\/image-gen\.js and by file:.*\/mine\.mjs\./);
      return true;
    });
  });

  test("a .proto that does not parse is an error naming the file", async () => {
    const dir = folder({ "bad.proto": "message {" });
    await assert.rejects(new CalculatorRegistry().loadDirectory(dir), (e: Error) => {
      assert.ok(e.message.startsWith(`cannot load "${join(dir, "bad.proto")}": `), e.message);
      return true;
    });
  });

  test("a missing folder, or a file, is a clear error", async () => {
    const missing = join(tmp, "no-such-dir");
    await assert.rejects(new CalculatorRegistry().loadDirectory(missing), { message: `calculators directory "${missing}" does not exist` });
    const file = join(folder({ "f.txt": "" }), "f.txt");
    await assert.rejects(new CalculatorRegistry().loadDirectory(file), { message: `calculators directory "${file}" is not a directory` });
  });

  test("the example calculator folder loads from source", async () => {
    const examples = fileURLToPath(new URL(`../../examples/calculators${sep}`, import.meta.url));
    const registry = new CalculatorRegistry();
    // Its `import "graphserve"` resolves through the project's tsconfig paths (tests run from the project root).
    await registry.loadDirectory(examples);
    assert.ok(registry.has("PromptStyleCalculator"));
    assert.ok(registry.schema.findType("example.PromptStyleOptions"));
  });
});
