/**
 * Calculator classes by the name graphs use, the module each came from (the
 * worker executor re-imports it there), and the protobuf schema their
 * options are read against.
 */
import { readdirSync, statSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Calculator, calculatorNameOf, type CalculatorClass } from "./calculator.js";
import { Schema } from "../graph/schema.js";

interface Entry {
  readonly cls: CalculatorClass<unknown>;
  readonly moduleUrl: string;
}

/**
 * A calculator class: it extends this copy of `Calculator`, or it looks like
 * one (a static `contract` object and a `process` method), so classes built
 * against a separately installed copy of graphserve are accepted too.
 */
export function isCalculatorClass(value: unknown): value is CalculatorClass<unknown> {
  if (typeof value !== "function" || value === Calculator) return false;
  const proto: unknown = value.prototype;
  if (proto instanceof Calculator) return true;
  const contract: unknown = (value as { contract?: unknown }).contract;
  return typeof contract === "object" && contract !== null && typeof (proto as { process?: unknown } | undefined)?.process === "function";
}

export class CalculatorRegistry {
  readonly schema: Schema;
  readonly #entries = new Map<string, Entry>();

  constructor(schema: Schema = new Schema()) {
    this.schema = schema;
  }

  /** A registry with every calculator in graphserve's own `calculators/` folder. */
  static async withBuiltins(): Promise<CalculatorRegistry> {
    const registry = new CalculatorRegistry();
    // dist*/src/engine/registry.js -> dist*/calculators/*.js; under tsx,
    // src/engine/registry.ts -> calculators/*.ts. Only the top level: sub-folders
    // hold the calculators' helper modules.
    const self = fileURLToPath(import.meta.url);
    const dir = fileURLToPath(new URL("../../calculators/", import.meta.url));
    const ext = extname(self) === ".ts" ? ".ts" : ".js";
    await registry.#loadModules(modulesIn(dir, [ext]));
    return registry;
  }

  /**
   * Adds a calculator class; `moduleUrl` is the module exporting it (pass
   * `import.meta.url`). Registering the same class again is a no-op; another
   * class under a taken name is an error naming both modules.
   */
  register(cls: CalculatorClass<unknown>, moduleUrl: string): void {
    if (!isCalculatorClass(cls)) throw new Error(`cannot register ${String(cls)} from ${moduleUrl}: not a Calculator class`);
    const name = calculatorNameOf(cls);
    if (typeof name !== "string" || name === "") throw new Error(`cannot register a calculator from ${moduleUrl}: it has no name`);
    const existing = this.#entries.get(name);
    if (existing?.cls === cls) return;
    if (existing) {
      throw new Error(`Calculator "${name}" is defined twice: by ${existing.moduleUrl} and by ${moduleUrl}. Calculator names must be unique; rename one (static calculatorName).`);
    }
    this.#entries.set(name, { cls, moduleUrl });
  }

  get(name: string): CalculatorClass<unknown> | undefined {
    return this.#entries.get(name)?.cls;
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Registered names, in registration order. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** The module URL a calculator was registered with. */
  moduleUrlOf(name: string): string | undefined {
    return this.#entries.get(name)?.moduleUrl;
  }

  /**
   * Loads a folder of user calculators (`--calculators_dir`): first every
   * `.proto` in it (so option types are known), then every `.js`, `.mjs`,
   * `.ts` and `.mts` module, registering the calculator classes each exports.
   */
  async loadDirectory(dir: string): Promise<void> {
    const abs = resolve(dir);
    let isDir: boolean;
    try {
      isDir = statSync(abs).isDirectory();
    } catch {
      throw new Error(`calculators directory "${dir}" does not exist`);
    }
    if (!isDir) throw new Error(`calculators directory "${dir}" is not a directory`);
    for (const file of modulesIn(abs, [".proto"])) {
      try {
        this.schema.addFiles([file]);
      } catch (e) {
        throw new Error(`cannot load "${file}": ${(e as Error).message}`);
      }
    }
    const modules = modulesIn(abs, [".js", ".mjs", ".ts", ".mts"]);
    // A folder compiled in place holds x.ts beside x.js; importing both
    // would define every calculator twice, so the compiled one wins.
    const compiled = new Set(modules.filter((f) => /\.m?js$/.test(f)).map(stem));
    await this.#loadModules(modules.filter((f) => /\.m?js$/.test(f) || !compiled.has(stem(f))));
  }

  async #loadModules(files: readonly string[]): Promise<void> {
    for (const file of files) {
      const url = pathToFileURL(file).href;
      let exports: Record<string, unknown>;
      try {
        exports = await importModule(file, url);
      } catch (e) {
        if (e instanceof TypeScriptUnavailable) throw e;
        throw new Error(`cannot import calculator module "${file}": ${importFailure(e)}`, { cause: e });
      }
      const classes = new Set(Object.values(exports).filter(isCalculatorClass));
      if (classes.size === 0) {
        throw new Error(`calculator module "${file}" exports no calculator: export a class that extends Calculator (with a static contract and a process method)`);
      }
      for (const cls of classes) this.register(cls, url);
    }
  }
}

/** Files in `dir` (not sub-folders) with one of the extensions, declaration files excluded, sorted. */
function modulesIn(dir: string, exts: readonly string[]): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new Error(`cannot read calculators directory "${dir}": ${(e as Error).message}`);
  }
  return names
    .filter((n) => exts.includes(extname(n)) && !/\.d\.m?ts$/.test(n))
    .sort()
    .map((n) => join(dir, n))
    .filter((f) => statSync(f, { throwIfNoEntry: false })?.isFile() === true);
}

const stem = (file: string) => file.slice(0, -extname(file).length);

/**
 * Why a calculator module failed to import, without Node's require stack;
 * the usual first-time cause, graphserve not installed where the calculators
 * live, says what to do.
 */
function importFailure(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (/Cannot find (module|package) 'graphserve'/.test(message)) {
    return 'it imports "graphserve", which is not installed for its folder: add graphserve to the dependencies of the project holding your calculators (a tarball from npm pack in a graphserve clone, or the path to a clone)';
  }
  return message.split("\nRequire stack:", 1)[0];
}

class TypeScriptUnavailable extends Error {}

type TsImport = (specifier: string, parentURL: string) => Promise<Record<string, unknown>>;
let tsImport: Promise<TsImport> | undefined;
const tsModules = new Map<string, Promise<Record<string, unknown>>>();

/**
 * Imports a module; TypeScript goes through tsx, loaded on first need.
 * tsx's `tsImport` rather than its global `register()`: on Node 20 a
 * registered loader fails on a .ts file outside a `"type": "module"`
 * package, which tsImport handles. Cached per URL, as `import()` is.
 */
function importModule(file: string, url: string): Promise<Record<string, unknown>> {
  if (!/\.m?ts$/.test(file)) return import(url) as Promise<Record<string, unknown>>;
  let mod = tsModules.get(url);
  if (!mod) {
    tsImport ??= import("tsx/esm/api").then(
      (api) => api.tsImport as TsImport,
      () => {
        tsImport = undefined;
        throw new TypeScriptUnavailable(
          `cannot load TypeScript calculator "${file}": the tsx package is not installed. Install it (npm install tsx) or compile the calculator to .js first.`,
        );
      },
    );
    mod = tsImport.then((load) => load(url, import.meta.url));
    tsModules.set(url, mod);
    mod.catch(() => tsModules.delete(url));
  }
  return mod;
}
