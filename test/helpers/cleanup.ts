/**
 * Per-test cleanups that run last-registered-first, like `finally` blocks.
 * node:test runs `t.after` hooks in registration order, but a browser opened
 * after its server must be photographed and closed before that server stops
 * (else its polling fails and the screenshot shows a dead server).
 */
import type { TestContext } from "node:test";

type Cleanup = () => void | Promise<void>;

const stacks = new WeakMap<TestContext, Cleanup[]>();

/** Runs `fn` when the test ends, passed or failed, before cleanups registered earlier. */
export function onCleanup(t: TestContext, fn: Cleanup): void {
  let stack = stacks.get(t);
  if (stack === undefined) {
    const own: Cleanup[] = [];
    stack = own;
    stacks.set(t, own);
    t.after(async () => {
      const errors: unknown[] = [];
      while (own.length > 0) {
        try {
          await own.pop()!();
        } catch (e) {
          errors.push(e);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, "several cleanups failed");
    });
  }
  stack.push(fn);
}
