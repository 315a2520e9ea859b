/**
 * Server-sent events read from a fetch body (EventSource cannot POST or send
 * an Authorization header). Follows the WHATWG parsing rules: lines end in
 * CRLF, LF or CR, even when a CR and its LF arrive in different chunks;
 * `data:` lines accumulate with "\n"; a blank line dispatches; comments and
 * unknown fields are skipped; an unterminated event at the end is dropped.
 */

export interface SseMessage {
  /** The `event:` field, "message" when the event has none. */
  readonly event: string;
  readonly data: string;
  /** The last `id:` seen so far (it persists across events), "" if none. */
  readonly id: string;
}

export class SseParser {
  private line = "";
  /** The previous chunk ended in CR: an LF starting the next one belongs to it. */
  private afterCR = false;
  private started = false;
  private event = "";
  private data: string[] = [];
  private id = "";

  /** Feeds decoded text; returns the events it completes. */
  push(text: string): SseMessage[] {
    const out: SseMessage[] = [];
    let i = 0;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    if (this.afterCR && text[i] === "\n") i++;
    this.afterCR = false;
    while (i < text.length) {
      const cr = text.indexOf("\r", i);
      const lf = text.indexOf("\n", i);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) {
        this.line += text.slice(i);
        break;
      }
      this.line += text.slice(i, end);
      i = end + 1;
      if (text[end] === "\r") {
        if (i === text.length) this.afterCR = true;
        else if (text[i] === "\n") i++;
      }
      const message = this.takeLine(this.line);
      this.line = "";
      if (message !== null) out.push(message);
    }
    return out;
  }

  private takeLine(line: string): SseMessage | null {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event": this.event = value; break;
      case "data": this.data.push(value); break;
      // An id with NUL is ignored, as the spec says.
      case "id": if (!value.includes("\0")) this.id = value; break;
      default: break; // `retry` only matters to EventSource's reconnection; others are ignored.
    }
    return null;
  }

  private dispatch(): SseMessage | null {
    const event = this.event;
    const data = this.data;
    this.event = "";
    this.data = [];
    if (data.length === 0) return null;
    return { event: event === "" ? "message" : event, data: data.join("\n"), id: this.id };
  }
}

/** The events of a response body, decoded as UTF-8 (characters split across chunks included). */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    finished = true;
    yield* parser.push(decoder.decode());
  } finally {
    // A consumer that stops early (an error event) closes the connection too.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
