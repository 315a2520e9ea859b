#!/usr/bin/env node
// The `graphserve` command. A committed file rather than the compiled entry
// point: builds replace dist/, and a bin inside it came back without its
// executable bit after every build.
import { existsSync } from "node:fs";

const entry = new URL("../dist/src/cli/main.js", import.meta.url);
if (existsSync(entry)) {
  await import(entry.href);
} else {
  console.error(`graphserve: not built yet (no ${entry.pathname}); run npm run build in ${new URL("..", import.meta.url).pathname}`);
  process.exitCode = 1;
}
