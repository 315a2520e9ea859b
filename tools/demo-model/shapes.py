"""The demo's world: shapes × colours × backgrounds, drawn procedurally, with
plain-English captions and a fixed list of held-out combinations that training
never sees together (the accuracy prompts).

Kept in step with src/tools/accuracy/demo-shapes.ts (the TypeScript checker):
the same palette, the same shape names, the same caption form.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

SIZE = 32  # pixels; the VAE halves it twice, so the UNet works on 8×8 latents
SHAPES = ["circle", "square", "triangle"]
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
NAMES = list(COLOURS)
SUPERSAMPLE = 4  # drawn at 4× and averaged down, for smooth edges


def caption(shape: str, colour: str, background: str) -> str:
    return f"a {colour} {shape} on a {background} background"


def all_combos() -> list[tuple[str, str, str]]:
    return [(s, c, b) for s, c, b in itertools.product(SHAPES, NAMES, NAMES) if c != b]


def held_out() -> list[tuple[str, str, str]]:
    """18 of the 90 combinations (seeded), chosen so every shape–colour, shape–background and
    colour–background pair still occurs in training: the model has seen each part, never the whole."""
    rng = np.random.default_rng(17)
    combos = all_combos()
    order = rng.permutation(len(combos))
    held: list[tuple[str, str, str]] = []
    for i in order:
        cand = held + [combos[i]]
        train = [c for c in combos if c not in cand]
        pairs = [{(s, c) for s, c, _ in train}, {(s, b) for s, _, b in train}, {(c, b) for _, c, b in train}]
        full = [{(s, c) for s, c, _ in combos}, {(s, b) for s, _, b in combos}, {(c, b) for _, c, b in combos}]
        if pairs == full:
            held = cand
        if len(held) == 18:
            break
    return sorted(held)


def train_combos() -> list[tuple[str, str, str]]:
    held = set(held_out())
    return [c for c in all_combos() if c not in held]


def shape_masks(shapes: list[str], rng: np.random.Generator) -> np.ndarray:
    """Anti-aliased coverage masks (B, SIZE, SIZE) in [0, 1]: random size and place, fully inside the frame."""
    n = SIZE * SUPERSAMPLE
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32) / SUPERSAMPLE + 0.5 / SUPERSAMPLE
    out = np.empty((len(shapes), SIZE, SIZE), np.float32)
    for k, shape in enumerate(shapes):
        r = rng.uniform(7.0, 11.0)  # half-size in pixels
        cx, cy = rng.uniform(r + 1, SIZE - r - 1, size=2)
        if shape == "circle":
            m = (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
        elif shape == "square":
            m = (np.abs(xs - cx) <= r) & (np.abs(ys - cy) <= r)
        else:  # upward triangle: apex at the top, base at the bottom, as wide as it is tall
            top, bottom = cy - r, cy + r
            half_width = (ys - top) / (2 * r) * r
            m = (ys >= top) & (ys <= bottom) & (np.abs(xs - cx) <= half_width)
        out[k] = m.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    return out


def draw(combos: list[tuple[str, str, str]], rng: np.random.Generator) -> np.ndarray:
    """Images (B, 3, SIZE, SIZE) in [-1, 1] for the given (shape, colour, background) triples."""
    masks = shape_masks([s for s, _, _ in combos], rng)[:, None]
    fg = np.array([COLOURS[c] for _, c, _ in combos], np.float32)[:, :, None, None]
    bg = np.array([COLOURS[b] for _, _, b in combos], np.float32)[:, :, None, None]
    img = masks * fg + (1 - masks) * bg
    return img / 127.5 - 1


def write_prompts(path: Path) -> None:
    """The held-out prompts as graphserve accuracy reads them (one a line, # comments)."""
    lines = ["# held-out combinations: never seen together in training (tools/demo-model/shapes.py)"] + [caption(*c) for c in held_out()]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    h = held_out()
    print(len(all_combos()), "combos,", len(h), "held out:")
    for c in h:
        print(" ", caption(*c))
