/**
 * Tokenizer for the protobuf text format. It runs on demand (one token of
 * lookahead), never backtracks, and so is linear in the input. Every error is
 * a GraphError located at the offending character.
 */
import { GraphError, type SourceLocation } from "../diagnostics.js";

/** `other` is a single character that is no part of the grammar, such as `=`. */
export type TokenKind = "ident" | "int" | "float" | "string" | "punct" | "other" | "eof";

export interface Token {
  readonly kind: TokenKind;
  /** The source text; for strings the whole literal, quotes included. */
  readonly text: string;
  /** Offsets into the input: [start, end). */
  readonly start: number;
  readonly end: number;
  /** 1-based; columns count UTF-16 code units from the line start. */
  readonly line: number;
  readonly column: number;
  /**
   * For strings, the contents: the plain slice when there was no escape
   * (the common case, no copying), else the exact bytes the escapes spell.
   */
  readonly value?: string | Uint8Array;
}

/** A `#` comment seen before the first token. */
export interface HeaderComment {
  /** Everything after the `#`, untrimmed. */
  readonly text: string;
  readonly line: number;
  /** Column of the `#`. */
  readonly column: number;
}

const PUNCT = new Set(["{", "}", "<", ">", "[", "]", ":", ",", ";", "/", "-", "."]);

const isIdentStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
const isDigit = (c: number) => c >= 48 && c <= 57;
const isIdentPart = (c: number) => isIdentStart(c) || isDigit(c);
const isHex = (c: number) => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);

const SIMPLE_ESCAPES: Record<string, number> = {
  a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "?": 63, "\\": 92, "'": 39, '"': 34,
};

/** Shortens what an error message quotes from the input. */
export function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** How a token reads in "found …" messages. */
export function describeToken(t: Token): string {
  if (t.kind === "eof") return "end of file";
  if (t.kind === "other") {
    const c = t.text.charCodeAt(0);
    return c < 32 || c === 127 || (c >= 0xd800 && c <= 0xdfff && t.text.length === 1) ? `character U+${c.toString(16).toUpperCase().padStart(4, "0")}` : `"${t.text}"`;
  }
  return t.kind === "string" ? `string ${clip(t.text)}` : `"${clip(t.text)}"`;
}

export class Lexer {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  private peeked: Token | undefined;
  private started = false;
  /** End offset of the last token handed out by next(). */
  lastEnd = 0;
  readonly headerComments: HeaderComment[] = [];

  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    // A UTF-8 BOM is not content; columns still start at 1 after it.
    if (text.charCodeAt(0) === 0xfeff) this.pos = this.lineStart = 1;
  }

  next(): Token {
    const t = this.peeked ?? this.scan();
    this.peeked = undefined;
    this.lastEnd = t.end;
    return t;
  }

  peek(): Token {
    return (this.peeked ??= this.scan());
  }

  /** Where scanning has got to: the start of the next token, or just past the last one. */
  here(): SourceLocation {
    return this.location(this.line, this.pos - this.lineStart + 1);
  }

  location(line: number, column: number): SourceLocation {
    return { file: this.file, line, column };
  }

  fail(line: number, column: number, message: string): never {
    throw new GraphError([{ message, location: this.location(line, column) }]);
  }

  private scan(): Token {
    const { text } = this;
    const len = text.length;
    let pos = this.pos;
    // Whitespace and comments.
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 10) {
        pos++;
        this.line++;
        this.lineStart = pos;
      } else if (c === 32 || c === 9 || c === 13 || c === 11 || c === 12) {
        pos++;
      } else if (c === 35) {
        let end = text.indexOf("\n", pos);
        if (end < 0) end = len;
        if (!this.started) {
          // A CRLF file's comment ends in "\r", which is no part of its text.
          const textEnd = text.charCodeAt(end - 1) === 13 ? end - 1 : end;
          this.headerComments.push({ text: text.slice(pos + 1, Math.max(pos + 1, textEnd)), line: this.line, column: pos - this.lineStart + 1 });
        }
        pos = end;
      } else break;
    }
    this.pos = pos;
    const line = this.line;
    const column = pos - this.lineStart + 1;
    if (pos >= len) return { kind: "eof", text: "", start: pos, end: pos, line, column };
    this.started = true;
    const c = text.charCodeAt(pos);
    if (isIdentStart(c)) {
      let end = pos + 1;
      while (isIdentPart(text.charCodeAt(end))) end++;
      return this.token("ident", pos, end, line, column);
    }
    if (isDigit(c) || (c === 46 && isDigit(text.charCodeAt(pos + 1)))) return this.number(pos, line, column);
    if (c === 34 || c === 39) return this.string(pos, c, line, column);
    if (PUNCT.has(text[pos])) return this.token("punct", pos, pos + 1, line, column);
    // Any other character becomes a token of its own, so the parser can say
    // what it expected there (`expected ":" or "{" after field name "node", found "="`).
    return this.token("other", pos, pos + (text.codePointAt(pos)! > 0xffff ? 2 : 1), line, column);
  }

  private token(kind: TokenKind, start: number, end: number, line: number, column: number, value?: string | Uint8Array): Token {
    this.pos = end;
    return { kind, text: this.text.slice(start, end), start, end, line, column, value };
  }

  private number(start: number, line: number, column: number): Token {
    const { text } = this;
    let p = start;
    let kind: TokenKind = "int";
    const c0 = text.charCodeAt(p);
    const c1 = text.charCodeAt(p + 1);
    if (c0 === 48 && (c1 === 120 || c1 === 88)) {
      p += 2;
      const digits = p;
      while (isHex(text.charCodeAt(p))) p++;
      if (p === digits) this.fail(line, column, `expected hex digits after "${clip(text.slice(start, p))}", found ${this.foundAt(p)}`);
    } else if (c0 === 48 && isDigit(c1)) {
      // A leading zero means octal, as in C.
      while (isDigit(text.charCodeAt(p))) p++;
      const bad = /[89]/.exec(text.slice(start, p));
      if (bad) this.fail(line, column + bad.index, `invalid digit "${bad[0]}" in octal number "${clip(text.slice(start, p))}"`);
    } else {
      while (isDigit(text.charCodeAt(p))) p++;
      if (text.charCodeAt(p) === 46) {
        kind = "float";
        p++;
        while (isDigit(text.charCodeAt(p))) p++;
      }
      const e = text.charCodeAt(p);
      if (e === 101 || e === 69) {
        kind = "float";
        p++;
        const sign = text.charCodeAt(p);
        if (sign === 43 || sign === 45) p++;
        const digits = p;
        while (isDigit(text.charCodeAt(p))) p++;
        if (p === digits) this.fail(line, column, `expected exponent digits in number "${clip(text.slice(start, p))}", found ${this.foundAt(p)}`);
      }
      const f = text.charCodeAt(p);
      if (f === 102 || f === 70) {
        kind = "float";
        p++;
      }
    }
    // `10bar` or `1.5.3`: the text format requires a separator after a number.
    const next = text.charCodeAt(p);
    if (isIdentPart(next) || next === 46) {
      let end = p + 1;
      while (isIdentPart(text.charCodeAt(end)) || text.charCodeAt(end) === 46) end++;
      this.fail(line, column + (p - start), `expected whitespace or punctuation after number "${clip(text.slice(start, p))}", found "${clip(text.slice(p, end))}"`);
    }
    return this.token(kind, start, p, line, column);
  }

  /** `found …` for a character position inside a token being scanned. */
  private foundAt(p: number): string {
    if (p >= this.text.length) return "end of file";
    const c = this.text.charCodeAt(p);
    if (c === 10 || c === 13) return "end of line";
    if (c < 32 || c === 127 || (c >= 0xd800 && c <= 0xdfff)) return `character U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
    return c === 34 ? `'"'` : `"${this.text[p]}"`;
  }

  private string(start: number, quote: number, line: number, column: number): Token {
    const { text } = this;
    const q = text[start];
    let p = start + 1;
    let escaped = false;
    for (;;) {
      const c = text.charCodeAt(p);
      if (c === quote) break;
      // A raw line break may not appear in a literal; neither may a backslash before one.
      if (Number.isNaN(c) || c === 10 || c === 13 || (c === 92 && (p + 1 >= text.length || text.charCodeAt(p + 1) === 10 || text.charCodeAt(p + 1) === 13))) {
        const at = c === 92 ? p + 1 : p;
        this.fail(line, column, `unterminated string: expected closing ${q} before ${at >= text.length ? "end of file" : "end of line"}`);
      }
      if (c === 92) {
        escaped = true;
        p += 2;
      } else p++;
    }
    const value = escaped ? this.unescape(start + 1, p, line, column - start) : text.slice(start + 1, p);
    return this.token("string", start, p + 1, line, column, value);
  }

  /** Decodes a literal's contents [from, to) with escapes into bytes; `colBase + offset` is a column. */
  private unescape(from: number, to: number, line: number, colBase: number): Uint8Array {
    const { text } = this;
    const out: number[] = [];
    let p = from;
    while (p < to) {
      const c = text.charCodeAt(p);
      if (c !== 92) {
        const cp = text.codePointAt(p)!;
        pushUtf8(out, cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
        p += cp > 0xffff ? 2 : 1;
        continue;
      }
      const at = p; // the backslash, for error columns
      const e = text[p + 1];
      p += 2;
      if (Object.hasOwn(SIMPLE_ESCAPES, e)) {
        out.push(SIMPLE_ESCAPES[e]);
      } else if (e >= "0" && e <= "7") {
        let v = e.charCodeAt(0) - 48;
        for (let n = 0; n < 2 && p < to && text[p] >= "0" && text[p] <= "7"; n++) v = v * 8 + text.charCodeAt(p++) - 48;
        if (v > 255) this.fail(line, colBase + at, `octal escape "${text.slice(at, p)}" is out of range: expected at most \\377`);
        out.push(v);
      } else if (e === "x" || e === "X") {
        const digits = p;
        while (p < to && p - digits < 2 && isHex(text.charCodeAt(p))) p++;
        if (p === digits) this.fail(line, colBase + at, `expected hex digits after "\\${e}", found ${this.foundAt(p)}`);
        out.push(parseInt(text.slice(digits, p), 16));
      } else if (e === "u" || e === "U") {
        const n = e === "u" ? 4 : 8;
        let cp = this.hexDigits(p, to, n, line, colBase + at, e);
        p += n;
        // A UTF-16 surrogate pair may be spelled as two \u escapes.
        if (cp >= 0xd800 && cp <= 0xdbff && e === "u" && text.startsWith("\\u", p) && p + 6 <= to) {
          const low = this.hexDigits(p + 2, to, 4, line, colBase + p, "u");
          if (low >= 0xdc00 && low <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            p += 6;
          }
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
          this.fail(line, colBase + at, `invalid Unicode escape "${text.slice(at, p)}": expected a code point up to \\U0010FFFF that is not a lone surrogate`);
        }
        pushUtf8(out, cp);
      } else {
        this.fail(line, colBase + at, `unknown escape sequence "\\${e}": expected one of \\a \\b \\f \\n \\r \\t \\v \\? \\\\ \\' \\" \\NNN \\xHH \\uHHHH \\UHHHHHHHH`);
      }
    }
    return Uint8Array.from(out);
  }

  private hexDigits(p: number, to: number, n: number, line: number, column: number, e: string): number {
    const digits = this.text.slice(p, Math.min(p + n, to));
    if (digits.length < n || !/^[0-9a-fA-F]+$/.test(digits)) {
      this.fail(line, column, `expected ${n} hex digits after "\\${e}", found "${digits}"`);
    }
    return parseInt(digits, 16);
  }
}

function pushUtf8(out: number[], cp: number): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
}
