"""The golden cases: what is asked of each tiny pipeline, and the input images.

A case is a plain dict: id, pipeline (a name in pipelines.PIPELINES), mode
("text-to-image", "image-to-image", "inpainting"), scheduler (a diffusers
class name, or None for the pipeline's own), the request parameters
(prompt, negative_prompt, width, height, steps, guidance, strength, n, seed;
None means "left to the pipeline's default"), image/mask (names in
INPUT_IMAGES) and float_output (also store the final images as floats, before rounding).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

PROMPT = "a photo of three cats on a red painting, high quality"
NEGATIVE = "blurry, ugly"
LONG = ", ".join(["a portrait of an astronaut riding a horse at sunset in the city at night"] * 6)  # > 77 tokens


def _case(id, pipeline, mode="text-to-image", scheduler=None, *, prompt=PROMPT, negative_prompt=None, width=64, height=64,
          steps=4, guidance=None, strength=None, n=1, seed=42, image=None, mask=None, float_output=False):
    return dict(id=id, pipeline=pipeline, mode=mode, scheduler=scheduler, prompt=prompt, negative_prompt=negative_prompt,
                width=width, height=height, steps=steps, guidance=guidance, strength=strength, n=n, seed=seed,
                image=image, mask=mask, float_output=float_output)


ALL_SCHEDULERS = ["PNDMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
                  "DPMSolverMultistepScheduler", "LCMScheduler"]


def _cases() -> list[dict]:
    c = []
    # SD 1.x (epsilon, PNDM by default).
    c.append(_case("sd1-t2i", "sd1", float_output=True))
    c.append(_case("sd1-t2i-negative", "sd1", negative_prompt=NEGATIVE, guidance=7.5))
    c.append(_case("sd1-t2i-noguidance", "sd1", guidance=1.0, seed=7))
    c.append(_case("sd1-t2i-n2", "sd1", negative_prompt=NEGATIVE, n=2, seed=3))
    c.append(_case("sd1-t2i-96x64", "sd1", width=96, height=64, seed=11))
    c.append(_case("sd1-t2i-long", "sd1", prompt=LONG, seed=12))
    c.append(_case("sd1-t2i-empty", "sd1", prompt="", seed=13))
    for s in ALL_SCHEDULERS:
        c.append(_case(f"sd1-t2i-{s}", "sd1", "text-to-image", s, steps=5, seed=21, float_output=s in ("EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler")))
    c.append(_case("sd1-t2i-DPMSolverMultistepScheduler-10", "sd1", "text-to-image", "DPMSolverMultistepScheduler", steps=10, seed=22))
    c.append(_case("sd1-i2i-0.5", "sd1", "image-to-image", strength=0.5, steps=6, image="gradient64", float_output=True))
    c.append(_case("sd1-i2i-0.75", "sd1", "image-to-image", strength=0.75, steps=4, image="gradient64", seed=5))
    c.append(_case("sd1-i2i-1.0", "sd1", "image-to-image", strength=1.0, steps=4, image="gradient64", seed=6))
    c.append(_case("sd1-i2i-resize84", "sd1", "image-to-image", strength=0.6, steps=5, image="gradient84", seed=8))
    for s in ["DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler"]:
        c.append(_case(f"sd1-i2i-{s}", "sd1", "image-to-image", s, strength=0.6, steps=5, image="gradient64", seed=9))
    c.append(_case("sd1-inpaint4ch", "sd1", "inpainting", strength=0.8, steps=5, image="gradient64", mask="mask64", seed=10))
    # SD 2.x (v-prediction, DPM++ by default).
    c.append(_case("sd2-t2i", "sd2", float_output=True))
    c.append(_case("sd2-t2i-10", "sd2", steps=10, seed=31))
    c.append(_case("sd2-t2i-negative", "sd2", negative_prompt=NEGATIVE, seed=32))
    c.append(_case("sd2-t2i-empty", "sd2", prompt="", seed=33))
    c.append(_case("sd2-t2i-bang", "sd2", prompt="cats!! on a red!! painting!", seed=34))
    for s in ["PNDMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler"]:
        c.append(_case(f"sd2-t2i-{s}", "sd2", "text-to-image", s, steps=5, seed=35, float_output=s == "PNDMScheduler"))
    c.append(_case("sd2-i2i-0.6", "sd2", "image-to-image", strength=0.6, steps=5, image="gradient64", seed=36))
    c.append(_case("sd2-i2i-PNDM-0.6", "sd2", "image-to-image", "PNDMScheduler", strength=0.6, steps=5, image="gradient64", seed=37))
    # SD-Turbo-like (Euler, trailing, no guidance).
    c.append(_case("sd-turbo-t2i-1", "sd-turbo", steps=1, guidance=0.0))
    c.append(_case("sd-turbo-t2i-4", "sd-turbo", steps=4, guidance=0.0, seed=41, float_output=True))
    c.append(_case("sd-turbo-t2i-EulerAncestralDiscreteScheduler-2", "sd-turbo", "text-to-image", "EulerAncestralDiscreteScheduler", steps=2, guidance=0.0, seed=43))
    c.append(_case("sd-turbo-i2i-2x0.5", "sd-turbo", "image-to-image", steps=2, strength=0.5, guidance=0.0, image="gradient64", seed=44))
    # LCM (timestep_cond UNet, LCMScheduler).
    c.append(_case("lcm-t2i-4", "lcm", steps=4, float_output=True))
    c.append(_case("lcm-t2i-1", "lcm", steps=1, seed=51))
    c.append(_case("lcm-t2i-guidance3", "lcm", steps=2, guidance=3.0, seed=52))
    c.append(_case("lcm-i2i-0.5", "lcm", "image-to-image", steps=4, strength=0.5, image="gradient64", seed=53))
    # SDXL (two encoders, pooled embeds, time ids; its own defaults: guidance 5.0, img2img strength 0.3).
    c.append(_case("sdxl-t2i-defaults", "sdxl", float_output=True))
    c.append(_case("sdxl-t2i-negative", "sdxl", negative_prompt=NEGATIVE, seed=61))
    c.append(_case("sdxl-t2i-empty", "sdxl", prompt="", seed=62))
    c.append(_case("sdxl-t2i-noguidance", "sdxl", guidance=1.0, seed=63))
    c.append(_case("sdxl-t2i-96x64", "sdxl", width=96, height=64, seed=64))
    c.append(_case("sdxl-t2i-n2", "sdxl", n=2, seed=65))
    for s in ["EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler", "DDIMScheduler"]:
        c.append(_case(f"sdxl-t2i-{s}", "sdxl", "text-to-image", s, steps=5, seed=66))
    c.append(_case("sdxl-i2i-defaults", "sdxl", "image-to-image", steps=10, image="gradient64", seed=67))
    c.append(_case("sdxl-i2i-0.6", "sdxl", "image-to-image", steps=5, strength=0.6, image="gradient64", seed=68))
    c.append(_case("sdxl-inpaint-defaults", "sdxl", "inpainting", steps=5, image="gradient64", mask="mask64", seed=69))
    # SD inpainting (9-channel UNet).
    c.append(_case("sd-inpaint-defaults", "sd-inpaint", "inpainting", steps=5, image="gradient64", mask="mask64", float_output=True))
    c.append(_case("sd-inpaint-0.75", "sd-inpaint", "inpainting", steps=4, strength=0.75, image="gradient64", mask="mask64", seed=71))
    c.append(_case("sd-inpaint-nomaskguidance", "sd-inpaint", "inpainting", steps=4, guidance=1.0, image="gradient64", mask="mask64", seed=72))
    for s in ["DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler"]:
        c.append(_case(f"sd-inpaint-{s}", "sd-inpaint", "inpainting", s, steps=5, image="gradient64", mask="mask64", seed=73))
    return c


CASES = _cases()


def input_image(name: str) -> Image.Image:
    """Deterministic test inputs (no randomness beyond a fixed numpy seed)."""
    if name.startswith("gradient"):
        s = int(name[len("gradient"):])
        y, x = np.mgrid[0:s, 0:s] / (s - 1)
        rng = np.random.default_rng(1234)
        img = np.stack([x, y, 1 - (x + y) / 2], -1) * 0.8 + rng.random((s, s, 3)) * 0.2
        return Image.fromarray((img * 255).round().astype(np.uint8), "RGB")
    if name == "mask64":
        # White rectangle (inpaint) off the 8-pixel grid, a green patch (PIL's weighted grey says 0.59 → inpaint;
        # a plain RGB mean says 0.33 → keep) and a mid-grey stripe just under the 0.5 threshold.
        m = np.zeros((64, 64, 3), np.uint8)
        m[10:37, 21:50] = 255
        m[44:60, 4:20] = (0, 255, 0)
        m[44:60, 40:60] = 126
        return Image.fromarray(m, "RGB")
    if name == "checker64":
        # The OpenVINO goldens' image-to-image input: red and green ramps, a blue 8-pixel checkerboard.
        y, x = np.mgrid[0:64, 0:64]
        rgb = np.stack([x * 255 // 63, y * 255 // 63, (x // 8 + y // 8) % 2 * 200 + 30], -1).astype(np.uint8)
        return Image.fromarray(rgb, "RGB")
    if name == "square-mask64":
        # The OpenVINO goldens' mask: the middle half white (repaint).
        m = np.zeros((64, 64, 3), np.uint8)
        m[16:48, 16:48] = 255
        return Image.fromarray(m, "RGB")
    raise KeyError(name)
