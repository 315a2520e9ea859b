/**
 * Calculators in a user's own project, outside the clone (README, "In your
 * own project"): graphserve packed with `npm pack`, installed from the
 * tarball (its dependencies from the npm cache the clone's install filled)
 * into a folder under the system's temp dir, the README's worked example
 * authored there exactly as the README shows it, then checked with the
 * installed `npx graphserve graph check`. And the same calculator where
 * no graphserve is installed: one line saying what to do, no stack trace.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT, tempDir } from "./server-helpers.js";

const run = promisify(execFile);
type Result = { code: number; stdout: string; stderr: string };
async function exec(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(cmd, [...args], { cwd, env: { ...process.env, npm_config_update_notifier: "false", ...env }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as Result & { code: number | string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? String(e) };
  }
}

/** The README's fenced block of `lang` that follows `after`. */
function readmeBlock(after: string, lang: string): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const from = readme.indexOf(after);
  assert.ok(from >= 0, `README has "${after}"`);
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(readme.slice(from));
  assert.ok(m, `a \`\`\`${lang} block after "${after}"`);
  return m[1];
}

/**
 * package-lock.json for a project depending on the tarball: graphserve's own
 * locked runtime dependencies (not its dev ones), so `npm ci --prefer-offline`
 * finds every package in the npm cache the clone's install filled.
 */
function userLock(tarball: string, version: string): object {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, Record<string, unknown>> };
  const root = lock.packages[""];
  const packages: Record<string, unknown> = {
    "": { name: "my-project", version: "1.0.0", dependencies: { graphserve: `file:${tarball}` } },
    "node_modules/graphserve": {
      version,
      resolved: `file:${tarball}`,
      ...Object.fromEntries(["license", "dependencies", "optionalDependencies", "bin", "engines"].map((k) => [k, root[k]])),
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path !== "" && entry.dev !== true) packages[path] = entry;
  return { name: "my-project", version: "1.0.0", lockfileVersion: 3, requires: true, packages };
}

test("a project outside the clone installs the packed graphserve and checks the README's calculator with it", { timeout: 300_000 }, async () => {
  const project = join(tempDir(), "my-project");
  mkdirSync(project, { recursive: true });
  // --ignore-scripts: pack what `npm test` just built instead of rebuilding dist/ under the other tests.
  const pack = await exec("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", project], ROOT);
  assert.equal(pack.code, 0, pack.stderr);
  const tarball = pack.stdout.trim().split("\n").pop()!;
  const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
  assert.equal(tarball, `graphserve-${version}.tgz`);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "my-project", version: "1.0.0", private: true, dependencies: { graphserve: `file:${tarball}` } }, null, 2));
  writeFileSync(join(project, "package-lock.json"), JSON.stringify(userLock(tarball, version), null, 2));
  // From the npm cache, which `npm ci` in the clone filled; from the registry where that cache is another
  // or was cleaned. No install scripts: nothing graphserve runs needs them (onnxruntime-node and sharp ship their binaries).
  const install = await exec("npm", ["ci", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund"], project);
  assert.equal(install.code, 0, install.stderr);

  // Authored as the README shows: its calculator, options message and graph, under the README's names.
  mkdirSync(join(project, "my-calculators"));
  mkdirSync(join(project, "my"));
  writeFileSync(join(project, "my-calculators/prompt-style.ts"), readmeBlock("A worked example", "ts"));
  writeFileSync(join(project, "my-calculators/prompt_style.proto"), readmeBlock("Its options message", "proto"));
  writeFileSync(join(project, "my/graph.pbtxt"), readmeBlock("And a graph that serves with it", ""));
  const check = await exec("npx", ["graphserve", "graph", "check", "--calculators_dir", "./my-calculators", "my/graph.pbtxt"], project, { npm_config_offline: "true" });
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /^my\/graph\.pbtxt: OK, 3 nodes/m);
  assert.match(check.stdout, /node 1 "HouseStyle": PromptStyleCalculator/);
  assert.match(check.stdout, /options example\.PromptStyleOptions \{"template":"\{prompt\}, watercolour, soft light","negative_prompt":"blurry"\}/);

  // The same calculator in a folder with no graphserve to import: a one-line reason, exit 1, no stack.
  const stray = join(tempDir(), "stray");
  mkdirSync(stray);
  writeFileSync(join(stray, "prompt-style.ts"), readmeBlock("A worked example", "ts"));
  writeFileSync(join(stray, "prompt_style.proto"), readmeBlock("Its options message", "proto"));
  const bad = await exec("npx", ["graphserve", "graph", "check", "--calculators_dir", stray, "my/graph.pbtxt"], project, { npm_config_offline: "true" });
  assert.equal(bad.code, 1, bad.stderr);
  assert.equal(bad.stdout, "");
  // npm's own warnings aside (under `npm test` it passes the clone's .npmrc settings on), graphserve says one line.
  const said = bad.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("npm warn"));
  assert.equal(said.length, 1, bad.stderr);
  assert.match(said[0], /^graphserve: --calculators_dir: cannot import calculator module ".*prompt-style\.ts": it imports "graphserve", which is not installed for its folder: add graphserve to the dependencies/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /);
});

test("the README shows the example files exactly as they are in examples/", () => {
  for (const [after, lang, file] of [
    ["A worked example", "ts", "examples/calculators/prompt-style.ts"],
    ["Its options message", "proto", "examples/calculators/prompt_style.proto"],
    ["And a graph that serves with it", "", "examples/graphs/prompt-style.pbtxt"],
  ] as const) {
    assert.equal(readmeBlock(after, lang), readFileSync(join(ROOT, file), "utf8"), file);
  }
});
