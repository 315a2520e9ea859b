/** Download progress: a bar redrawn in place on a terminal, plain lines at an interval otherwise. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createProgress } from "../src/servables/pull/progress.js";

const MB = 1024 * 1024;

test("on a terminal: one line redrawn with \\r, a bar, percentage, rate, ETA and files; a newline at the end", () => {
  let t = 0;
  const out: string[] = [];
  const p = createProgress("org/model", 10 * MB, 4, { tty: true, write: (s) => out.push(s), now: () => t });
  t = 1000;
  p.bytes(5 * MB);
  p.fileDone();
  t = 1050; // within 100 ms: no redraw
  p.bytes(MB);
  assert.equal(out.length, 1);
  assert.match(out[0], /^\rorg\/model \[#{12}\.{12}\]  50% 5\.0\/10\.0 MB 5\.0 MB\/s ETA 1 s \(0\/4 files\)\x1b\[K$/);
  t = 2000;
  p.bytes(4 * MB);
  p.finish();
  assert.match(out.at(-2)!, /\[#{24}\] 100% 10\.0\/10\.0 MB .* \(1\/4 files\)/);
  assert.equal(out.at(-1), "\n");
});

test("elsewhere: a plain line at most every interval, and the final state", () => {
  let t = 0;
  const out: string[] = [];
  const p = createProgress("org/model", 4 * MB, 2, { tty: false, write: (s) => out.push(s), everySeconds: 5, now: () => t });
  p.bytes(MB); // first report at once
  t = 1000;
  p.bytes(MB);
  t = 6000;
  p.bytes(MB);
  p.fileDone();
  t = 7000;
  p.bytes(MB);
  p.fileDone();
  p.finish();
  assert.deepEqual(out.map((l) => l.match(/^org\/model: +(\d+)%/)?.[1]), ["25", "75", "100"]);
  assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r")));
  assert.match(out.at(-1)!, /\(2\/2 files\)/);
});

test("bytes taken back (a corrupt file thrown away) lower the count", () => {
  const out: string[] = [];
  const p = createProgress("m", 2 * MB, 1, { tty: false, write: (s) => out.push(s), everySeconds: 0 });
  p.bytes(2 * MB);
  p.bytes(-2 * MB);
  p.finish();
  assert.match(out.at(-1)!, /m: +0% 0\.0\/2\.0 MB/);
});
