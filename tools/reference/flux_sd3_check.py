"""check_onnx.py for the FLUX/SD3 cases: each golden rerun on the committed
ONNX export through optimum's ORT pipelines (diffusers' pipeline code on ONNX
Runtime), replaying the recorded draws; results merged into onnx-check.json.

optimum-onnx has no ORT class for FLUX image-to-image or inpainting (only
ORTFluxPipeline), so those run diffusers' FluxImg2ImgPipeline /
FluxInpaintPipeline built from ORTFluxPipeline's ONNX components.

    python tools/reference/flux_sd3_check.py [case-id-prefix ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import diffusers
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_onnx import FP32_LIMIT, exports_of, golden, ort_pipe  # noqa: E402
from flux_sd3_cases import CASES  # noqa: E402
from goldens import FIXTURES, run  # noqa: E402

FLUX_EDIT = {"image-to-image": diffusers.FluxImg2ImgPipeline, "inpainting": diffusers.FluxInpaintPipeline}


def pipe_for(export: Path, mode: str):
    if mode == "text-to-image" or not export.parent.name.startswith("flux"):
        return ort_pipe(export, mode)
    t2i = ort_pipe(export, "text-to-image")
    pipe = FLUX_EDIT[mode](**t2i.components, scheduler=t2i.scheduler, tokenizer=t2i.tokenizer, tokenizer_2=t2i.tokenizer_2)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefixes", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    report_path = FIXTURES / "onnx-check.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    for case in CASES:
        if args.prefixes and not any(case["id"].startswith(p) for p in args.prefixes):
            continue
        meta, draws, png, floats, latents = golden(case["id"])
        for export in exports_of(case["pipeline"]):
            key = f"{case['id']} @ {export.relative_to(FIXTURES).as_posix()}"
            try:
                res = run(pipe_for(export, case["mode"]), case, draws)
            except Exception as e:  # recorded, not fatal
                report[key] = {"error": f"{type(e).__name__}: {e}"}
                print(f"ERROR {key}: {report[key]['error']}", flush=True)
                continue
            quantized = np.round(res["images"] * 255) / 255
            row = {"max_abs_image": float(np.abs(quantized - png).max()),
                   "max_abs_image_255": int(round(float(np.abs(quantized - png).max()) * 255)),
                   "timesteps_equal": res["timesteps"] == meta["timesteps"],
                   "max_abs_step_latents": [float(x) for x in np.abs(res["latents"] - latents).reshape(len(latents), -1).max(1)]}
            if floats is not None:
                row["max_abs_image_float"] = float(np.abs(res["images"] - floats).max())
            report[key] = row
            bad = row["max_abs_image_255"] > 1 or row.get("max_abs_image_float", 0) > FP32_LIMIT or not row["timesteps_equal"]
            print(f"{'MISMATCH ' if bad else ''}{key}: {json.dumps(row)}", flush=True)
    report_path.write_text(json.dumps(dict(sorted(report.items())), indent=1) + "\n")


if __name__ == "__main__":
    main()
