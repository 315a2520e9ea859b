"""Runs every golden case on the committed ONNX exports with optimum's ORT
pipelines (diffusers' own pipeline code on ONNX Runtime sessions), replaying
the recorded draws, and compares with the diffusers PyTorch goldens. A
mismatch here is the exporter's or ONNX Runtime's; a mismatch only in
graphserve is graphserve's.

Writes test/fixtures/conformance/onnx-check.json (largest differences per
case and export) and prints a table.

    python tools/reference/check_onnx.py [case-id-prefix ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES  # noqa: E402
from draws import Draws  # noqa: E402
from goldens import GOLDENS, run  # noqa: E402
from layout import CONFORMANCE as FIXTURES  # noqa: E402

# fp32 exports are expected to match PyTorch to about 1e-4 on the 0..1 image scale.
FP32_LIMIT = 1e-4


def ort_pipe(export: Path, mode: str, _cache: dict = {}):
    from optimum.onnxruntime import ORTPipelineForImage2Image, ORTPipelineForInpainting, ORTPipelineForText2Image

    cls = {"text-to-image": ORTPipelineForText2Image, "image-to-image": ORTPipelineForImage2Image, "inpainting": ORTPipelineForInpainting}[mode]
    key = (export, mode)
    if key not in _cache:
        pipe = cls.from_pretrained(export, provider="CPUExecutionProvider")
        pipe.set_progress_bar_config(disable=True)
        if pipe.vae.dtype == torch.float16 and pipe.vae.config.get("force_upcast"):
            # diffusers' SDXL pipelines "upcast" an fp16 VAE through vae.post_quant_conv, which optimum's ORTVae
            # lacks (AttributeError). An ONNX VAE cannot be upcast anyway; say so, as fp16-fixed VAEs do.
            pipe.vae.decoder.register_to_config(force_upcast=False)
        _cache[key] = pipe
    return _cache[key]


def golden(case_id: str):
    d = GOLDENS / case_id
    meta = json.loads((d / "case.json").read_text())
    draws = Draws.from_raw((d / "draws.f32").read_bytes(), meta["draws"]["calls"])
    images = np.stack([np.asarray(Image.open(d / f), dtype=np.float32) / 255 for f in meta["outputs"]])
    floats = None
    if "output_float" in meta:
        floats = np.frombuffer((d / "output.f32").read_bytes(), "<f4").reshape(meta["output_float"]["shape"])
    latents = None
    if "step_latents" in meta:
        latents = np.frombuffer((d / "step-latents.f32").read_bytes(), "<f4").reshape(meta["step_latents"]["shape"])
    return meta, draws, images, floats, latents


def exports_of(pipeline: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / pipeline).iterdir() if p.name.startswith("optimum-onnx-") and (p / "model_index.json").exists())


def main(cases: list[dict] = CASES, pipe_for=ort_pipe) -> None:
    """`pipe_for(export, mode)`: the pipeline that runs a case on an export (flux_sd3_check.py passes its own)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefixes", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    report_path = FIXTURES / "onnx-check.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    for case in cases:
        if args.prefixes and not any(case["id"].startswith(p) for p in args.prefixes):
            continue
        meta, draws, png, floats, latents = golden(case["id"])
        for export in exports_of(case["pipeline"]):
            key = f"{case['id']} @ {export.relative_to(FIXTURES).as_posix()}"
            try:
                res = run(pipe_for(export, case["mode"]), case, draws)
            except Exception as e:  # recorded, not fatal: the report says which export/case the reference could not run
                report[key] = {"error": f"{type(e).__name__}: {e}"}
                print(f"ERROR {key}: {report[key]['error']}", flush=True)
                continue
            quantized = np.round(res["images"] * 255) / 255
            row = {
                "max_abs_image": float(np.abs(quantized - png).max()),
                "max_abs_image_255": int(round(float(np.abs(quantized - png).max()) * 255)),
                "timesteps_equal": res["timesteps"] == meta["timesteps"],
            }
            if floats is not None:
                row["max_abs_image_float"] = float(np.abs(res["images"] - floats).max())
            if latents is not None:
                row["max_abs_step_latents"] = [float(x) for x in np.abs(res["latents"] - latents).reshape(len(latents), -1).max(1)]
            report[key] = row
            bad = export.name.endswith("fp32") and (row["max_abs_image_255"] > 0 and row.get("max_abs_image_float", 0) > FP32_LIMIT or not row["timesteps_equal"])
            print(f"{'MISMATCH ' if bad else ''}{key}: {json.dumps(row)}", flush=True)
    report_path.write_text(json.dumps(dict(sorted(report.items())), indent=1) + "\n")


if __name__ == "__main__":
    main()
