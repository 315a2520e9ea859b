/**
 * The mask's keyboard brush, without the DOM: what a key press does to the
 * brush cursor (in source pixels) and what it paints. Arrows move the cursor
 * a quarter of the brush (so Shift+arrows lay down an even stroke), clamped
 * to the image; Shift+arrows paint the way moved; Space and Enter paint a dot.
 */

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface BrushKey {
  readonly key: string;
  readonly shift: boolean;
  /** The cursor now. */
  readonly at: Point;
  /** The brush's diameter in displayed pixels. */
  readonly brushPx: number;
  /** Source pixels per displayed pixel, across and down. */
  readonly scale: Point;
  /** The image's size in source pixels. */
  readonly width: number;
  readonly height: number;
}

/** What to do: move the cursor to `at`, painting a line from `from` or a dot; null for a key that is not the brush's. */
export type BrushAction =
  | { readonly kind: "move"; readonly at: Point; readonly paintFrom: Point | null }
  | { readonly kind: "dot"; readonly at: Point };

const MOVES: Readonly<Record<string, readonly [number, number]>> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

export function brushKey(k: BrushKey): BrushAction | null {
  if (k.key === " " || k.key === "Enter") return { kind: "dot", at: k.at };
  const move = MOVES[k.key];
  if (move === undefined) return null;
  const step = Math.max(2, k.brushPx / 4);
  const clamp = (v: number, max: number) => Math.min(max, Math.max(0, v));
  const at = { x: clamp(k.at.x + move[0] * step * k.scale.x, k.width), y: clamp(k.at.y + move[1] * step * k.scale.y, k.height) };
  return { kind: "move", at, paintFrom: k.shift ? k.at : null };
}
