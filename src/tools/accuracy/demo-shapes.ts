/**
 * The demo model's prompt-adherence checker (`graphserve accuracy --check
 * demo-shapes`): reads a picture of one flat shape on a flat background and
 * says which background colour, object colour and shape it shows. No model,
 * no randomness: nearest-palette pixel classes, then the object's fill of its
 * bounding box (a square fills it, a circle π/4 of it, a triangle half).
 *
 * Kept in step with tools/demo-model/shapes.py: the same palette, shape names
 * and caption form ("a red circle on a blue background").
 */
import type { RawImage } from "./metrics.js";

export const SHAPE_COLOURS = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 70, 220],
  yellow: [240, 220, 40],
  white: [245, 245, 245],
  black: [20, 20, 20],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ShapeColour = keyof typeof SHAPE_COLOURS;
export const SHAPES = ["circle", "square", "triangle"] as const;
export type Shape = (typeof SHAPES)[number];

export interface ShapeScene {
  readonly shape: Shape;
  readonly colour: ShapeColour;
  readonly background: ShapeColour;
}

/** What the checker saw; `shape` and `colour` are absent when no object stands out from the background. */
export interface ShapeReading {
  readonly background: ShapeColour;
  readonly colour?: ShapeColour;
  readonly shape?: Shape;
  /** The object's share of the picture, and of its bounding box. */
  readonly area: number;
  readonly fill?: number;
  /** The object's bounding box in pixels, inclusive. */
  readonly box?: { readonly x0: number; readonly y0: number; readonly x1: number; readonly y1: number };
}

export interface ShapeCheck {
  readonly expected: ShapeScene;
  readonly seen: ShapeReading;
  /** Background, colour and shape all as the prompt asked. */
  readonly ok: boolean;
}

const NAMES = Object.keys(SHAPE_COLOURS) as ShapeColour[];
const PALETTE = NAMES.map((n) => SHAPE_COLOURS[n]);
/** Smaller than this share of the picture is specks, not an object. */
const MIN_OBJECT_AREA = 0.01;
/** Bounding-box fill between the ideal shapes: triangle 0.5 | circle 0.785 | square 1. */
const FILL_CIRCLE = 0.64;
const FILL_SQUARE = 0.89;
/** Below this the pixels are scattered, not one of the shapes. */
const FILL_TRIANGLE = 0.35;

/** "a red circle on a blue background" → its parts; undefined for any other prompt. */
export function parseShapePrompt(prompt: string): ShapeScene | undefined {
  const m = /^\s*an? (\w+) (\w+) on an? (\w+) background\s*$/i.exec(prompt);
  if (!m) return undefined;
  const [colour, shape, background] = [m[1].toLowerCase(), m[2].toLowerCase(), m[3].toLowerCase()];
  if (!(colour in SHAPE_COLOURS) || !(background in SHAPE_COLOURS) || !(SHAPES as readonly string[]).includes(shape)) return undefined;
  return { shape: shape as Shape, colour: colour as ShapeColour, background: background as ShapeColour };
}

function nearest(r: number, g: number, b: number): number {
  let best = 0;
  let bestD = Infinity;
  for (let i = 0; i < PALETTE.length; i++) {
    const [pr, pg, pb] = PALETTE[i];
    const d = (r - pr) ** 2 + (g - pg) ** 2 + (b - pb) ** 2;
    if (d < bestD) [best, bestD] = [i, d];
  }
  return best;
}

function mostCommon(counts: number[], skip = -1): number {
  let best = -1;
  for (let i = 0; i < counts.length; i++) if (i !== skip && (best < 0 || counts[i] > counts[best])) best = i;
  return best;
}

interface Patch {
  count: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The largest 4-connected patch of class `c`: its pixel count and bounding box. */
function largestPatch(cls: Uint8Array, width: number, height: number, c: number): Patch {
  const seen = new Uint8Array(cls.length);
  const stack = new Int32Array(cls.length);
  let best: Patch = { count: 0, x0: 0, y0: 0, x1: -1, y1: -1 };
  for (let start = 0; start < cls.length; start++) {
    if (cls[start] !== c || seen[start]) continue;
    const p: Patch = { count: 0, x0: width, y0: height, x1: -1, y1: -1 };
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top > 0) {
      const i = stack[--top];
      const x = i % width;
      const y = (i - x) / width;
      p.count++;
      p.x0 = Math.min(p.x0, x);
      p.x1 = Math.max(p.x1, x);
      p.y0 = Math.min(p.y0, y);
      p.y1 = Math.max(p.y1, y);
      for (const j of [x > 0 ? i - 1 : -1, x < width - 1 ? i + 1 : -1, y > 0 ? i - width : -1, y < height - 1 ? i + width : -1]) {
        if (j >= 0 && !seen[j] && cls[j] === c) {
          seen[j] = 1;
          stack[top++] = j;
        }
      }
    }
    if (p.count > best.count) best = p;
  }
  return best;
}

/** Reads one picture (RGB, any size). */
export function readShapes(img: RawImage): ShapeReading {
  const { width, height, data, channels } = img;
  const cls = new Uint8Array(width * height);
  for (let i = 0; i < cls.length; i++) cls[i] = nearest(data[i * channels], data[i * channels + 1], data[i * channels + 2]);
  // The background is what the frame's edge shows (a ring 1/32 of the side wide; shapes stay clear of it).
  const ring = Math.max(1, Math.floor(Math.min(width, height) / 32));
  const edge = new Array<number>(PALETTE.length).fill(0);
  const all = new Array<number>(PALETTE.length).fill(0);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = cls[y * width + x];
      all[c]++;
      if (x < ring || y < ring || x >= width - ring || y >= height - ring) edge[c]++;
    }
  }
  const bg = mostCommon(edge);
  const fg = mostCommon(all, bg);
  // The object: the largest connected patch of its colour (specks, and blended edge pixels that fall
  // nearer a third colour, are left out).
  const patch = largestPatch(cls, width, height, fg);
  const area = patch.count / cls.length;
  if (area < MIN_OBJECT_AREA) return { background: NAMES[bg], area };
  const { x0, y0, x1, y1 } = patch;
  const fill = patch.count / ((x1 - x0 + 1) * (y1 - y0 + 1));
  const shape: Shape | undefined = fill >= FILL_SQUARE ? "square" : fill >= FILL_CIRCLE ? "circle" : fill >= FILL_TRIANGLE ? "triangle" : undefined;
  return { background: NAMES[bg], colour: NAMES[fg], ...(shape !== undefined ? { shape } : {}), area, fill, box: { x0, y0, x1, y1 } };
}

/** Checks a picture against its prompt; undefined when the prompt is not a demo-shapes prompt. */
export function checkShapes(prompt: string, img: RawImage): ShapeCheck | undefined {
  const expected = parseShapePrompt(prompt);
  if (expected === undefined) return undefined;
  const seen = readShapes(img);
  const ok = seen.background === expected.background && seen.colour === expected.colour && seen.shape === expected.shape;
  return { expected, seen, ok };
}
