"""Rebuilds every fixture under test/fixtures/conformance made by this tool, in order:
tiny pipelines → optimum-onnx exports → diffusers goldens → token goldens →
ONNX Runtime cross-check → manifest. Run from anywhere after `npm run build`.

    tools/reference/.venv/bin/python tools/reference/make_all.py
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEPS = ["pipelines.py", "flux_sd3.py", "export_onnx.py", "flux_sd3_export.py", "goldens.py", "flux_sd3_goldens.py", "tokens.py", "check_onnx.py",
         "flux_sd3_check.py", "manifest.py"]

if __name__ == "__main__":
    for step in STEPS:
        print(f"== {step}", flush=True)
        subprocess.run([sys.executable, str(HERE / step)], check=True)
