"""Rebuilds every fixture this tool makes, test/fixtures/conformance/ and
test/fixtures/openvino/ and test/fixtures/seeds/, in order, with two venvs (README.md says how to make them):

  main venv (requirements.txt)          seeds.py → pipelines.py → export_onnx.py
  legacy venv (requirements-legacy.txt) export_legacy.py (optimum 1.23 / 1.22, legacy diffusers layout)
  main venv                             openvino_ref.py → goldens.py → tokens.py → check_onnx.py → manifest.py

and beside each SD/SDXL step its FLUX/SD3 peer (flux_sd3*.py, README.md's "FLUX.1 and SD3").

tokens.py and manifest.py come after every export because they read every
tokenizer folder and every export folder. Run from anywhere with the main
venv's Python, after `npm run build` (graph.pbtxt files are written by
graphserve's own --configure):

    tools/reference/.venv/bin/python tools/reference/make_all.py [--legacy-venv DIR] [--skip-legacy] [--skip-openvino]

A step's own arguments narrow it when run alone (`<step> --help`).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--legacy-venv", type=Path, default=HERE / ".venv-legacy",
                    help="venv of requirements-legacy.txt (default tools/reference/.venv-legacy); optimum 1.22 is looked for "
                         "in DIR/optimum-1.22 unless OPTIMUM_122_PATH says otherwise")
    ap.add_argument("--skip-legacy", action="store_true", help="keep the committed optimum-1.23/1.22/legacy exports")
    ap.add_argument("--skip-openvino", action="store_true", help="keep the committed test/fixtures/openvino")
    args = ap.parse_args()
    main_py, legacy_py = sys.executable, str(args.legacy_venv / "bin" / "python")
    if not args.skip_legacy and not Path(legacy_py).exists():
        raise SystemExit(f"{legacy_py} missing: make the legacy venv (tools/reference/README.md) or pass --legacy-venv / --skip-legacy")
    env = dict(os.environ)
    env.setdefault("OPTIMUM_122_PATH", str(args.legacy_venv / "optimum-1.22"))
    steps = [(main_py, "seeds.py"), (main_py, "pipelines.py"), (main_py, "flux_sd3.py"), (main_py, "export_onnx.py"), (main_py, "flux_sd3_export.py")]
    steps += [] if args.skip_legacy else [(legacy_py, "export_legacy.py")]
    steps += [] if args.skip_openvino else [(main_py, "openvino_ref.py"), (main_py, "flux_sd3_openvino.py")]
    steps += [(main_py, s) for s in ("goldens.py", "flux_sd3_goldens.py", "tokens.py", "check_onnx.py", "flux_sd3_check.py", "manifest.py")]
    for python, step in steps:
        print(f"== {step} ({python})", flush=True)
        subprocess.run([python, str(HERE / step)], check=True, env=env)


if __name__ == "__main__":
    main()
