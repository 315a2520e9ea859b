/**
 * SIGTERM/SIGINT for the CLI's steps that run before the server (a pull,
 * the demo model's build). In a container graphserve is PID 1, and the
 * kernel drops a signal PID 1 has no handler for, so without these a pod
 * stopped mid-pull would wait out its grace period and be killed.
 * The server installs its own handlers (runServer, src/server/serve.ts) once it starts.
 */

/** Why a step stopped: the signal received. */
export class Interrupted extends Error {
  constructor(readonly signal: "SIGTERM" | "SIGINT") {
    super(`${signal} received`);
    this.name = "Interrupted";
  }

  /** The shell's convention: 128 + the signal's number (143 for SIGTERM, 130 for SIGINT). */
  get exitCode(): number {
    return this.signal === "SIGTERM" ? 143 : 130;
  }
}

/**
 * Runs `step` with a signal that aborts (reason: Interrupted) on the first
 * SIGTERM or SIGINT; a second one exits at once, as the server does.
 * The handlers are removed when the step ends.
 */
export async function interruptible<T>(step: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = (signal: "SIGTERM" | "SIGINT") => {
    if (stop.signal.aborted) process.exit(new Interrupted(signal).exitCode);
    stop.abort(new Interrupted(signal));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    return await step(stop.signal);
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

/**
 * Under npm (`npx graphserve`, `npm start`) the process tree is npm → sh → node,
 * and killing npm by its PID ends npm and the shell but never signals node,
 * which would keep serving, orphaned. When the parent that started us goes
 * away, act as if SIGTERM arrived: the server drains and exits as usual.
 * Only under npm: elsewhere a parent may exit on purpose (a shell's `&`, nohup).
 * A signal that reached us too (a process-group kill: systemd stopping the
 * unit, `kill -- -PGID`) already stops us: npm exiting after it is no second
 * signal, which would end the drain at once.
 */
export function stopWhenNpmExits(env: NodeJS.ProcessEnv = process.env): void {
  if (env.npm_lifecycle_event === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    stopWatching();
    console.error(`graphserve: npm (parent pid ${parent}) exited; stopping as on SIGTERM`);
    process.kill(process.pid, "SIGTERM");
  }, 250);
  timer.unref();
  const onSignal = (signal: NodeJS.Signals) => {
    stopWatching();
    // Listening took the signal's default action (exit) away: with no other listener, raise it again without us.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const stopWatching = () => {
    clearInterval(timer);
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
