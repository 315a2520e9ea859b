/**
 * Replaces a file so that a reader sees the old content or the new, never
 * half of it: a uniquely named temporary file beside it, renamed over it
 * (keeping its permission bits), removed again if anything fails.
 */
import { randomBytes } from "node:crypto";
import { chmod, rename, stat, unlink, writeFile } from "node:fs/promises";
import { resolve } from "node:path";

export async function replaceFile(path: string, content: string): Promise<void> {
  const mode = (await stat(path).catch(() => undefined))?.mode;
  const temp = `${resolve(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, content, { encoding: "utf8", flag: "wx" });
    if (mode !== undefined) await chmod(temp, mode & 0o7777);
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}
