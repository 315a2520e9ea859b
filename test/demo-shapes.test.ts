/**
 * The demo-shapes checker on pictures drawn here (every shape × colour ×
 * background, at the demo's 512×512 and at the training's 32×32), and its
 * prompt parser.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { SHAPE_COLOURS, SHAPES, checkShapes, parseShapePrompt, readShapes, type Shape, type ShapeColour } from "../src/tools/accuracy/demo-shapes.js";
import type { RawImage } from "../src/tools/accuracy/metrics.js";

/** A flat shape on a flat background, as tools/demo-model/shapes.py draws them (without anti-aliasing). */
function draw(size: number, shape: Shape, colour: ShapeColour, background: ShapeColour, cx: number, cy: number, r: number): RawImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [px, py] = [x + 0.5, y + 0.5];
      const inside =
        shape === "circle"
          ? (px - cx) ** 2 + (py - cy) ** 2 <= r * r
          : shape === "square"
            ? Math.abs(px - cx) <= r && Math.abs(py - cy) <= r
            : py >= cy - r && py <= cy + r && Math.abs(px - cx) <= (py - (cy - r)) / 2;
      data.set(SHAPE_COLOURS[inside ? colour : background], (y * size + x) * 3);
    }
  }
  return { data, width: size, height: size, channels: 3 };
}

const COLOURS = Object.keys(SHAPE_COLOURS) as ShapeColour[];

test("readShapes names every shape, colour and background, at 512 and at 32 pixels", () => {
  let n = 0;
  for (const size of [512, 32]) {
    for (const shape of SHAPES) {
      for (const colour of COLOURS) {
        for (const background of COLOURS) {
          if (colour === background) continue;
          // Size and place vary as in training: half-size 7–11 of 32, clear of the frame.
          const k = size / 32;
          const r = (7 + (n % 5)) * k;
          const cx = r + k + ((n * 7) % Math.max(1, Math.floor(size - 2 * r - 2 * k)));
          const cy = r + k + ((n * 13) % Math.max(1, Math.floor(size - 2 * r - 2 * k)));
          n++;
          const seen = readShapes(draw(size, shape, colour, background, cx, cy, r));
          assert.deepEqual([seen.shape, seen.colour, seen.background], [shape, colour, background], `${size}px ${colour} ${shape} on ${background} (fill ${seen.fill})`);
        }
      }
    }
  }
});

test("a plain background shows no object; a mismatch fails the check and says what was seen", () => {
  const plain = draw(64, "circle", "red", "red", 32, 32, 10);
  const seen = readShapes(plain);
  assert.equal(seen.background, "red");
  assert.equal(seen.colour, undefined);
  assert.equal(seen.shape, undefined);
  const square = draw(64, "square", "blue", "white", 30, 34, 16);
  const check = checkShapes("a red circle on a white background", square)!;
  assert.equal(check.ok, false);
  assert.deepEqual([check.seen.shape, check.seen.colour, check.seen.background], ["square", "blue", "white"]);
  assert.equal(checkShapes("A blue square on a white background", square)?.ok, true);
});

test("parseShapePrompt reads the demo's caption form only", () => {
  assert.deepEqual(parseShapePrompt("a red circle on a blue background"), { shape: "circle", colour: "red", background: "blue" });
  assert.deepEqual(parseShapePrompt("a yellow triangle on a black background"), { shape: "triangle", colour: "yellow", background: "black" });
  for (const p of ["three cats", "a red circle", "a purple circle on a blue background", "a red hexagon on a blue background", ""]) {
    assert.equal(parseShapePrompt(p), undefined, p);
  }
});
