#!/usr/bin/env node
/** The `graphserve` command: the server (no command), or `graph check|dot`. */
import { packageVersion } from "./version.js";
import { graphCheck, graphDot } from "./graph-command.js";
import { makeTinyModelCommand, TINY_MODEL_USAGE } from "./tiny-model-command.js";
import { DEMO_MODEL_NAME, demoModelDir } from "./demo-command.js";
import { PULL_USAGE, pullStep } from "./pull-command.js";
import { interruptible, stopWhenNpmExits } from "./signals.js";
import { FlagError, parseFlags } from "./flags.js";
import { SERVER_FLAGS, SERVER_USAGE, serveOptionsFrom } from "../server/flags.js";

const USAGE = `Usage:
  graphserve [server options]        serve graphs over HTTP, as OpenVINO Model Server does
  graphserve graph check FILE...     load and validate graph files, print what they resolve to
  graphserve graph dot FILE          print the graph as Graphviz DOT
  graphserve demo [server options]   serve the built-in shapes model as "demo" (port 8000 by default;
                                     models/demo, trained by tools/demo-model; no build, no download)
${TINY_MODEL_USAGE}
  graphserve bench --url URL --model NAME [...]
                                     load-test a server speaking the OpenAI Images API (--help)
  graphserve accuracy --url URL --model NAME --prompts FILE [...]
                                     determinism, CLIP score, PSNR/SSIM over the API (--help)
Options:
  --calculators_dir DIR              also load user calculators (and their .proto files) from DIR
  -h, --help                         show this help
  -v, --version                      print the version

${SERVER_USAGE}

${PULL_USAGE}`;

/** Parses argv and runs the command; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const io = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) };
  if (argv[0] === "make-tiny-model") return makeTinyModelCommand(argv.slice(1), io);
  // The client tools take their own flags; loaded on demand.
  if (argv[0] === "bench") return (await import("../tools/bench/command.js")).benchCommand(argv.slice(1), io);
  if (argv[0] === "accuracy") return (await import("../tools/accuracy/command.js")).accuracyCommand(argv.slice(1), io);
  let parsed;
  try {
    parsed = parseFlags({
      args: [...argv],
      allowPositionals: true,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
        calculators_dir: { type: "string" },
        ...SERVER_FLAGS,
      },
    });
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    // parseArgs's "Unknown option" line runs on into a hint about positionals: point at --help instead.
    const unknown = /^Unknown option '([^']+)'/.exec(e.message);
    io.err(`graphserve: ${unknown ? `Unknown option '${unknown[1]}'; see graphserve --help` : e.message}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (values.version) {
    io.out(packageVersion());
    return 0;
  }
  if (positionals.length === 0) return serve(values, io);
  if (positionals.length === 1 && positionals[0] === "demo") {
    if (values.model_path !== undefined || values.config_path !== undefined) {
      io.err("graphserve demo: serves its own model; drop --model_path/--config_path, or run graphserve without \"demo\"");
      return 2;
    }
    let dir: string;
    try {
      dir = demoModelDir();
    } catch (e) {
      io.err(`graphserve demo: ${(e as Error).message}`);
      return 1;
    }
    return serve({ rest_port: "8000", ...values, model_path: dir, model_name: values.model_name ?? DEMO_MODEL_NAME }, io);
  }
  const serverFlag = Object.keys(values).find((k) => k !== "calculators_dir");
  if (serverFlag !== undefined) {
    io.err(`graphserve: --${serverFlag} is a server option; it does not apply to "${positionals.join(" ")}"`);
    return 2;
  }
  const [command, sub, ...files] = positionals;
  if (command === "graph") {
    if (sub === "check" && files.length > 0) return graphCheck(files, values.calculators_dir, io);
    if (sub === "dot" && files.length === 1) return graphDot(files[0], values.calculators_dir, io);
    io.err(`graphserve graph: ${graphUsageError(sub, files.length)}`);
    return 2;
  }
  io.err(`graphserve: unknown command "${positionals.join(" ")}"; see graphserve --help`);
  return 2;
}

function graphUsageError(sub: string | undefined, files: number): string {
  const usage = "usage: graphserve graph check [--calculators_dir DIR] FILE... | graphserve graph dot [--calculators_dir DIR] FILE";
  if (sub === "check") return `check needs at least one graph file; ${usage}`;
  if (sub === "dot") return `dot takes exactly one graph file, not ${files}; ${usage}`;
  return `${sub === undefined ? "missing subcommand" : `unknown subcommand "${sub}"`}; ${usage}`;
}

async function serve(values: Parameters<typeof serveOptionsFrom>[0], io: { out(l: string): void; err(l: string): void }): Promise<number> {
  // --source_model / --configure run first: download, write graph.pbtxt and config.json, maybe exit.
  // Serving flags are checked before a download starts, not after it.
  const step = await interruptible((signal) => pullStep(values, io, (flags) => serveOptionsFrom({ ...flags, calculators_dir: values.calculators_dir }), process.env, signal));
  if ("exit" in step) return step.exit;
  let opts;
  try {
    opts = serveOptionsFrom({ ...step.serve, calculators_dir: values.calculators_dir });
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    io.err(`graphserve: ${e.message}`);
    return 2;
  }
  // Loaded on demand: `graph check` should not pay for Express and the manager.
  const { runServer } = await import("../server/serve.js");
  const code = await runServer(opts);
  // Worker pools or open handles must not keep a stopped server alive.
  process.exit(code);
}

stopWhenNpmExits();
// `graphserve graph dot FILE | head`: the reader left, so there is nobody to print for; stop quietly.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code !== "EPIPE") throw e;
  process.exit(0);
});
process.exitCode = await main(process.argv.slice(2));
