import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readSse, SseParser, type SseMessage } from "../src/sse.js";

/** Feeds the chunks in order and collects every event. */
function parse(...chunks: string[]): SseMessage[] {
  const p = new SseParser();
  return chunks.flatMap((c) => p.push(c));
}

describe("SseParser", () => {
  it("reads named events and defaults the name to message", () => {
    assert.deepEqual(parse("event: image_generation.progress\ndata: {\"step\":1}\n\ndata: x\n\n"), [
      { event: "image_generation.progress", data: "{\"step\":1}", id: "" },
      { event: "message", data: "x", id: "" },
    ]);
  });

  it("joins multi-line data with newlines and strips one leading space only", () => {
    assert.deepEqual(parse("data: a\ndata:  b\ndata:c\ndata\n\n"), [{ event: "message", data: "a\n b\nc\n", id: "" }]);
  });

  it("accepts CRLF, CR and LF line ends, also mixed", () => {
    const expected = [{ event: "e", data: "1", id: "" }, { event: "message", data: "2", id: "" }];
    assert.deepEqual(parse("event: e\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n"), expected);
    assert.deepEqual(parse("event: e\rdata: 1\r\rdata: 2\r\r"), expected);
    assert.deepEqual(parse("event: e\r\ndata: 1\n\rdata: 2\n\n"), expected);
  });

  it("handles events, lines and CRLF pairs split across chunks", () => {
    const text = "event: image_generation.completed\r\ndata: {\"b64_json\":\"QUJD\"}\r\n\r\nevent: x\r\ndata: y\r\n\r\n";
    const whole = parse(text);
    assert.equal(whole.length, 2);
    for (let cut = 1; cut < text.length; cut++) {
      assert.deepEqual(parse(text.slice(0, cut), text.slice(cut)), whole, `cut at ${cut}`);
    }
    // One character at a time.
    assert.deepEqual(parse(...text.split("")), whole);
  });

  it("does not take a CR at a chunk's end plus an LF as two line ends", () => {
    // "data: a\r" | "\n\r\n": CRLF, then a blank line (CRLF): one event, not two lines with an empty one between.
    assert.deepEqual(parse("data: a\r", "\n", "data: b\r", "\n\r", "\n"), [{ event: "message", data: "a\nb", id: "" }]);
  });

  it("skips comments, unknown fields and events without data; keeps the last id", () => {
    assert.deepEqual(parse(": keep-alive\nretry: 10\nfoo: bar\nevent: lonely\n\nid: 7\ndata: d\n\ndata: e\n\n"), [
      { event: "message", data: "d", id: "7" },
      { event: "message", data: "e", id: "7" },
    ]);
  });

  it("drops an unterminated event at the end and a leading BOM", () => {
    assert.deepEqual(parse("\ufeffdata: a\n\ndata: half"), [{ event: "message", data: "a", id: "" }]);
  });

  it("keeps colons inside the value", () => {
    assert.deepEqual(parse('data: {"a":"b: c"}\n\n'), [{ event: "message", data: '{"a":"b: c"}', id: "" }]);
  });
});

describe("readSse", () => {
  it("decodes UTF-8 characters split between chunks", async () => {
    const bytes = new TextEncoder().encode("event: e\ndata: héllo ✓\n\n");
    // Split inside the two-byte é and inside the three-byte ✓.
    const cuts = [bytes.subarray(0, 16), bytes.subarray(16, 24), bytes.subarray(24)];
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const chunk of cuts) c.enqueue(chunk);
        c.close();
      },
    });
    const got: SseMessage[] = [];
    for await (const m of readSse(body)) got.push(m);
    assert.deepEqual(got, [{ event: "e", data: "héllo ✓", id: "" }]);
  });

  it("cancels the body when the reader stops early", async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(c) { c.enqueue(new TextEncoder().encode("data: 1\n\ndata: 2\n\n")); },
      cancel() { cancelled = true; },
    });
    for await (const m of readSse(body)) {
      assert.equal(m.data, "1");
      break;
    }
    assert.equal(cancelled, true);
  });
});
