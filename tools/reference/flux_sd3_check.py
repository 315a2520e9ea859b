"""check_onnx.py for the FLUX/SD3 cases: each golden rerun on the committed
ONNX export through optimum's ORT pipelines (diffusers' pipeline code on ONNX
Runtime), replaying the recorded draws; results merged into onnx-check.json.

optimum-onnx has no ORT class for FLUX image-to-image or inpainting (only
ORTFluxPipeline), so those run diffusers' FluxImg2ImgPipeline /
FluxInpaintPipeline built from ORTFluxPipeline's ONNX components.

    python tools/reference/flux_sd3_check.py [case-id-prefix ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import diffusers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_onnx  # noqa: E402
from flux_sd3_cases import CASES  # noqa: E402

FLUX_EDIT = {"image-to-image": diffusers.FluxImg2ImgPipeline, "inpainting": diffusers.FluxInpaintPipeline}


def pipe_for(export: Path, mode: str):
    if mode == "text-to-image" or not export.parent.name.startswith("flux"):
        return check_onnx.ort_pipe(export, mode)
    t2i = check_onnx.ort_pipe(export, "text-to-image")
    pipe = FLUX_EDIT[mode](**t2i.components, scheduler=t2i.scheduler, tokenizer=t2i.tokenizer, tokenizer_2=t2i.tokenizer_2)
    pipe.set_progress_bar_config(disable=True)
    return pipe


if __name__ == "__main__":
    check_onnx.main(CASES, pipe_for)
