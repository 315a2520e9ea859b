#!/usr/bin/env node
/** The `graphserve` command. */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { graphCheck, graphDot } from "./graph-command.js";

const USAGE = `Usage:
  graphserve graph check FILE...   load and validate graph files, print what they resolve to
  graphserve graph dot FILE        print the graph as Graphviz DOT
Options:
  --calculators_dir DIR            also load user calculators (and their .proto files) from DIR
  --help                           show this help
  --version                        print the version`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Parses argv and runs the command; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const io = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean" },
        version: { type: "boolean" },
        calculators_dir: { type: "string" },
      },
    });
  } catch (e) {
    io.err(`graphserve: ${(e as Error).message}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (values.version) {
    io.out(version());
    return 0;
  }
  const [command, sub, ...files] = positionals;
  if (command === "graph" && sub === "check" && files.length > 0) {
    return graphCheck(files, values.calculators_dir, io);
  }
  if (command === "graph" && sub === "dot" && files.length === 1) {
    return graphDot(files[0], values.calculators_dir, io);
  }
  io.err(`graphserve: ${positionals.length === 0 ? "no command given" : `unknown command "${positionals.join(" ")}"`}; see graphserve --help`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
