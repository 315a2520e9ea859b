/**
 * `graphserve bench`: parses flags, runs the levels with a live progress
 * line on stderr, prints the table (or --json) on stdout, writes --plot.
 * Exit codes: 0 ran (errors are results, shown in the report), 1 no request
 * succeeded at all or the plot could not be written, 2 bad flags.
 */
import { writeFile } from "node:fs/promises";
import { FlagError } from "../../cli/flags.js";
import { BENCH_USAGE, parseBenchOptions } from "./options.js";
import { plotSvg } from "./plot.js";
import { formatJson, formatProgress, formatTable } from "./report.js";
import { runBench } from "./run.js";

export { BENCH_USAGE } from "./options.js";
export { runBench, type BenchReport, type LevelReport } from "./run.js";

export interface BenchIo {
  out(line: string): void;
  err(line: string): void;
  /** Where the live progress goes (default process.stderr): redrawn with \r on a TTY, a line every 5 s otherwise. */
  readonly progress?: { readonly isTTY?: boolean; write(s: string): unknown };
}

export async function benchCommand(argv: readonly string[], io: BenchIo): Promise<number> {
  let opts;
  try {
    opts = parseBenchOptions(argv);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    io.err(`graphserve bench: ${e.message}`);
    return 2;
  }
  if (opts === undefined) {
    io.out(`Usage:\n${BENCH_USAGE}`);
    return 0;
  }
  const sink = io.progress ?? process.stderr;
  const tty = sink.isTTY === true;
  let drawn = false;
  const report = await runBench(opts, {
    progressIntervalMs: tty ? 250 : 5000,
    onProgress: (p) => {
      if (tty) {
        sink.write(`\r\x1b[2K${formatProgress(p)}`);
        drawn = true;
      } else sink.write(`${formatProgress(p)}\n`);
    },
  });
  if (drawn) sink.write("\r\x1b[2K");
  if (opts.json) io.out(formatJson(report));
  else for (const line of formatTable(report)) io.out(line);
  let code = report.levels.some((l) => l.ok > 0) ? 0 : 1;
  if (code === 1) io.err("graphserve bench: no request succeeded");
  if (opts.plot !== undefined) {
    try {
      await writeFile(opts.plot, plotSvg(report));
      if (!opts.json) io.out(`plot written to ${opts.plot}`);
    } catch (e) {
      io.err(`graphserve bench: cannot write ${opts.plot}: ${(e as Error).message}`);
      code = 1;
    }
  }
  return code;
}
