"""Golden cases for the tiny FLUX/SD3 pipelines (flux_sd3.py), in cases.py's
format plus `extra`: further keyword arguments of the diffusers call
(prompt_2/prompt_3, negative_prompt_2/3, max_sequence_length, true_cfg_scale,
and width/height for FLUX image-to-image, whose default is 1024 whatever the
input image's size).
"""
from __future__ import annotations

from cases import LONG, NEGATIVE, PROMPT, _case


def _c(id, pipeline, mode="text-to-image", *, extra=None, **kw) -> dict:
    case = _case(id, pipeline, mode, **kw)
    case["extra"] = extra or {}
    return case


SIZE64 = dict(width=64, height=64)


def _cases() -> list[dict]:
    c = []
    # FLUX.1-schnell-like: no guidance input, static shift 1 (σ = linspace(1, 1/N, N)); max_sequence_length default 512.
    c.append(_c("flux-schnell-t2i", "flux-schnell", steps=4, float_output=True))
    c.append(_c("flux-schnell-t2i-seq256", "flux-schnell", steps=4, seed=1, extra=dict(max_sequence_length=256)))
    c.append(_c("flux-schnell-t2i-prompt2", "flux-schnell", steps=2, seed=2, extra=dict(prompt_2="a blue house at night", max_sequence_length=32)))
    c.append(_c("flux-schnell-t2i-96x64", "flux-schnell", width=96, height=64, steps=3, seed=3, extra=dict(max_sequence_length=16)))
    c.append(_c("flux-schnell-t2i-n2", "flux-schnell", n=2, steps=2, seed=4, extra=dict(max_sequence_length=16)))
    c.append(_c("flux-schnell-t2i-empty", "flux-schnell", prompt="", steps=2, seed=5, extra=dict(max_sequence_length=16)))
    c.append(_c("flux-schnell-t2i-long", "flux-schnell", prompt=LONG, steps=2, seed=6, extra=dict(max_sequence_length=32)))
    c.append(_c("flux-schnell-t2i-1", "flux-schnell", steps=1, seed=7, extra=dict(max_sequence_length=16)))
    c.append(_c("flux-schnell-i2i-0.6", "flux-schnell", "image-to-image", steps=4, strength=0.6, image="gradient64", seed=8,
                extra=dict(SIZE64, max_sequence_length=32), float_output=True))
    c.append(_c("flux-schnell-inpaint-0.8", "flux-schnell", "inpainting", steps=4, strength=0.8, image="gradient64", mask="mask64", seed=9,
                extra=dict(max_sequence_length=32), float_output=True))
    # FLUX.1-dev-like: embedded guidance (default 3.5 for t2i, 7.0 for i2i/inpaint), dynamic shift μ from the image sequence length.
    c.append(_c("flux-dev-t2i", "flux-dev", steps=4, seed=11, float_output=True))
    c.append(_c("flux-dev-t2i-guidance5", "flux-dev", steps=3, guidance=5.0, seed=12, extra=dict(max_sequence_length=64)))
    c.append(_c("flux-dev-t2i-128x96", "flux-dev", width=128, height=96, steps=3, seed=13, extra=dict(max_sequence_length=16)))
    c.append(_c("flux-dev-t2i-truecfg", "flux-dev", steps=3, negative_prompt=NEGATIVE, seed=14,
                extra=dict(true_cfg_scale=2.0, negative_prompt_2="ugly", max_sequence_length=16)))
    c.append(_c("flux-dev-i2i-defaults", "flux-dev", "image-to-image", steps=5, image="gradient64", seed=15, extra=dict(SIZE64, max_sequence_length=32)))
    c.append(_c("flux-dev-inpaint-defaults", "flux-dev", "inpainting", steps=5, image="gradient64", mask="mask64", seed=16,
                extra=dict(max_sequence_length=32)))
    # SD3: CFG (default guidance 7.0), CLIP-L + CLIP-G + T5 (max_sequence_length default 256), static shift 3.
    c.append(_c("sd3-t2i", "sd3", steps=4, seed=21, float_output=True))
    c.append(_c("sd3-t2i-negative", "sd3", steps=3, negative_prompt=NEGATIVE, seed=22,
                extra=dict(negative_prompt_2="ugly", negative_prompt_3="blurry painting", max_sequence_length=32)))
    c.append(_c("sd3-t2i-prompts", "sd3", steps=3, seed=23, extra=dict(prompt_2="a blue house at night", prompt_3="an oil painting of a lake",
                                                                         max_sequence_length=32)))
    c.append(_c("sd3-t2i-noguidance", "sd3", steps=3, guidance=1.0, seed=24, extra=dict(max_sequence_length=77)))
    c.append(_c("sd3-t2i-96x64", "sd3", width=96, height=64, steps=3, seed=25, extra=dict(max_sequence_length=16)))
    c.append(_c("sd3-t2i-n2", "sd3", n=2, steps=2, negative_prompt=NEGATIVE, seed=26, extra=dict(max_sequence_length=16)))
    c.append(_c("sd3-t2i-long", "sd3", prompt=LONG, steps=2, seed=27, extra=dict(max_sequence_length=32)))
    c.append(_c("sd3-t2i-empty", "sd3", prompt="", steps=2, seed=28, extra=dict(max_sequence_length=16)))
    c.append(_c("sd3-i2i-0.6", "sd3", "image-to-image", steps=5, strength=0.6, image="gradient64", seed=29, extra=dict(SIZE64, max_sequence_length=32),
                float_output=True))
    c.append(_c("sd3-i2i-1.0", "sd3", "image-to-image", steps=3, strength=1.0, image="gradient64", seed=30, extra=dict(SIZE64, max_sequence_length=16)))
    # SD3 inpaint: diffusers decodes without + shift_factor (upstream quirk, kept: these are diffusers' numbers).
    c.append(_c("sd3-inpaint-0.8", "sd3", "inpainting", steps=4, strength=0.8, image="gradient64", mask="mask64", seed=31,
                extra=dict(max_sequence_length=32), float_output=True))
    c.append(_c("sd3-inpaint-1.0", "sd3", "inpainting", steps=3, strength=1.0, image="gradient64", mask="mask64", seed=32,
                extra=dict(max_sequence_length=16)))
    return c


CASES = _cases()
