import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { buildPortList, InvalidNameError, parseTagIndex, parseTagIndexName } from "../src/graph/names.js";

const TIN_MESSAGE = (entry: string) =>
  `TAG:index:name is invalid, "${entry}" does not match "([A-Z_][A-Z0-9_]*:((0|[1-9][0-9]*):)?)?[a-z_][a-z0-9_]*" (examples: "TAG:name" "VIDEO:2:name_b", "longer_name").`;
const TI_MESSAGE = (entry: string) => `TAG:index is invalid, "${entry}" does not match "([A-Z_][A-Z0-9_]*)?(:(0|[1-9][0-9]*))?" (examples: "TAG" "VIDEO:2").`;

describe("parseTagIndexName", () => {
  test("the three forms", () => {
    assert.deepEqual(parseTagIndexName("frames"), { tag: "", index: undefined, name: "frames" });
    assert.deepEqual(parseTagIndexName("IMAGE:frames"), { tag: "IMAGE", index: 0, name: "frames" });
    assert.deepEqual(parseTagIndexName("IMAGE:2:frames_b"), { tag: "IMAGE", index: 2, name: "frames_b" });
    assert.deepEqual(parseTagIndexName("_T9:10:_x9"), { tag: "_T9", index: 10, name: "_x9" });
  });

  for (const bad of ["", "Frames", "9frames", "image:frames", "IMAGE:", ":frames", "IMAGE:01:x", "IMAGE:-1:x", "A:1:B:c", "IMAGE:x:y", "fr-ames", "IMAGE:1:"]) {
    test(`rejects ${JSON.stringify(bad)} with MediaPipe's message`, () => {
      assert.throws(() => parseTagIndexName(bad), (e: unknown) => e instanceof InvalidNameError && e.message === TIN_MESSAGE(bad));
    });
  }
});

describe("parseTagIndex", () => {
  test("TAG, TAG:i, :i and the empty string", () => {
    assert.deepEqual(parseTagIndex("FINISHED"), { tag: "FINISHED", index: 0 });
    assert.deepEqual(parseTagIndex("LOOPBACK:2"), { tag: "LOOPBACK", index: 2 });
    assert.deepEqual(parseTagIndex(":3"), { tag: "", index: 3 });
    assert.deepEqual(parseTagIndex(""), { tag: "", index: 0 });
  });

  for (const bad of ["finished", "A:", "A:01", "A:1:2", "A:b", ":"]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseTagIndex(bad), (e: unknown) => e instanceof InvalidNameError && e.message === TI_MESSAGE(bad));
    });
  }
});

describe("buildPortList", () => {
  test("flat order: tags sorted with untagged first, then by index; untagged numbered by position", () => {
    const list = buildPortList(["B:1:b1", "x", "A:a", "B:0:b0", "y", "FINISHED:done"]);
    assert.deepEqual(list.errors, []);
    assert.deepEqual(
      list.ports.map((p) => [p.tag, p.index, p.name, p.key]),
      [["", 0, "x", 0], ["", 1, "y", 1], ["A", 0, "a", "A"], ["B", 0, "b0", "B"], ["B", 1, "b1", "B:1"], ["FINISHED", 0, "done", "FINISHED"]],
    );
    assert.deepEqual(list.entryOf, [1, 4, 2, 3, 0, 5]);
  });

  test("tags sort by code unit, as std::map does (underscore after capitals)", () => {
    assert.deepEqual(buildPortList(["_A:p", "B:q", "AB:r"]).ports.map((p) => p.tag), ["AB", "B", "_A"]);
  });

  test("an empty list has no ports", () => {
    assert.deepEqual(buildPortList([]), { ports: [], entryOf: [], errors: [] });
  });

  test("TAG:name twice claims index 0 twice", () => {
    const list = buildPortList(["TAG:a", "TAG:b"]);
    assert.deepEqual(list.errors, [{ entry: 1, message: 'tag "TAG" index 0 already had a name "a" but is being reassigned a name "b"' }]);
    assert.deepEqual(list.ports.map((p) => p.name), ["a"]);
  });

  test("the same index named twice, even with the same name", () => {
    assert.deepEqual(buildPortList(["T:1:a", "T:0:z", "T:1:a"]).errors, [{ entry: 2, message: 'tag "T" index 1 already had a name "a" but is being reassigned a name "a"' }]);
  });

  test("indexes must be dense", () => {
    const list = buildPortList(["T:0:a", "T:2:c"]);
    assert.deepEqual(list.errors, [
      { entry: 1, message: 'Not all indexes were assigned names.  Tag "T" has the following: index 0 name "a", index 1 name <missing>, index 2 name "c"' },
    ]);
  });

  test("a huge index is reported without listing every gap", () => {
    const [error] = buildPortList(["T:99999999:z"]).errors;
    assert.equal(error.entry, 0);
    assert.match(error.message, /^Not all indexes were assigned names\. {2}Tag "T" has the following: index 0 name <missing>, .*index 7 name <missing>, … index 99999999 name "z"$/);
  });

  test("bad entries are reported and left out; positions count only parsed untagged entries", () => {
    const list = buildPortList(["a", "Bad", "b"]);
    assert.deepEqual(list.errors, [{ entry: 1, message: TIN_MESSAGE("Bad") }]);
    assert.deepEqual(list.ports.map((p) => [p.index, p.name]), [[0, "a"], [1, "b"]]);
    assert.deepEqual(list.entryOf, [0, 2]);
  });
});
