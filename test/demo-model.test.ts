/**
 * The demo model is cached per revision (`~/.cache/graphserve/demo-model-rN`):
 * a change to what `graphserve demo` builds must bump DEMO_REVISION, or a
 * user who ran an older version keeps serving the old model. The fingerprint
 * below is of the files the current builder writes; when it changes, bump
 * the revision and record the new fingerprint with it.
 */
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { test } from "node:test";
import { DEMO_REVISION, prepareDemoModel } from "../src/cli/demo-command.js";
import { tempDir } from "./server-helpers.js";

/** The build DEMO_REVISION stands for: sha256 over every file's path and bytes, in path order. */
const RECORDED = { revision: 3, sha256: "1007d60ad088524c36fe4f5dc9e9464b428eef4c2fc0efac27816008398068f0" };

async function fingerprint(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
  const hash = createHash("sha256");
  for (const file of files) hash.update(`${file}\0`).update(await readFile(join(dir, file)));
  return hash.digest("hex");
}

test("the demo model built now is the one its cache revision names (bump DEMO_REVISION when it changes)", async (t) => {
  const previous = process.env.GRAPHSERVE_DEMO_DIR;
  process.env.GRAPHSERVE_DEMO_DIR = join(tempDir(), "demo");
  t.after(() => {
    if (previous === undefined) delete process.env.GRAPHSERVE_DEMO_DIR;
    else process.env.GRAPHSERVE_DEMO_DIR = previous;
  });
  const dir = await prepareDemoModel(() => undefined);
  const built = { revision: DEMO_REVISION, sha256: await fingerprint(dir) };
  assert.deepEqual(
    built,
    RECORDED,
    "the demo model or its revision changed: bump DEMO_REVISION in src/cli/demo-command.ts so cached copies are rebuilt, and record the new revision and fingerprint here",
  );
});
