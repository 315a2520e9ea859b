"""Golden outputs from diffusers' own PyTorch pipelines on the tiny pipelines.

For each case in cases.CASES: run the diffusers pipeline with
torch.Generator("cpu").manual_seed(seed), record every randn_tensor draw,
and write test/fixtures/conformance/goldens/<case>/ (format: see
test/fixtures/conformance/README.md).

    python tools/reference/goldens.py [case-id-prefix ...]
"""
from __future__ import annotations

import argparse
import inspect
import json
import shutil
import sys
from pathlib import Path

import diffusers
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipelines  # noqa: E402
from cases import CASES, input_image  # noqa: E402
from draws import Draws, recording, replaying  # noqa: E402
from layout import CONFORMANCE as FIXTURES  # noqa: E402

GOLDENS = FIXTURES / "goldens"

MODE_CLASS = {
    "text-to-image": diffusers.AutoPipelineForText2Image,
    "image-to-image": diffusers.AutoPipelineForImage2Image,
    "inpainting": diffusers.AutoPipelineForInpainting,
}


def torch_pipe(name: str, mode: str, _cache: dict = {}):
    """The diffusers pipeline for `mode` on the saved tiny pipeline `name` (components shared, loaded once)."""
    if name not in _cache:
        _cache[name] = pipelines.load(name)
    base = _cache[name]
    pipe = MODE_CLASS[mode].from_pipe(base)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def call_kwargs(case: dict) -> dict:
    kw: dict = dict(prompt=case["prompt"], num_inference_steps=case["steps"], num_images_per_prompt=case["n"], output_type="np")
    if case["negative_prompt"] is not None:
        kw["negative_prompt"] = case["negative_prompt"]
    if case["guidance"] is not None:
        kw["guidance_scale"] = case["guidance"]
    if case["strength"] is not None:
        kw["strength"] = case["strength"]
    if case["mode"] != "image-to-image":
        kw["width"], kw["height"] = case["width"], case["height"]
    if case["image"]:
        kw["image"] = input_image(case["image"])
    if case["mask"]:
        kw["mask_image"] = input_image(case["mask"])
    kw.update(case.get("extra") or {})  # further call arguments (flux_sd3_cases.py)
    return kw


def run(pipe, case: dict, draws: Draws | None = None) -> dict:
    """Runs `case` on `pipe`; records the draws, or replays `draws` when given. Returns images, draws, timesteps, step latents."""
    if case["scheduler"]:
        # PNDM from another scheduler's config would default to skip_prk_steps=False (Runge-Kutta warm-up);
        # every real SD repo with PNDM sets it true, so the swapped-in PNDM does too.
        extra = {"skip_prk_steps": True} if case["scheduler"] == "PNDMScheduler" else {}
        pipe.scheduler = getattr(diffusers, case["scheduler"]).from_config(pipe.scheduler.config, **extra)
    else:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)  # fresh state
    timesteps, latents = [], []

    def on_step(p, i, t, kwargs):
        timesteps.append(float(t))
        latents.append(kwargs["latents"].detach().to(torch.float32).cpu().numpy().copy())
        return {}

    kw = call_kwargs(case)
    kw["generator"] = torch.Generator("cpu").manual_seed(case["seed"])
    kw["callback_on_step_end"] = on_step
    kw["callback_on_step_end_tensor_inputs"] = ["latents"]
    with torch.no_grad():
        if draws is None:
            with recording() as recorded:
                images = pipe(**kw).images
        else:
            recorded = draws
            with replaying(draws):
                images = pipe(**kw).images
    return dict(images=np.asarray(images, dtype=np.float32), draws=recorded, timesteps=timesteps, latents=np.stack(latents),
                scheduler_config=pipe.scheduler.to_json_string(), pipeline_class=type(pipe).__name__, defaults=pipeline_defaults(pipe, case))


def pipeline_defaults(pipe, case: dict) -> dict:
    """The values diffusers used for the request fields the case left out (its __call__ defaults)."""
    params = inspect.signature(pipe.__call__).parameters
    names = {"guidance": "guidance_scale", "strength": "strength", "negative_prompt": "negative_prompt"}
    return {k: params[v].default for k, v in names.items() if case[k] is None and v in params}


def to_png_bytes(img: np.ndarray) -> Image.Image:
    # diffusers' numpy_to_pil quantization.
    return Image.fromarray((img * 255).round().astype(np.uint8))


def write_case(case: dict, result: dict, export: str) -> dict:
    out = GOLDENS / case["id"]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files = {}
    (out / "draws.f32").write_bytes(result["draws"].raw())
    (out / "scheduler_config.json").write_text(result["scheduler_config"])
    for k, name in (("image", "input.png"), ("mask", "mask.png")):
        if case[k]:
            input_image(case[k]).save(out / name)
            files[k] = name
    outputs = []
    for i, img in enumerate(result["images"]):
        to_png_bytes(img).save(out / f"output-{i}.png", optimize=False)
        outputs.append(f"output-{i}.png")
    (out / "step-latents.f32").write_bytes(result["latents"].astype("<f4").tobytes())
    files["step_latents"] = {"file": "step-latents.f32", "shape": list(result["latents"].shape)}
    if case["float_output"]:
        (out / "output.f32").write_bytes(result["images"].astype("<f4").tobytes())
        files["output_float"] = {"file": "output.f32", "shape": list(result["images"].shape), "layout": "NHWC, 0..1 before rounding"}
    n, h, w, _ = result["images"].shape
    meta = {
        "request": {k: case[k] for k in ("mode", "prompt", "negative_prompt", "steps", "guidance", "strength", "n", "seed")}
        | {"width": w, "height": h, "scheduler": case["scheduler"]},
        "defaults_used": result["defaults"],
        "pipeline_class": result["pipeline_class"],
        "pipeline": case["pipeline"],
        "export": export,
        "draws": {"file": "draws.f32", "calls": result["draws"].manifest()},
        "timesteps": result["timesteps"],
        "scheduler_config": "scheduler_config.json",
        "outputs": outputs,
        **files,
    }
    (out / "case.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefixes", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one thread: bit-identical reruns
    for case in CASES:
        if args.prefixes and not any(case["id"].startswith(p) for p in args.prefixes):
            continue
        result = run(torch_pipe(case["pipeline"], case["mode"]), case)
        meta = write_case(case, result, f"{case['pipeline']}/optimum-onnx-fp32")
        print(case["id"], meta["request"]["width"], meta["request"]["height"], [d["site"] for d in meta["draws"]["calls"]], flush=True)


if __name__ == "__main__":
    main()
