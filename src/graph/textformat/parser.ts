/**
 * Schema-driven parser for the protobuf text format. It builds protobufjs
 * message instances directly (so proto2 defaults come from the prototype and
 * `Object.hasOwn(msg, field)` tells presence), and records where every
 * message and field occurrence was written.
 *
 * Recursive descent with an explicit nesting limit, one token of lookahead
 * and no backtracking: linear in the input, and the stack stays bounded on
 * hostile input. Everything thrown is a located GraphError.
 */
import protobuf from "protobufjs";
import { GraphError, type Diagnostic, type SourceLocation } from "../diagnostics.js";
import type { Schema } from "../schema.js";
import { clip, describeToken, Lexer, type HeaderComment, type Token } from "./lexer.js";

export type { HeaderComment } from "./lexer.js";

/**
 * A parsed message: a protobufjs message instance (of `$type`), fields keyed
 * by their proto names. Typed as a record rather than protobuf.Message so
 * protobufjs's `any`-typed members do not leak into callers.
 */
export type ParsedMessage = Record<string, unknown> & { readonly $type: protobuf.Type };

/** A typed payload in brackets: an expanded Any, or a message-typed extension. */
export interface OptionPayload {
  /** `any`: `[type.googleapis.com/X] {…}` in a google.protobuf.Any; `extension`: `[X.ext] {…}`. */
  readonly via: "any" | "extension";
  /**
   * The payload's message type, fully qualified without a leading dot. For
   * an unknown extension, its name minus a trailing `.ext` (MediaPipe's naming).
   */
  readonly typeName: string;
  /** The Any message that was expanded, or the message holding the extension field. */
  readonly container: object;
  /** The decoded payload, when the schema knows its type. */
  readonly message?: ParsedMessage;
  /** The payload's source text (the `{…}` body or value), when the type is unknown. */
  readonly rawText?: string;
  /** Where the payload's `[` is. */
  readonly location: SourceLocation;
}

export interface TextFormatOptions {
  /** Used in every location. */
  readonly file: string;
  readonly schema: Schema;
  /** How deep messages may nest; 100 unless given. */
  readonly maxDepth?: number;
}

export interface TextFormatResult {
  readonly message: ParsedMessage;
  readonly locations: LocationTable;
  /** `#` comments before the first token. */
  readonly headerComments: readonly HeaderComment[];
  /** Every bracketed payload, in source order. */
  readonly payloads: readonly OptionPayload[];
  /** Non-fatal findings (payloads of unknown types). */
  readonly warnings: readonly Diagnostic[];
}

interface Located {
  readonly self: SourceLocation;
  /** Field name -> occurrences, created on the first field. */
  fields?: Record<string, SourceLocation[]>;
}

/**
 * Where each parsed message and field occurrence was written, keyed by the
 * message object itself.
 *
 * - A message's own location is the field name that introduced it (`node` in
 *   `node {`), the `{` of a list entry, the `[` of a bracketed payload, or 1:1
 *   for the root.
 * - Field occurrences are keyed by the field's name in the message: the proto
 *   name, or for an extension the protobufjs key `.pkg.Type.ext`. Entry `i`
 *   of a repeated field is its i-th occurrence (the field name, or the element
 *   inside `[…]`); map fields list their entries in source order.
 * - An expanded Any records `type_url` and `value` at its `[`.
 */
export class LocationTable {
  // A Map, not a WeakMap: the table lives exactly as long as the document
  // holding both, and WeakMap bookkeeping dominated parse time on big inputs.
  readonly #byMessage = new Map<object, Located>();

  addMessage(message: object, at: SourceLocation): void {
    this.#byMessage.set(message, { self: at });
  }

  addField(message: object, field: string, at: SourceLocation): void {
    const entry = this.#byMessage.get(message);
    if (!entry) return;
    const fields = (entry.fields ??= Object.create(null) as Record<string, SourceLocation[]>);
    (fields[field] ??= []).push(at);
  }

  /** The field occurrence (entry `index`, default 0), falling back to the message's own location. */
  locate(message: object, field?: string, index?: number): SourceLocation | undefined {
    const entry = this.#byMessage.get(message);
    if (!entry || field === undefined) return entry?.self;
    return entry.fields?.[field]?.[index ?? 0] ?? entry.self;
  }

  /** Every recorded occurrence of a field, in source order. */
  occurrences(message: object, field: string): readonly SourceLocation[] {
    return this.#byMessage.get(message)?.fields?.[field] ?? [];
  }
}

/**
 * Parses `text` as a message of `type`. Throws a GraphError (located, with
 * what was expected and what was found) on the first error.
 */
export function parseTextFormat(text: string, type: protobuf.Type, opts: TextFormatOptions): TextFormatResult {
  const lexer = new Lexer(text, opts.file);
  const parser = new Parser(lexer, opts.schema, opts.maxDepth ?? 100);
  try {
    const message = parser.parseRoot(type);
    return { message, locations: parser.locations, headerComments: lexer.headerComments, payloads: parser.payloads, warnings: parser.warnings };
  } catch (e) {
    if (e instanceof GraphError) throw e;
    // Defensive: callers rely on only ever seeing located GraphErrors.
    throw new GraphError([{ message: `internal error while parsing: ${e instanceof Error ? e.message : String(e)}`, location: lexer.here() }]);
  }
}

const ANY_TYPE = ".google.protobuf.Any";

const I32: readonly [bigint, bigint] = [-(2n ** 31n), 2n ** 31n - 1n];
const U32: readonly [bigint, bigint] = [0n, 2n ** 32n - 1n];
const I64: readonly [bigint, bigint] = [-(2n ** 63n), 2n ** 63n - 1n];
const U64: readonly [bigint, bigint] = [0n, 2n ** 64n - 1n];
const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  int32: I32, sint32: I32, sfixed32: I32, uint32: U32, fixed32: U32,
  int64: I64, sint64: I64, sfixed64: I64, uint64: U64, fixed64: U64,
};
// The schema reads 64-bit fields as JS numbers; beyond this they would be silently rounded.
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const TRUE_WORDS = new Set(["true", "True", "t"]);
const FALSE_WORDS = new Set(["false", "False", "f"]);

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** A message body being read: its closing token and what opened it, for messages. */
interface Opened {
  readonly close: string;
  readonly what: string;
  readonly line: number;
  readonly column: number;
}

/** Per-body bookkeeping: non-repeated fields already given, and an Any's expansion. */
interface BodyState {
  readonly seen: Map<string, Token>;
  anyAt?: Token;
}

const typeName = (t: protobuf.ReflectionObject) => t.fullName.replace(/^\./, "");

class Parser {
  readonly locations = new LocationTable();
  readonly payloads: OptionPayload[] = [];
  readonly warnings: Diagnostic[] = [];
  private depth = 0;

  constructor(
    private readonly lx: Lexer,
    private readonly schema: Schema,
    private readonly maxDepth: number,
  ) {}

  parseRoot(type: protobuf.Type): ParsedMessage {
    const msg = type.create() as ParsedMessage;
    const at = this.lx.location(1, 1);
    this.locations.addMessage(msg, at);
    this.fields(msg, type, undefined, at);
    return msg;
  }

  // ---- helpers ----

  private loc(t: Token): SourceLocation {
    return this.lx.location(t.line, t.column);
  }

  private fail(t: Token | SourceLocation, message: string): never {
    this.lx.fail(t.line, t.column, message);
  }

  private isPunct(t: Token, p: string): boolean {
    return t.kind === "punct" && t.text === p;
  }

  private isOpen(t: Token): boolean {
    return t.kind === "punct" && (t.text === "{" || t.text === "<");
  }

  /** One optional `,` or `;` may follow any field. */
  private separator(): void {
    const s = this.lx.peek();
    if (s.kind === "punct" && (s.text === "," || s.text === ";")) this.lx.next();
  }

  private lookup<T>(find: () => T | undefined): T | undefined {
    try {
      return find();
    } catch {
      return undefined; // protobufjs lookups of odd names must not escape as non-GraphErrors
    }
  }

  /** Consumes the `{`/`<` that opens a message at `at`, enforcing the nesting limit. */
  private enter(what: string, at: Token): Opened {
    const t = this.lx.next();
    if (++this.depth > this.maxDepth) this.fail(t, `messages nested too deeply: expected at most ${this.maxDepth} levels`);
    return { close: t.text === "{" ? "}" : ">", what, line: at.line, column: at.column };
  }

  /** True when `t` ends the body; throws on end of file or a mismatched closer. */
  private closes(t: Token, open: Opened | undefined): boolean {
    if (t.kind === "eof") {
      if (!open) return true;
      this.fail(t, `unexpected end of file: expected "${open.close}" to close ${open.what} opened at ${open.line}:${open.column}`);
    }
    if (t.kind === "punct" && (t.text === "}" || t.text === ">")) {
      if (open?.close === t.text) return true;
      this.fail(t, open ? `expected "${open.close}" to close ${open.what} opened at ${open.line}:${open.column}, found "${t.text}"` : `expected a field name, found "${t.text}"`);
    }
    return false;
  }

  // ---- messages and fields ----

  private message(type: protobuf.Type, what: string, at: Token): ParsedMessage {
    const open = this.enter(what, at);
    const msg = type.create() as ParsedMessage;
    const self = this.loc(at);
    this.locations.addMessage(msg, self);
    this.fields(msg, type, open, self);
    this.depth--;
    return msg;
  }

  /** Reads fields into `msg` up to the closer of `open` (end of file for the root). */
  private fields(msg: ParsedMessage, type: protobuf.Type, open: Opened | undefined, self: SourceLocation): void {
    const state: BodyState = { seen: new Map() };
    for (;;) {
      const t = this.lx.next();
      if (this.closes(t, open)) break;
      if (t.kind === "ident") this.namedField(msg, type, t, state);
      else if (this.isPunct(t, "[")) this.bracketField(msg, type, t, state);
      else this.fail(t, `expected a field name${open ? ` or "${open.close}"` : ""}, found ${describeToken(t)}`);
      this.separator();
    }
    for (const f of type.fieldsArray) {
      if (f.required && !Object.hasOwn(msg, f.name)) this.fail(self, `missing required field "${f.name}" in ${typeName(type)}`);
    }
  }

  private namedField(msg: ParsedMessage, type: protobuf.Type, t: Token, state: BodyState): void {
    const field = this.fieldNamed(type, t.text);
    if (!field) this.fail(t, unknownField(type, t.text));
    if (state.anyAt) this.fail(t, `expected "}" after the expanded Any value at ${state.anyAt.line}:${state.anyAt.column} (an Any holds one value), found field "${clip(t.text)}"`);
    this.fieldValue(msg, field, t, `"${clip(t.text)}"`, state);
  }

  private fieldNamed(type: protobuf.Type, name: string): protobuf.Field | undefined {
    if (Object.hasOwn(type.fields, name)) return type.fields[name];
    // A group is written with its type's (capitalized) name.
    return type.fieldsArray.find((f) => f.delimited && f.resolvedType?.name === name);
  }

  /** After a field name: `[:] value`, `[:] {…}` or `[:] [list]`. Returns the values stored. */
  private fieldValue(msg: ParsedMessage, field: protobuf.Field, at: Token, label: string, state: BodyState): unknown[] {
    this.checkOnce(field, at, label, state);
    if (field instanceof protobuf.MapField) {
      this.mapField(msg, field, at, label);
      return [];
    }
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    const colon = this.isPunct(this.lx.peek(), ":") ? this.lx.next() : undefined;
    const p = this.lx.peek();
    if (this.isPunct(p, "[")) {
      if (!field.repeated) this.fail(p, `expected a single value for non-repeated field ${label}, found "[" (list syntax is only for repeated fields)`);
      if (!sub && !colon) this.fail(p, `expected ":" after field name ${label}, found "["`);
      const values: unknown[] = [];
      this.list(label, (el) => {
        if (sub && !this.isOpen(el)) this.fail(el, `expected "{" or "<" to start an entry of ${label}, found ${describeToken(el)}`);
        const v = sub ? this.message(sub, label, el) : this.scalar(field, label);
        values.push(v);
        this.store(msg, field, v, el);
      });
      return values;
    }
    let v: unknown;
    if (sub) {
      if (!this.isOpen(p)) {
        this.fail(p, colon ? `expected "{" or "<" after ${label}:, found ${describeToken(p)}` : `expected ":" or "{" after field name ${label}, found ${describeToken(p)}`);
      }
      v = this.message(sub, label, at);
    } else {
      if (!colon) this.fail(p, `expected ":" after field name ${label}, found ${describeToken(p)}`);
      v = this.scalar(field, label);
    }
    this.store(msg, field, v, at);
    return [v];
  }

  /** A non-repeated field may appear once, and only one member of a oneof. */
  private checkOnce(field: protobuf.Field, at: Token, label: string, state: BodyState): void {
    if (field.repeated || field instanceof protobuf.MapField) return;
    const prev = state.seen.get(field.name);
    if (prev) this.fail(at, `non-repeated field ${label} is given more than once: expected one value, already given at ${prev.line}:${prev.column}`);
    const oneof = field.partOf;
    if (oneof && oneof.fieldsArray.length > 1) {
      for (const other of oneof.fieldsArray) {
        const o = state.seen.get(other.name);
        if (o) this.fail(at, `field ${label} and field "${other.name}" (at ${o.line}:${o.column}) belong to oneof "${oneof.name}": expected only one of them`);
      }
    }
    state.seen.set(field.name, at);
  }

  private store(msg: ParsedMessage, field: protobuf.Field, v: unknown, at: Token): void {
    if (field.repeated) {
      // create() gives repeated fields an own array; the prototype's is a frozen shared one.
      let list = msg[field.name];
      if (!Array.isArray(list) || !Object.hasOwn(msg, field.name)) msg[field.name] = list = [];
      (list as unknown[]).push(v);
    } else {
      msg[field.name] = v;
    }
    this.locations.addField(msg, field.name, this.loc(at));
  }

  /** `[ a, b, … ]` (possibly empty); `element` reads one entry starting at the token it is given. */
  private list(label: string, element: (first: Token) => void): void {
    const open = this.lx.next();
    if (this.isPunct(this.lx.peek(), "]")) {
      this.lx.next();
      return;
    }
    for (;;) {
      element(this.lx.peek());
      const t = this.lx.next();
      if (this.isPunct(t, "]")) return;
      if (this.isPunct(t, ",")) continue;
      this.fail(t, t.kind === "eof"
        ? `unexpected end of file: expected "]" to close the list of ${label} opened at ${open.line}:${open.column}`
        : `expected "," or "]" in the list of ${label}, found ${describeToken(t)}`);
    }
  }

  // ---- bracketed names: extensions and Any expansions ----

  private bracketField(msg: ParsedMessage, type: protobuf.Type, open: Token, state: BodyState): void {
    const name = this.bracketName(open);
    const label = `"[${clip(name)}]"`;
    if (name.includes("/")) return this.anyExpansion(msg, type, open, name, label, state);
    if (state.anyAt) this.fail(open, `expected "}" after the expanded Any value at ${state.anyAt.line}:${state.anyAt.column} (an Any holds one value), found ${label}`);
    const ext = this.lookup(() => this.schema.findExtension(name));
    if (!ext) {
      if (!type.extensions?.length) this.fail(open, `expected a field name, found extension ${label}: ${typeName(type)} has no extensions`);
      if (this.lookup(() => this.schema.findType(name))) {
        this.fail(open, `${label} names a message type, not an extension: expected "[${name}.ext]" (or "[type.googleapis.com/${name}]" inside an Any field)`);
      }
      const rawText = this.skipFieldValue(label, open);
      this.unknownPayload("extension", name.endsWith(".ext") ? name.slice(0, -4) : name, msg, rawText, open);
      return;
    }
    // protobufjs adds each extension to the extended type as a field named by its full name.
    const field = Object.hasOwn(type.fields, ext.fullName) ? type.fields[ext.fullName] : undefined;
    if (!field) {
      const extendee = ext.extensionField?.parent ? typeName(ext.extensionField.parent) : ext.extend;
      this.fail(open, `extension ${label} extends ${extendee}, not ${typeName(type)}: expected an extension of ${typeName(type)}`);
    }
    const values = this.fieldValue(msg, field, open, label, state);
    if (field.resolvedType instanceof protobuf.Type) {
      for (const v of values) {
        this.payloads.push({ via: "extension", typeName: typeName(field.resolvedType), container: msg, message: v as ParsedMessage, location: this.loc(open) });
      }
    }
  }

  /** `ident (("." | "/") ident)* "]"`, whitespace and comments allowed anywhere; at most one "/". */
  private bracketName(open: Token): string {
    let name = "";
    let slash = false;
    for (;;) {
      const t = this.lx.next();
      if (t.kind !== "ident") {
        this.fail(t, t.kind === "eof"
          ? `unexpected end of file: expected "]" to close "[" opened at ${open.line}:${open.column}`
          : `expected a name inside "[…]", found ${describeToken(t)}`);
      }
      name += t.text;
      const sep = this.lx.next();
      if (this.isPunct(sep, "]")) return name;
      if (this.isPunct(sep, ".") || (!slash && this.isPunct(sep, "/"))) {
        slash ||= sep.text === "/";
        name += sep.text;
        continue;
      }
      this.fail(sep, sep.kind === "eof"
        ? `unexpected end of file: expected "]" to close "[" opened at ${open.line}:${open.column}`
        : `expected ${slash ? '"."' : '".", "/"'} or "]" after "[${clip(name)}", found ${describeToken(sep)}`);
    }
  }

  private anyExpansion(msg: ParsedMessage, type: protobuf.Type, open: Token, url: string, label: string, state: BodyState): void {
    if (type.fullName !== ANY_TYPE) {
      this.fail(open, `expected a field name or "[extension]", found the type URL ${label}: expanded values belong only inside a google.protobuf.Any field, and this is ${typeName(type)}`);
    }
    const prev = state.anyAt ?? state.seen.get("type_url") ?? state.seen.get("value");
    if (prev) this.fail(open, `expected "}" (an Any holds one value, already given at ${prev.line}:${prev.column}), found ${label}`);
    state.anyAt = open;
    if (this.isPunct(this.lx.peek(), ":")) this.lx.next();
    const p = this.lx.peek();
    if (!this.isOpen(p)) this.fail(p, `expected "{" or "<" after ${label}, found ${describeToken(p)}`);
    const name = url.slice(url.lastIndexOf("/") + 1);
    const at = this.loc(open);
    msg.type_url = url;
    this.locations.addField(msg, "type_url", at);
    this.locations.addField(msg, "value", at);
    const payloadType = this.lookup(() => this.schema.findType(name));
    if (!payloadType) {
      const rawText = this.skipMessage(label, open);
      this.unknownPayload("any", name, msg, rawText, open);
      return;
    }
    const value = this.message(payloadType, label, open);
    msg.value = payloadType.encode(value).finish();
    this.payloads.push({ via: "any", typeName: typeName(payloadType), container: msg, message: value, location: at });
  }

  private unknownPayload(via: OptionPayload["via"], name: string, container: object, rawText: string, at: Token): void {
    const location = this.loc(at);
    this.payloads.push({ via, typeName: name, container, rawText, location });
    this.warnings.push({ message: `unknown options type '${name}' kept unparsed: no loaded .proto file defines it`, location });
  }

  // ---- schema-less skipping of unknown payloads (still fully checked for syntax) ----

  /** After a field name: `[:] value`; returns the value's source text. */
  private skipFieldValue(label: string, at: Token): string {
    const colon = this.isPunct(this.lx.peek(), ":") ? this.lx.next() : undefined;
    const p = this.lx.peek();
    if (this.isOpen(p)) this.skipMessage(label, at);
    else if (this.isPunct(p, "[")) this.list(label, (el) => (this.isOpen(el) ? this.skipMessage(label, el) : this.skipScalar(label)));
    else if (!colon) this.fail(p, `expected ":" or "{" after field name ${label}, found ${describeToken(p)}`);
    else this.skipScalar(label);
    return this.lx.text.slice(p.start, this.lx.lastEnd);
  }

  /** A `{…}`/`<…>` body without a schema; returns its source text, braces included. */
  private skipMessage(label: string, at: Token): string {
    const start = this.lx.peek().start;
    const open = this.enter(label, at);
    for (;;) {
      const t = this.lx.next();
      if (this.closes(t, open)) break;
      if (t.kind === "ident") this.skipFieldValue(`"${clip(t.text)}"`, t);
      else if (this.isPunct(t, "[")) this.skipFieldValue(`"[${clip(this.bracketName(t))}]"`, t);
      else this.fail(t, `expected a field name or "${open.close}", found ${describeToken(t)}`);
      this.separator();
    }
    this.depth--;
    return this.lx.text.slice(start, this.lx.lastEnd);
  }

  private skipScalar(label: string): void {
    const t = this.lx.next();
    if (t.kind === "string") {
      while (this.lx.peek().kind === "string") this.lx.next();
      return;
    }
    const v = this.isPunct(t, "-") ? this.lx.next() : t;
    if (v.kind === "int" || v.kind === "float" || v.kind === "ident") return;
    this.fail(v, v === t ? `expected a value for ${label}, found ${describeToken(v)}` : `expected a number after "-", found ${describeToken(v)}`);
  }

  // ---- maps: repeated `{ key: … value: … }` entries, last key wins ----

  private mapField(msg: ParsedMessage, field: protobuf.MapField, at: Token, label: string): void {
    const colon = this.isPunct(this.lx.peek(), ":") ? this.lx.next() : undefined;
    const p = this.lx.peek();
    if (this.isPunct(p, "[")) {
      this.list(label, (el) => {
        if (!this.isOpen(el)) this.fail(el, `expected "{" or "<" to start an entry of ${label}, found ${describeToken(el)}`);
        this.mapEntry(msg, field, label, el);
      });
    } else if (this.isOpen(p)) {
      this.mapEntry(msg, field, label, at);
    } else {
      this.fail(p, colon ? `expected "{" or "<" after ${label}:, found ${describeToken(p)}` : `expected ":" or "{" after field name ${label}, found ${describeToken(p)}`);
    }
  }

  private mapEntry(msg: ParsedMessage, field: protobuf.MapField, label: string, at: Token): void {
    const open = this.enter(label, at);
    const valueType = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    const valueEnum = field.resolvedType instanceof protobuf.Enum ? field.resolvedType : undefined;
    let key: unknown;
    let value: unknown;
    const given = new Map<string, Token>();
    for (;;) {
      const t = this.lx.next();
      if (this.closes(t, open)) break;
      if (t.kind !== "ident" || (t.text !== "key" && t.text !== "value")) {
        this.fail(t, `expected "key", "value" or "${open.close}" in an entry of ${label}, found ${describeToken(t)}`);
      }
      const prev = given.get(t.text);
      if (prev) this.fail(t, `"${t.text}" is given more than once in an entry of ${label}: expected one, already given at ${prev.line}:${prev.column}`);
      given.set(t.text, t);
      const colon = this.isPunct(this.lx.peek(), ":") ? this.lx.next() : undefined;
      const p = this.lx.peek();
      if (t.text === "value" && valueType) {
        if (!this.isOpen(p)) this.fail(p, `expected "{" or "<" after "value" in an entry of ${label}, found ${describeToken(p)}`);
        value = this.message(valueType, `"value"`, t);
      } else {
        if (!colon) this.fail(p, `expected ":" after "${t.text}" in an entry of ${label}, found ${describeToken(p)}`);
        if (t.text === "key") key = this.scalarOf(field.keyType, undefined, `the key of ${label}`);
        else value = this.scalarOf(field.type, valueEnum, `the value of ${label}`);
      }
      this.separator();
    }
    this.depth--;
    if (value === undefined) {
      if (valueType) {
        value = valueType.create();
        this.locations.addMessage(value as object, this.loc(at));
      } else value = field.typeDefault;
    }
    const k = String(key ?? (field.keyType === "string" ? "" : field.keyType === "bool" ? false : 0));
    let map = msg[field.name];
    if (typeof map !== "object" || map === null || !Object.hasOwn(msg, field.name)) msg[field.name] = map = {};
    // defineProperty: a key such as "__proto__" must become data, never a prototype change.
    Object.defineProperty(map, k, { value, enumerable: true, writable: true, configurable: true });
    this.locations.addField(msg, field.name, this.loc(at));
  }

  // ---- scalars ----

  private scalar(field: protobuf.Field, label: string): unknown {
    return this.scalarOf(field.type, field.resolvedType instanceof protobuf.Enum ? field.resolvedType : undefined, label);
  }

  private scalarOf(type: string, en: protobuf.Enum | undefined, label: string): unknown {
    const t = this.lx.next();
    if (type === "string" || type === "bytes") {
      if (t.kind !== "string") this.fail(t, `expected a string for ${label}, found ${describeToken(t)}`);
      // Adjacent literals concatenate ("a" 'b').
      const parts = [t.value!];
      while (this.lx.peek().kind === "string") parts.push(this.lx.next().value!);
      return type === "bytes" ? toBytes(parts) : this.toText(parts, t, label);
    }
    const neg = this.isPunct(t, "-");
    const v = neg ? this.lx.next() : t;
    if (neg && v.kind !== "int" && v.kind !== "float" && v.kind !== "ident") {
      this.fail(v, `expected a number after "-", found ${describeToken(v)}`);
    }
    if (en) return this.enumValue(en, t, v, neg, label);
    if (type === "bool") return this.boolValue(t, v, neg, label);
    if (type === "float" || type === "double") return this.floatValue(type, v, neg, label);
    if (Object.hasOwn(INT_RANGES, type)) return this.intValue(type, t, v, neg, label);
    this.fail(t, `field ${label} has type "${type}", which the text format parser cannot read`);
  }

  private toText(parts: (string | Uint8Array)[], first: Token, label: string): string {
    if (parts.every((p) => typeof p === "string")) return parts.join("");
    try {
      return utf8.decode(toBytes(parts));
    } catch {
      this.fail(first, `expected valid UTF-8 for string field ${label}, found escapes spelling invalid UTF-8 (use a bytes field for binary data)`);
    }
  }

  private intValue(type: string, first: Token, v: Token, neg: boolean, label: string): number {
    if (v.kind !== "int") this.fail(v, `expected an integer for ${label} (${type}), found ${describeToken(v)}`);
    const n = toBigInt(v.text, neg);
    const found = n ?? `${neg ? "-" : ""}${clip(v.text)}`;
    const [min, max] = INT_RANGES[type];
    if (neg && min === 0n && n !== 0n) this.fail(first, `expected a non-negative integer for unsigned field ${label} (${type}), found ${found}`);
    if (n === undefined || n < min || n > max) this.fail(first, `expected an integer from ${min} to ${max} for ${label} (${type}), found ${found}`);
    if (n > SAFE || n < -SAFE) this.fail(first, `expected an integer within ±${SAFE} for ${label} (${type}; 64-bit values are read as JavaScript numbers), found ${n}`);
    return Number(n);
  }

  private floatValue(type: string, v: Token, neg: boolean, label: string): number {
    let n: number;
    if (v.kind === "float") {
      n = Number(v.text.replace(/[fF]$/, ""));
    } else if (v.kind === "int") {
      // Integers are fine in float fields, but only decimal ones (as protobuf's own parser).
      if (/^0[0-9xX]/.test(v.text)) this.fail(v, `expected a decimal number for ${label} (${type}), found "${v.text}"`);
      n = Number(v.text);
    } else if (v.kind === "ident" && /^(inf|infinity)$/i.test(v.text)) {
      n = Infinity;
    } else if (v.kind === "ident" && /^nan$/i.test(v.text)) {
      n = NaN;
    } else {
      this.fail(v, `expected a number for ${label} (${type}), found ${describeToken(v)}`);
    }
    return neg ? -n : n;
  }

  private boolValue(first: Token, v: Token, neg: boolean, label: string): boolean {
    if (!neg) {
      if (v.kind === "ident" && TRUE_WORDS.has(v.text)) return true;
      if (v.kind === "ident" && FALSE_WORDS.has(v.text)) return false;
      if (v.kind === "int") {
        const n = toBigInt(v.text, false);
        if (n === 0n || n === 1n) return n === 1n;
      }
    }
    this.fail(first, `expected true or false for ${label}, found ${neg ? '"-"' : describeToken(v)}`);
  }

  private enumValue(en: protobuf.Enum, first: Token, v: Token, neg: boolean, label: string): number {
    const names = Object.keys(en.values);
    const expected = names.length <= 12 ? ` (expected one of ${names.join(", ")})` : "";
    if (v.kind === "ident" && !neg) {
      if (Object.hasOwn(en.values, v.text)) return en.values[v.text];
      this.fail(v, `unknown value "${clip(v.text)}" for ${label} of enum ${typeName(en)}${expected}`);
    }
    if (v.kind === "int") {
      const n = toBigInt(v.text, neg);
      if (n !== undefined && n >= I32[0] && n <= I32[1] && Object.hasOwn(en.valuesById, Number(n))) return Number(n);
      this.fail(first, `unknown number ${n ?? clip(v.text)} for ${label} of enum ${typeName(en)}${expected}`);
    }
    this.fail(first, `expected an enum value name or number for ${label} of enum ${typeName(en)}, found ${neg ? '"-"' : describeToken(v)}`);
  }
}

/** An integer literal's value, or undefined when it is too long for any 64-bit type. */
function toBigInt(text: string, neg: boolean): bigint | undefined {
  const hex = text[1] === "x" || text[1] === "X";
  const octal = !hex && text.length > 1 && text[0] === "0"; // BigInt() would read "017" as decimal
  const digits = (hex ? text.slice(2) : text).replace(/^0+/, "");
  // Parsing a huge literal in BigInt is superlinear; 24 digits exceed 2^64 in any base.
  if (digits.length > 24) return undefined;
  const n = digits === "" ? 0n : BigInt(hex ? `0x${digits}` : octal ? `0o${digits}` : digits);
  return neg ? -n : n;
}

function toBytes(parts: readonly (string | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((p) => (typeof p === "string" ? encoder.encode(p) : p));
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The "unknown field" message: a close match when there is one, else what the message accepts, briefly. */
function unknownField(type: protobuf.Type, name: string): string {
  const names = type.fieldsArray.map((f) => f.name).filter((n) => !n.startsWith("."));
  const base = `unknown field "${clip(name)}" in ${typeName(type)}`;
  const guess = closest(name, names);
  if (guess) return `${base} (did you mean "${guess}"?)`;
  if (type.extensions?.length) return `${base} (expected a field of ${typeName(type)} or an extension such as "[package.XOptions.ext] { … }")`;
  if (names.length <= 6) return `${base} (expected ${names.length ? `one of ${names.map((n) => `"${n}"`).join(", ")}` : "no fields"})`;
  return base;
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 4)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** Levenshtein distance counting an adjacent transposition as one edit. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 4;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0].push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
      rows[i].push(d);
    }
  }
  return rows[a.length][b.length];
}
