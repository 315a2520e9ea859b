/**
 * Download progress for people: a bar redrawn in place on a terminal, a
 * plain line every few seconds otherwise (logs, CI, `docker logs`).
 */

export interface ProgressOptions {
  /** Redraw one line in place (a terminal) rather than print lines. */
  readonly tty: boolean;
  readonly write: (text: string) => void;
  /** Seconds between lines when not on a terminal (default 5). */
  readonly everySeconds?: number;
  readonly now?: () => number;
}

export interface Progress {
  /** Bytes now on disk; `resumed` ones (from an earlier run) count toward the total but not the rate. */
  bytes(delta: number, resumed?: boolean): void;
  fileDone(): void;
  /** Prints the final state (and ends the redrawn line). */
  finish(): void;
}

const MB = 1024 * 1024;
const mb = (n: number) => (n / MB).toFixed(1);

export function createProgress(label: string, totalBytes: number, totalFiles: number, opts: ProgressOptions): Progress {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  let done = 0;
  let resumedBytes = 0;
  let files = 0;
  let last = -Infinity;
  const interval = opts.tty ? 100 : (opts.everySeconds ?? 5) * 1000;

  const line = (): string => {
    const seconds = Math.max(0.001, (now() - started) / 1000);
    const rate = Math.max(0, done - resumedBytes) / seconds;
    const pct = totalBytes > 0 ? Math.min(100, (100 * done) / totalBytes) : 100;
    const eta = rate > 0 && done < totalBytes ? ` ETA ${Math.ceil((totalBytes - done) / rate)} s` : "";
    const stats = `${pct.toFixed(0).padStart(3)}% ${mb(done)}/${mb(totalBytes)} MB ${mb(rate)} MB/s${eta} (${files}/${totalFiles} files)`;
    if (!opts.tty) return `${label}: ${stats}\n`;
    const width = 24;
    const fill = Math.round((pct / 100) * width);
    return `\r${label} [${"#".repeat(fill)}${".".repeat(width - fill)}] ${stats}\x1b[K`;
  };
  const tick = (force = false) => {
    const t = now();
    if (!force && (t - last < interval || done === 0)) return;
    last = t;
    opts.write(line());
  };
  return {
    bytes(delta, resumed = false) {
      done += delta;
      if (resumed) resumedBytes += delta;
      tick();
    },
    fileDone() {
      files++;
      tick();
    },
    finish() {
      tick(true);
      if (opts.tty) opts.write("\n");
    },
  };
}
