/**
 * JSON as diffusers and transformers write it: Python's json.dumps emits the
 * bare tokens NaN, Infinity and -Infinity (e.g. DPMSolverMultistep's
 * `"lambda_min_clipped": -Infinity`), which JSON.parse rejects.
 */

const MARK = "\u0000py-number:";
const PY_NUMBERS: Readonly<Record<string, number>> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, "-Infinity": Number.NEGATIVE_INFINITY };

/** JSON.parse that also accepts NaN, Infinity and -Infinity as values (outside strings). */
export function parseConfigJson(text: string): unknown {
  let rewritten = "";
  let from = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      continue;
    }
    if (c !== "N" && c !== "I" && c !== "-") continue;
    const token = ["-Infinity", "Infinity", "NaN"].find((t) => text.startsWith(t, i));
    if (token === undefined) continue;
    // The marker's NUL is written as the JSON escape \u0000, which no config string starts with.
    rewritten += `${text.slice(from, i)}"\\u0000py-number:${token}"`;
    i += token.length - 1;
    from = i + 1;
  }
  if (from === 0) return JSON.parse(text);
  return JSON.parse(rewritten + text.slice(from), (_key, value: unknown) =>
    typeof value === "string" && value.startsWith(MARK) ? PY_NUMBERS[value.slice(MARK.length)] : value,
  );
}
