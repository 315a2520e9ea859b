/**
 * Stream and side-packet names as graphs write them (`TAG:index:name`,
 * `TAG:name`, `name`), the `tag_index` strings of InputStreamInfo and sync
 * sets, and the flat port lists MediaPipe builds from them. Error texts are
 * MediaPipe's, since users (and OVMS's tests) match on them.
 */
import { portKey, type Port } from "../engine/calculator.js";

const NAME = "[a-z_][a-z0-9_]*";
const TAG = "[A-Z_][A-Z0-9_]*";
const NUMBER = "(0|[1-9][0-9]*)";
const TAG_INDEX_NAME_PATTERN = `(${TAG}:(${NUMBER}:)?)?${NAME}`;
const TAG_INDEX_PATTERN = `(${TAG})?(:${NUMBER})?`;

const NAME_RE = new RegExp(`^${NAME}$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const NUMBER_RE = new RegExp(`^${NUMBER}$`);

/** A name, tag or index that does not follow MediaPipe's lexical rules. */
export class InvalidNameError extends Error {
  override readonly name = "InvalidNameError";
}

/** One parsed `TAG:index:name` entry. `index` is undefined for a bare `name`: its index is its position. */
export interface TagIndexName {
  readonly tag: string;
  readonly index: number | undefined;
  readonly name: string;
}

export function isValidName(s: string): boolean {
  return NAME_RE.test(s);
}

export function isValidTag(s: string): boolean {
  return TAG_RE.test(s);
}

/** Parses `TAG:index:name`, `TAG:name` (index 0) or `name`; throws InvalidNameError. */
export function parseTagIndexName(entry: string): TagIndexName {
  const parts = entry.split(":");
  const [a, b, c] = parts;
  if (parts.length === 1 && NAME_RE.test(a)) return { tag: "", index: undefined, name: a };
  if (parts.length === 2 && TAG_RE.test(a) && NAME_RE.test(b)) return { tag: a, index: 0, name: b };
  if (parts.length === 3 && TAG_RE.test(a) && NUMBER_RE.test(b) && NAME_RE.test(c)) return { tag: a, index: Number(b), name: c };
  throw new InvalidNameError(
    `TAG:index:name is invalid, "${entry}" does not match "${TAG_INDEX_NAME_PATTERN}" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").`,
  );
}

/** Parses the `tag_index` of InputStreamInfo or a sync set: `"TAG"`, `"TAG:2"`, `":3"`, `""`. */
export function parseTagIndex(tagIndex: string): { tag: string; index: number } {
  const parts = tagIndex.split(":");
  const tagOk = parts[0] === "" || TAG_RE.test(parts[0]);
  if (parts.length === 1 && tagOk) return { tag: parts[0], index: 0 };
  if (parts.length === 2 && tagOk && NUMBER_RE.test(parts[1])) return { tag: parts[0], index: Number(parts[1]) };
  throw new InvalidNameError(`TAG:index is invalid, "${tagIndex}" does not match "${TAG_INDEX_PATTERN}" (examples: "TAG" "VIDEO:2").`);
}

/** A problem with one entry of a list (`entry` is its position in the list as written). */
export interface PortListError {
  readonly entry: number;
  readonly message: string;
}

export interface PortList {
  /** Ports in MediaPipe's flat order: tags sorted ("" first), then index. */
  readonly ports: readonly Port[];
  /** For each flat port, the position of the entry it came from (to locate problems). */
  readonly entryOf: readonly number[];
  /** Every problem found; `ports` then holds only the entries that made sense. */
  readonly errors: readonly PortListError[];
}

/**
 * Builds the flat port list of one `input_stream` (or other) list, checking
 * syntax, that no tag index is named twice, and that each tag's indexes are
 * dense (0..n-1).
 */
export function buildPortList(entries: readonly string[]): PortList {
  const errors: PortListError[] = [];
  // tag -> index -> [name, entry]
  const byTag = new Map<string, Map<number, readonly [string, number]>>();
  let untagged = 0;
  entries.forEach((entry, i) => {
    let parsed: TagIndexName;
    try {
      parsed = parseTagIndexName(entry);
    } catch (e) {
      errors.push({ entry: i, message: (e as Error).message });
      return;
    }
    // Only untagged entries are numbered by position; `TAG:name` is always index 0.
    const index = parsed.index ?? untagged++;
    let names = byTag.get(parsed.tag);
    if (!names) byTag.set(parsed.tag, (names = new Map()));
    const previous = names.get(index);
    if (previous) {
      errors.push({
        entry: i,
        message: `tag "${parsed.tag}" index ${index} already had a name "${previous[0]}" but is being reassigned a name "${parsed.name}"`,
      });
      return;
    }
    names.set(index, [parsed.name, i]);
  });

  const ports: Port[] = [];
  const entryOf: number[] = [];
  // Plain code-unit order, as std::map<std::string> sorts, so "" comes first.
  const tags = [...byTag.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  for (const tag of tags) {
    const names = byTag.get(tag)!;
    const indexes = [...names.keys()].sort((x, y) => x - y);
    const top = indexes[indexes.length - 1];
    if (top !== indexes.length - 1) {
      errors.push({ entry: names.get(top)![1], message: notDense(tag, names, top) });
    }
    for (const index of indexes) {
      const [name, entry] = names.get(index)!;
      ports.push({ tag, index, name, key: portKey(tag, index) });
      entryOf.push(entry);
    }
  }
  errors.sort((x, y) => x.entry - y.entry);
  return { ports, entryOf, errors };
}

/** MediaPipe's message for gaps in a tag's indexes, on one line and bounded for huge indexes. */
function notDense(tag: string, names: ReadonlyMap<number, readonly [string, number]>, top: number): string {
  const shown: string[] = [];
  for (let index = 0; index <= top && shown.length < 8; index++) {
    const named = names.get(index);
    shown.push(`index ${index} name ${named ? `"${named[0]}"` : "<missing>"}`);
  }
  if (top >= shown.length) shown.push(top === shown.length ? `index ${top} name "${names.get(top)![0]}"` : `… index ${top} name "${names.get(top)![0]}"`);
  return `Not all indexes were assigned names.  Tag "${tag}" has the following: ${shown.join(", ")}`;
}
