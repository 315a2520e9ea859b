/** Runs a program to its end and collects what it wrote, never throwing on a non-zero exit. */
import { execFile, type ExecFileOptions } from "node:child_process";

export interface ProcessResult {
  /** The exit code; -1 when it was killed by a signal or could not start. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runProcess(file: string, args: readonly string[], opts: ExecFileOptions = {}): Promise<ProcessResult> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 16 * 1024 * 1024, ...opts, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
