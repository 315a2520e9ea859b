import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type protobuf from "protobufjs";
import { GraphError } from "../src/graph/diagnostics.js";
import { Schema } from "../src/graph/schema.js";
import { parseTextFormat, type ParsedMessage, type TextFormatResult } from "../src/graph/textformat/parser.js";

// A test-only schema covering what the graph protos do not: every scalar
// type, maps, oneofs, scalar and repeated extensions, required fields.
const PROTO = `
syntax = "proto2";
package tftest;
import "google/protobuf/any.proto";

message All {
  optional int32 i32 = 1;
  optional int64 i64 = 2;
  optional uint32 u32 = 3;
  optional uint64 u64 = 4;
  optional sint32 s32 = 5;
  optional sint64 s64 = 6;
  optional fixed32 f32 = 7;
  optional fixed64 f64 = 8;
  optional sfixed32 sf32 = 9;
  optional sfixed64 sf64 = 10;
  optional float fl = 11;
  optional double db = 12;
  optional bool b = 13;
  optional string s = 14;
  optional bytes by = 15;
  enum Color { RED = 0; GREEN = 1; NEG = -2; }
  optional Color color = 16;
  message Inner { optional int32 v = 1; optional Inner inner = 2; optional string w = 3; }
  optional Inner inner = 17;
  repeated Inner inners = 18;
  repeated int32 ints = 19;
  repeated string strs = 20;
  map<string, int32> counts = 21;
  map<int32, Inner> by_id = 22;
  optional google.protobuf.Any any = 23;
  repeated google.protobuf.Any anys = 24;
  oneof choice { string one_a = 25; int32 one_b = 26; }
  optional Req req = 27;
  repeated Color colors = 28;
  optional int32 with_default = 29 [default = 42];
  repeated float floats = 30;
  repeated bool bools = 31;
  extensions 100 to 200;
}
message Req { required string name = 1; optional int32 n = 2; }
message Ext {
  extend All { optional Ext ext = 100; }
  optional string note = 1;
}
extend All {
  optional int32 scalar_ext = 101;
  repeated int32 many_ext = 102;
}
message Other { extensions 100 to 200; }
extend Other { optional int32 other_ext = 100; }
`;

const protoDir = mkdtempSync(join(tmpdir(), "graphserve-textformat-"));
writeFileSync(join(protoDir, "tftest.proto"), PROTO);
const schema = new Schema();
schema.addFiles([join(protoDir, "tftest.proto")]);
const All = schema.findType("tftest.All")!;
const Inner = schema.findType("tftest.All.Inner")!;

function parse(text: string, type: protobuf.Type = All): TextFormatResult {
  return parseTextFormat(text, type, { file: "t.pbtxt", schema });
}
const msg = (text: string, type?: protobuf.Type): ParsedMessage => parse(text, type).message;
const sub = (m: ParsedMessage, field: string) => m[field] as ParsedMessage;

/** Asserts a GraphError with one diagnostic at `where` (line:col) whose message matches. */
function fails(text: string, where: string, expected: string | RegExp, type: protobuf.Type = All): void {
  assert.throws(
    () => parse(text, type),
    (e: unknown) => {
      assert.ok(e instanceof GraphError, `not a GraphError: ${String(e)}`);
      assert.equal(e.diagnostics.length, 1);
      const d = e.diagnostics[0];
      assert.equal(d.location?.file, "t.pbtxt");
      assert.equal(`${d.location?.line}:${d.location?.column}`, where, d.message);
      if (typeof expected === "string") assert.equal(d.message, expected);
      else assert.match(d.message, expected);
      return true;
    },
  );
}

describe("comments and layout", () => {
  test("# comments between any tokens, including inside [ ] and after a minus sign", () => {
    const r = parse(`# header one
  #  header two

i32: # c
  -  # c
  5 # c
inner # c
{ # c
 v: 1 } any { [ # c
 type.googleapis.com # c
 / # c
 tftest.All.Inner ] # c
 : { v: 2 } }
[ # c
tftest.Ext.ext # c
] { note: "n" }
s: "a" # c
 'b'
# trailing`);
    const m = r.message;
    assert.equal(m.i32, -5);
    assert.equal(sub(m, "inner").v, 1);
    assert.equal(sub(m, "any").type_url, "type.googleapis.com/tftest.All.Inner");
    assert.equal(Inner.decode(sub(m, "any").value as Uint8Array).toJSON().v, 2);
    assert.equal(sub(m, ".tftest.Ext.ext").note, "n");
    assert.equal(m.s, "ab");
    assert.deepEqual(r.headerComments, [
      { text: " header one", line: 1, column: 1 },
      { text: "  header two", line: 2, column: 3 },
    ]);
  });

  test("message bodies: field: {…}, field {…}, field{…}, <…> and field: <…>", () => {
    const m = msg(`inners: { v: 1 } inners { v: 2 } inners{v:3} inners < v: 4 > inners: <v:5>`);
    assert.deepEqual((m.inners as ParsedMessage[]).map((x) => x.v), [1, 2, 3, 4, 5]);
  });

  test("an optional , or ; after any field, inside and outside messages", () => {
    const m = msg(`i32: 1, s: "x"; b: true, inners { v: 1; w: "a", }, inners { v: 2 }; ints: [1, 2];`);
    assert.equal(m.i32, 1);
    assert.equal(m.s, "x");
    assert.equal(m.b, true);
    assert.equal((m.inners as ParsedMessage[]).length, 2);
    assert.deepEqual(m.ints, [1, 2]);
  });

  test("an empty input is an empty message; a BOM and CRLF line ends are fine", () => {
    const empty = msg("");
    assert.ok(All.fieldsArray.every((f) => !Object.hasOwn(empty, f.name) || f.repeated || f.map));
    const r = parse("\uFEFF# h\r\ni32: 1\r\ns: 'x'\r\n");
    assert.deepEqual(r.headerComments, [{ text: " h", line: 1, column: 1 }]);
    assert.equal(r.message.i32, 1);
    assert.equal(r.message.s, "x");
    assert.deepEqual(r.locations.locate(r.message, "s"), { file: "t.pbtxt", line: 3, column: 1 });
  });
});

describe("strings", () => {
  test("every escape, as bytes in a bytes field", () => {
    const m = msg(String.raw`by: "\a\b\f\n\r\t\v\?\\\'\"|\101\0\7\12\1234|\x41\x4|\xfF|\u00e9\U0001F600\uD83D\uDE00|é"`);
    assert.deepEqual(
      [...(m.by as Uint8Array)],
      [
        7, 8, 12, 10, 13, 9, 11, 63, 92, 39, 34, 124,
        65, 0, 7, 10, 83, 52, 124, // \123 then a literal 4: octal takes at most three digits
        65, 4, 124, 255, 124,
        0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0xf0, 0x9f, 0x98, 0x80, 124,
        0xc3, 0xa9,
      ],
    );
  });

  test("string fields decode the bytes as UTF-8; quotes of either kind; adjacent literals concatenate", () => {
    assert.equal(msg(String.raw`s: "caf\303\251 \u00e9 \U0001F600 'q'"`).s, "café é 😀 'q'");
    assert.equal(msg(`s: 'say "hi"'`).s, 'say "hi"');
    assert.equal(msg(`s: "a" 'b' # c\n "c"`).s, "abc");
    // A UTF-8 sequence may even be split across literals.
    assert.equal(msg(String.raw`s: "\xc3" "\xa9"`).s, "é");
    assert.deepEqual([...(msg(`by: "a" 'é'`).by as Uint8Array)], [97, 0xc3, 0xa9]);
    assert.deepEqual(msg(`strs: ["a" 'b', "c"]`).strs, ["ab", "c"]);
  });

  test("string errors are located", () => {
    fails(`s: "abc`, "1:4", `unterminated string: expected closing " before end of file`);
    fails(`s: 'ab\ncd'`, "1:4", `unterminated string: expected closing ' before end of line`);
    fails(`s: "ab\\\ncd"`, "1:4", `unterminated string: expected closing " before end of line`);
    fails(String.raw`s: "a\qb"`, "1:6", /^unknown escape sequence "\\q": expected one of \\a/);
    fails(String.raw`s: "\xg"`, "1:5", `expected hex digits after "\\x", found "g"`);
    fails(String.raw`s: "x\u12"`, "1:6", `expected 4 hex digits after "\\u", found "12"`);
    fails(String.raw`s: "\U00110000"`, "1:5", /^invalid Unicode escape "\\U00110000"/);
    fails(String.raw`s: "\uD800x"`, "1:5", /^invalid Unicode escape "\\uD800"/);
    fails(String.raw`s: "\777"`, "1:5", /^octal escape "\\777" is out of range/);
    fails(String.raw`s: "\xff"`, "1:4", /^expected valid UTF-8 for string field "s"/);
    fails(`s: 5`, "1:4", `expected a string for "s", found "5"`);
  });
});

describe("integers", () => {
  test("decimal, hex, octal and negative (with whitespace and comments after the sign)", () => {
    const m = msg(`i32: 0x1F i64: -0X10 u32: 017 s32: - # c\n 7 u64: 0 sf32: -2147483648 f32: 4294967295`);
    assert.deepEqual([m.i32, m.i64, m.u32, m.s32, m.u64, m.sf32, m.f32], [31, -16, 15, -7, 0, -2147483648, 4294967295]);
  });

  test("every integer type is range-checked", () => {
    const ok: [string, string, number][] = [
      ["i32", "2147483647", 2147483647], ["i32", "-2147483648", -2147483648],
      ["s32", "-2147483648", -2147483648], ["sf32", "2147483647", 2147483647],
      ["u32", "4294967295", 4294967295], ["f32", "0xFFFFFFFF", 4294967295],
      ["i64", "9007199254740991", 9007199254740991], ["s64", "-9007199254740991", -9007199254740991],
      ["sf64", "-1", -1], ["u64", "9007199254740991", 9007199254740991], ["f64", "0x1F", 31],
    ];
    for (const [f, text, value] of ok) assert.equal(msg(`${f}: ${text}`)[f], value, `${f}: ${text}`);
    fails(`i32: 2147483648`, "1:6", `expected an integer from -2147483648 to 2147483647 for "i32" (int32), found 2147483648`);
    fails(`s32: -2147483649`, "1:6", /^expected an integer from -2147483648 to 2147483647 for "s32" \(sint32\)/);
    fails(`sf32: 0x80000000`, "1:7", /for "sf32" \(sfixed32\), found 2147483648$/);
    fails(`u32: 4294967296`, "1:6", /^expected an integer from 0 to 4294967295 for "u32"/);
    fails(`f32: -1`, "1:6", `expected a non-negative integer for unsigned field "f32" (fixed32), found -1`);
    fails(`u64: - 5`, "1:6", `expected a non-negative integer for unsigned field "u64" (uint64), found -5`);
    fails(`u64: 18446744073709551616`, "1:6", /^expected an integer from 0 to 18446744073709551615 for "u64"/);
    fails(`i64: 9223372036854775808`, "1:6", /^expected an integer from -9223372036854775808 to 9223372036854775807/);
    // In range for int64, but a JS number would round it.
    fails(`i64: 9007199254740993`, "1:6", /^expected an integer within ±9007199254740991 for "i64" \(int64; 64-bit values are read as JavaScript numbers\)/);
  });

  test("what is not an integer", () => {
    fails(`i32: 1.5`, "1:6", `expected an integer for "i32" (int32), found "1.5"`);
    fails(`i32: 10f`, "1:6", `expected an integer for "i32" (int32), found "10f"`);
    fails(`i32: "1"`, "1:6", `expected an integer for "i32" (int32), found string "1"`);
    fails(`i32: - }`, "1:8", `expected a number after "-", found "}"`);
    fails(`i32: 10bar`, "1:8", `expected whitespace or punctuation after number "10", found "bar"`);
    fails(`i32: 08`, "1:7", `invalid digit "8" in octal number "08"`);
    fails(`i32: 0x`, "1:6", `expected hex digits after "0x", found end of file`);
  });
});

describe("floats, booleans and enums", () => {
  test("float spellings, integers in float fields, inf and nan in any case", () => {
    const m = msg(`floats: [1.5, .5, 1., 1e-3, 7.f, 10f, 1E2F, -inf, inf, Infinity, -INFINITY, nan, NaN, 3, -2, 0, - # c\n 2.5] db: 1e300`);
    const f = m.floats as number[];
    assert.deepEqual(f.slice(0, 11), [1.5, 0.5, 1, 0.001, 7, 10, 100, -Infinity, Infinity, Infinity, -Infinity]);
    assert.ok(Number.isNaN(f[11]) && Number.isNaN(f[12]));
    assert.deepEqual(f.slice(13), [3, -2, 0, -2.5]);
    assert.equal(m.db, 1e300);
  });

  test("float errors", () => {
    fails(`fl: 0x10`, "1:5", `expected a decimal number for "fl" (float), found "0x10"`);
    fails(`fl: 010`, "1:5", `expected a decimal number for "fl" (float), found "010"`);
    fails(`fl: infinite`, "1:5", `expected a number for "fl" (float), found "infinite"`);
    fails(`fl: 1e`, "1:5", `expected exponent digits in number "1e", found end of file`);
    fails(`fl: 1.5.3`, "1:8", `expected whitespace or punctuation after number "1.5", found ".3"`);
    fails(`db: 7.fx`, "1:8", `expected whitespace or punctuation after number "7.f", found "x"`);
  });

  test("booleans: true/True/t/1 and false/False/f/0", () => {
    assert.deepEqual(msg(`bools: [true, True, t, 1, false, False, f, 0, 0x1]`).bools, [true, true, true, true, false, false, false, false, true]);
    fails(`b: 2`, "1:4", `expected true or false for "b", found "2"`);
    fails(`b: TRUE`, "1:4", `expected true or false for "b", found "TRUE"`);
    fails(`b: -1`, "1:4", `expected true or false for "b", found "-"`);
  });

  test("enums by name or number; unknown ones are errors", () => {
    const m = msg(`color: GREEN colors: [RED, 1, -2, NEG]`);
    assert.equal(m.color, 1);
    assert.deepEqual(m.colors, [0, 1, -2, -2]);
    fails(`color: BLUE`, "1:8", `unknown value "BLUE" for "color" of enum tftest.All.Color (expected one of RED, GREEN, NEG)`);
    fails(`color: 5`, "1:8", `unknown number 5 for "color" of enum tftest.All.Color (expected one of RED, GREEN, NEG)`);
    fails(`color: -RED`, "1:8", /^expected an enum value name or number for "color"/);
    fails(`color: "RED"`, "1:8", `expected an enum value name or number for "color" of enum tftest.All.Color, found string "RED"`);
  });
});

describe("fields", () => {
  test("repeated fields: repeatedly, as lists, or mixed, order kept", () => {
    const m = msg(`ints: 1 ints: [2, 3] ints: 4 ints: [] inners [ {v:1}, <v:2> ] inners {v:3} inners: [{v:4}]`);
    assert.deepEqual(m.ints, [1, 2, 3, 4]);
    assert.deepEqual((m.inners as ParsedMessage[]).map((x) => x.v), [1, 2, 3, 4]);
  });

  test("presence: set fields are own properties, proto2 defaults come from the prototype", () => {
    const m = msg(`i32: 0 inner {}`);
    assert.ok(Object.hasOwn(m, "i32"));
    assert.ok(Object.hasOwn(m, "inner"));
    assert.ok(!Object.hasOwn(m, "with_default"));
    assert.equal(m.with_default, 42);
    assert.equal(m.$type, All);
    assert.equal(sub(m, "inner").$type, Inner);
  });

  test("oneof members exclude each other", () => {
    assert.equal(msg(`one_b: 3`).one_b, 3);
    fails(`one_a: "x"\none_b: 1`, "2:1", `field "one_b" and field "one_a" (at 1:1) belong to oneof "choice": expected only one of them`);
  });

  test("maps: repeated { key value } entries, list syntax too, last key wins", () => {
    const m = msg(`counts { key: "a" value: 1 } counts: { key: "b", value: 2 } counts [ { key: "a" value: 3 }, <value: 4> ]
by_id { key: 5 value { v: 9 } } by_id { key: 6 } counts { key: "__proto__" value: 7 }`);
    const counts = m.counts as Record<string, number>;
    assert.deepEqual({ ...counts }, { a: 3, b: 2, "": 4, ["__proto__"]: 7 });
    assert.ok(Object.hasOwn(counts, "__proto__"));
    assert.equal(Object.getPrototypeOf(counts), Object.getPrototypeOf((All.create() as ParsedMessage).counts));
    const byId = m.by_id as Record<string, ParsedMessage>;
    assert.equal(byId["5"].v, 9);
    assert.equal(byId["6"].$type, Inner);
    assert.equal(All.decode(All.encode(m).finish()).toJSON().counts.a, 3);
    fails(`counts { nope: 1 }`, "1:10", `expected "key", "value" or "}" in an entry of "counts", found "nope"`);
    fails(`counts { key: 1 }`, "1:15", `expected a string for the key of "counts", found "1"`);
    fails(`counts { key: "a" key: "b" }`, "1:19", `"key" is given more than once in an entry of "counts": expected one, already given at 1:10`);
    fails(`counts { value 1 }`, "1:16", `expected ":" after "value" in an entry of "counts", found "1"`);
  });

  test("required fields must be given", () => {
    assert.equal(sub(msg(`req { name: "x" }`), "req").name, "x");
    fails(`i32: 1\nreq { n: 1 }`, "2:1", `missing required field "name" in tftest.Req`);
  });

  test("unknown fields say what was expected, briefly", () => {
    fails(`i33: 1`, "1:1", `unknown field "i33" in tftest.All (did you mean "i32"?)`);
    fails(`inner { vv: 1 }`, "1:9", `unknown field "vv" in tftest.All.Inner (did you mean "v"?)`);
    fails(`inner { zzz: 1 }`, "1:9", `unknown field "zzz" in tftest.All.Inner (expected one of "v", "inner", "w")`);
    fails(`zzzzzz: 1`, "1:1", /^unknown field "zzzzzz" in tftest.All \(expected a field of tftest.All or an extension/);
  });

  test("colons, lists and repetition rules", () => {
    fails(`i32 5`, "1:5", `expected ":" after field name "i32", found "5"`);
    fails(`inner = { v: 1 }`, "1:7", `expected ":" or "{" after field name "inner", found "="`);
    fails(`inner: 5`, "1:8", `expected "{" or "<" after "inner":, found "5"`);
    fails(`i32: [1]`, "1:6", `expected a single value for non-repeated field "i32", found "[" (list syntax is only for repeated fields)`);
    fails(`inner [{}]`, "1:7", /^expected a single value for non-repeated field "inner"/);
    fails(`ints [1]`, "1:6", `expected ":" after field name "ints", found "["`);
    fails(`ints: [1,]`, "1:10", `expected an integer for "ints" (int32), found "]"`);
    fails(`ints: [1 2]`, "1:10", `expected "," or "]" in the list of "ints", found "2"`);
    fails(`ints: [1,\n2`, "2:2", `unexpected end of file: expected "]" to close the list of "ints" opened at 1:7`);
    fails(`inners: [1]`, "1:10", `expected "{" or "<" to start an entry of "inners", found "1"`);
    fails(`i32: 1\ns: "a"\ni32: 2`, "3:1", `non-repeated field "i32" is given more than once: expected one value, already given at 1:1`);
    fails(`inner {}\ninner {}`, "2:1", /^non-repeated field "inner" is given more than once/);
  });

  test("structure errors name what is open and where", () => {
    fails(`inner {\n  v: 1\n`, "3:1", `unexpected end of file: expected "}" to close "inner" opened at 1:1`);
    fails(`inner <\n  v: 1 }`, "2:8", `expected ">" to close "inner" opened at 1:1, found "}"`);
    fails(`i32: 1 }`, "1:8", `expected a field name, found "}"`);
    fails(`inner { 5 }`, "1:9", `expected a field name or "}", found "5"`);
    fails(`@`, "1:1", `expected a field name, found "@"`);
    fails(`inner { v: 1 \u0001 }`, "1:14", `expected a field name or "}", found character U+0001`);
  });
});

describe("extensions and Any", () => {
  test("[fully.qualified.ext] fields: message, scalar and repeated", () => {
    const r = parse(`[tftest.Ext.ext] { note: "x" } [tftest.scalar_ext]: 5 [tftest.many_ext]: [1, 2] [ tftest.many_ext ]: 3`);
    const m = r.message;
    assert.equal(sub(m, ".tftest.Ext.ext").note, "x");
    assert.equal(m[".tftest.scalar_ext"], 5);
    assert.deepEqual(m[".tftest.many_ext"], [1, 2, 3]);
    assert.equal(r.payloads.length, 1);
    assert.deepEqual({ ...r.payloads[0], message: undefined }, {
      via: "extension", typeName: "tftest.Ext", container: m, message: undefined, location: { file: "t.pbtxt", line: 1, column: 1 },
    });
    assert.equal(r.payloads[0].message, m[".tftest.Ext.ext"]);
    // Encodes as the extension field.
    assert.equal(All.decode(All.encode(m).finish()).toJSON()[".tftest.scalar_ext"], 5);
  });

  test("extension errors", () => {
    fails(`i32: 1 [tftest.other_ext]: 1`, "1:8", `extension "[tftest.other_ext]" extends tftest.Other, not tftest.All: expected an extension of tftest.All`);
    fails(`[tftest.Ext.ext] { note: "x" } [tftest.Ext.ext] {}`, "1:32", /^non-repeated field "\[tftest.Ext.ext\]" is given more than once/);
    fails(`[tftest.Req] {}`, "1:1", /^"\[tftest.Req\]" names a message type, not an extension: expected "\[tftest.Req.ext\]"/);
    fails(`inner { [foo.bar]: 1 }`, "1:9", `expected a field name, found extension "[foo.bar]": tftest.All.Inner has no extensions`);
    fails(`[tftest..x]: 1`, "1:9", `expected a name inside "[…]", found "."`);
    fails(`[tftest.x}`, "1:10", `expected ".", "/" or "]" after "[tftest.x", found "}"`);
    fails(`[tftest.x`, "1:10", `unexpected end of file: expected "]" to close "[" opened at 1:1`);
  });

  test("an unknown extension is kept as raw text with a warning, its body still checked", () => {
    const r = parse(`[tftest.Nope.ext] { a: 1 b { c: "d" } [x.y]: [1, 2] } i32: 3`);
    assert.equal(r.message.i32, 3);
    assert.deepEqual(r.payloads, [{
      via: "extension", typeName: "tftest.Nope", container: r.message, rawText: `{ a: 1 b { c: "d" } [x.y]: [1, 2] }`, location: { file: "t.pbtxt", line: 1, column: 1 },
    }]);
    assert.deepEqual(r.warnings, [{ message: `unknown options type 'tftest.Nope' kept unparsed: no loaded .proto file defines it`, location: { file: "t.pbtxt", line: 1, column: 1 } }]);
    assert.equal(parse(`[tftest.nope]: -5`).payloads[0].rawText, "-5");
    fails(`[tftest.Nope.ext] { a: }`, "1:24", `expected a value for "a", found "}"`);
    fails(`[tftest.Nope.ext] { a { b: "x }`, "1:28", /^unterminated string/);
    fails(`[tftest.Nope.ext] { a = 1 }`, "1:23", `expected ":" or "{" after field name "a", found "="`);
  });

  test("Any expansion: typed, encoded into value, recorded", () => {
    const r = parse(`anys [ { [type.googleapis.com/tftest.All.Inner] { v: 1 } }, { [type.googleapis.com / tftest.Req]: < name: "r" > } ]
any { [type.googleapis.com/tftest.Req] { name: "q" } }`);
    const anys = r.message.anys as ParsedMessage[];
    assert.deepEqual(anys.map((a) => a.type_url), ["type.googleapis.com/tftest.All.Inner", "type.googleapis.com/tftest.Req"]);
    assert.equal(Inner.decode(anys[0].value as Uint8Array).toJSON().v, 1);
    assert.deepEqual(r.payloads.map((p) => [p.via, p.typeName, p.message?.name ?? p.message?.v]), [
      ["any", "tftest.All.Inner", 1], ["any", "tftest.Req", "r"], ["any", "tftest.Req", "q"],
    ]);
    assert.equal(r.payloads[0].container, anys[0]);
    // The explicit form is an ordinary message too.
    const explicit = sub(msg(String.raw`any { type_url: "type.googleapis.com/tftest.All.Inner" value: "\x08\x07" }`), "any");
    assert.equal(Inner.decode(explicit.value as Uint8Array).toJSON().v, 7);
  });

  test("an Any of an unknown type is kept as raw text with a warning", () => {
    const r = parse(`any { [type.googleapis.com/tftest.Missing]: { x: 1, y < z: "w" > } }`);
    const any = sub(r.message, "any");
    assert.equal(any.type_url, "type.googleapis.com/tftest.Missing");
    assert.ok(!Object.hasOwn(any, "value"));
    assert.equal(r.payloads[0].rawText, `{ x: 1, y < z: "w" > }`);
    assert.equal(r.payloads[0].typeName, "tftest.Missing");
    assert.equal(r.warnings[0].message, `unknown options type 'tftest.Missing' kept unparsed: no loaded .proto file defines it`);
    assert.deepEqual(r.warnings[0].location, { file: "t.pbtxt", line: 1, column: 7 });
    fails(`any { [type.googleapis.com/tftest.Missing] { x: 1 y } }`, "1:53", `expected ":" or "{" after field name "y", found "}"`);
  });

  test("Any expansion errors", () => {
    fails(`inner { [type.googleapis.com/tftest.Req] { name: "x" } }`, "1:9", /^expected a field name or "\[extension\]", found the type URL "\[type.googleapis.com\/tftest.Req\]": expanded values belong only inside a google.protobuf.Any field, and this is tftest.All.Inner$/);
    fails(`any { [type.googleapis.com/tftest.Req] { name: "x" } [type.googleapis.com/tftest.Req] { name: "y" } }`, "1:54", /^expected "}" \(an Any holds one value, already given at 1:7\)/);
    fails(`any { type_url: "x" [type.googleapis.com/tftest.Req] { name: "y" } }`, "1:21", /^expected "}" \(an Any holds one value, already given at 1:7\)/);
    fails(`any { [type.googleapis.com/tftest.Req] { name: "y" } type_url: "x" }`, "1:54", /^expected "}" after the expanded Any value at 1:7/);
    fails(`any { [type.googleapis.com/tftest.Req]: 5 }`, "1:41", `expected "{" or "<" after "[type.googleapis.com/tftest.Req]", found "5"`);
    fails(`any { [a/b/c] {} }`, "1:11", `expected "." or "]" after "[a/b", found "/"`);
    fails(`any { [type.googleapis.com/tftest.Req] { } }`, "1:7", `missing required field "name" in tftest.Req`);
  });
});

describe("locations", () => {
  test("messages, fields, repeated entries, list elements and payloads are located", () => {
    const r = parse(`i32: 1
inners { v: 1 }
  inners [ { v: 2 }, {} ]
ints: [4,
  5]
any { [type.googleapis.com/tftest.All.Inner] { w: "x" } }
`);
    const at = (line: number, column: number) => ({ file: "t.pbtxt", line, column });
    const { locations: loc, message: m } = r;
    const inners = m.inners as ParsedMessage[];
    assert.deepEqual(loc.locate(m), at(1, 1));
    assert.deepEqual(loc.locate(m, "i32"), at(1, 1));
    assert.deepEqual(loc.occurrences(m, "inners"), [at(2, 1), at(3, 12), at(3, 22)]);
    assert.deepEqual(loc.locate(m, "inners", 1), at(3, 12));
    assert.deepEqual(loc.locate(inners[0]), at(2, 1));
    assert.deepEqual(loc.locate(inners[1], "v"), at(3, 14));
    assert.deepEqual(loc.locate(inners[2], "v"), at(3, 22)); // absent: the message itself
    assert.deepEqual(loc.locate(m, "ints", 1), at(5, 3));
    assert.deepEqual(loc.locate(m, "s"), at(1, 1)); // absent: the root
    const any = sub(m, "any");
    assert.deepEqual(loc.locate(any, "type_url"), at(6, 7));
    assert.deepEqual(loc.locate(r.payloads[0].message!, "w"), at(6, 48));
    assert.equal(loc.locate({}), undefined);
  });
});

describe("robustness", () => {
  test("nesting is limited (100 levels), on typed and on skipped bodies", () => {
    assert.equal(msg(`${"inner { ".repeat(99)}${"} ".repeat(99)}`).$type, All);
    // The 101st nested message opens at column 8*100+7.
    fails(`${"inner { ".repeat(200)}`, "1:807", `messages nested too deeply: expected at most 100 levels`);
    // any (1) and its body (2) leave 98 levels: the 99th "a {" is one too many.
    fails(`any { [type.googleapis.com/x.Y] { ${"a { ".repeat(200)}`, "1:429", `messages nested too deeply: expected at most 100 levels`);
    fails(`[x.y.ext] { ${"a { ".repeat(100000)}`, "1:411", /nested too deeply/);
  });

  test("hostile input fails fast with a located GraphError", () => {
    const inputs = ["[".repeat(1e5), "-".repeat(1e5), '"'.repeat(1e5 + 1), "{".repeat(1e5), "inner{".repeat(1e5), "ints: [".repeat(1e5), "#".repeat(1e5), "s: " + '"a" '.repeat(1e5), "\\".repeat(1e5)];
    for (const text of inputs) {
      const start = performance.now();
      try {
        parse(text);
      } catch (e) {
        assert.ok(e instanceof GraphError, String(e));
        assert.ok(e.diagnostics[0].location, e.message);
      }
      assert.ok(performance.now() - start < 1000, `slow on ${text.slice(0, 10)}…`);
    }
    // Megabyte literals and names are rejected without quadratic work, and quoted briefly.
    const start = performance.now();
    fails(`i64: ${"9".repeat(1e6)}`, "1:6", `expected an integer from -9223372036854775808 to 9223372036854775807 for "i64" (int64), found ${"9".repeat(117)}...`);
    fails(`colors: [-0x${"f".repeat(1e6)}]`, "1:10", /^unknown number 0xfffffffffffffffffff/);
    fails(`${"x".repeat(1e6)}: 1`, "1:1", `unknown field "${"x".repeat(117)}..." in tftest.All (expected a field of tftest.All or an extension such as "[package.XOptions.ext] { … }")`);
    assert.ok(performance.now() - start < 1000);
  });

  test("random token soup never throws anything but a located GraphError", () => {
    const pieces = ["i32", "inner", "inners", "any", "counts", "s", "by", "fl", ":", "{", "}", "<", ">", "[", "]", ",", ";", "-", "/", ".", " ", "\n", "# c\n",
      '"x"', "'y'", '"\\', "1", "0x", "07", "1.5", "inf", "true", "GREEN", "[tftest.Ext.ext]", "[type.googleapis.com/tftest.Req]", "key", "value", "name", "=", "\u00e9", "\\u12"];
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const text = Array.from({ length: 1 + rand(30) }, () => pieces[rand(pieces.length)]).join(" ");
      try {
        parse(text);
        accepted++;
      } catch (e) {
        if (!(e instanceof GraphError) || !e.diagnostics[0]?.location) throw new Error(`bad failure for ${JSON.stringify(text)}: ${String(e)}`);
      }
    }
    assert.ok(accepted > 0);
  });

  test("large inputs parse in linear time", () => {
    const node = `inners { v: 1 w: "a\\tb" inner { v: -2 } } ints: [1, 2, 3] # comment\n`;
    const time = (n: number) => {
      const text = node.repeat(n);
      const start = performance.now();
      const m = msg(text);
      assert.equal((m.inners as unknown[]).length, n);
      return performance.now() - start;
    };
    time(2000); // warm up
    const small = time(5000);
    const big = time(20000);
    // Loose bounds: other test files run in parallel; a quadratic parser would blow both.
    assert.ok(big < 3000, `20000 entries took ${big} ms`);
    assert.ok(big < small * 12 + 100, `superlinear: ${small} ms for 5k, ${big} ms for 20k`);
  });
});
