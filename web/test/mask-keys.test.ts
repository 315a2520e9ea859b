import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { brushKey, type BrushKey } from "../src/mask-keys.js";

// A 1000×500 source shown at 500×250: two source pixels per displayed pixel.
const base: BrushKey = { key: "", shift: false, at: { x: 500, y: 250 }, brushPx: 40, scale: { x: 2, y: 2 }, width: 1000, height: 500 };
const press = (key: string, over: Partial<BrushKey> = {}) => brushKey({ ...base, ...over, key });

describe("the mask's keyboard brush", () => {
  it("moves the cursor a quarter of the brush per arrow, in source pixels", () => {
    assert.deepEqual(press("ArrowRight"), { kind: "move", at: { x: 520, y: 250 }, paintFrom: null });
    assert.deepEqual(press("ArrowUp"), { kind: "move", at: { x: 500, y: 230 }, paintFrom: null });
    // A tiny brush still moves 2 displayed pixels.
    assert.deepEqual(press("ArrowLeft", { brushPx: 4 }), { kind: "move", at: { x: 496, y: 250 }, paintFrom: null });
  });

  it("paints the way moved with Shift, and a dot with Space or Enter", () => {
    assert.deepEqual(press("ArrowDown", { shift: true }), { kind: "move", at: { x: 500, y: 270 }, paintFrom: { x: 500, y: 250 } });
    assert.deepEqual(press(" "), { kind: "dot", at: { x: 500, y: 250 } });
    assert.deepEqual(press("Enter"), { kind: "dot", at: { x: 500, y: 250 } });
  });

  it("stays on the image", () => {
    assert.deepEqual(press("ArrowLeft", { at: { x: 5, y: 0 } }), { kind: "move", at: { x: 0, y: 0 }, paintFrom: null });
    assert.deepEqual(press("ArrowDown", { at: { x: 1000, y: 495 } }), { kind: "move", at: { x: 1000, y: 500 }, paintFrom: null });
  });

  it("leaves other keys (Tab, letters) to the page", () => {
    assert.equal(press("Tab"), null);
    assert.equal(press("a"), null);
  });
});
