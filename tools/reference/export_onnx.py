"""Exports the saved tiny pipelines with the current real exporter (optimum-onnx's
`optimum-cli export onnx`), fp32 for every pipeline and fp16 for some, into
test/fixtures/conformance/<pipeline>/<export-kind>/, each with the graph.pbtxt
graphserve's own `--configure` writes (needs `npm run build` first).

    python tools/reference/export_onnx.py [pipeline ...]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipelines  # noqa: E402
from layout import CONFORMANCE as FIXTURES, REPO, shown, tree_size  # noqa: E402

OPTIMUM_CLI = Path(sys.executable).parent / "optimum-cli"

# sd-turbo: most public fp16 ONNX repos are SD-Turbo (schmuell/sd-turbo-ort-web, jdp8/sd-turbo-onnx, tlwu/sd-turbo-onnxruntime).
FP16 = {"sd1", "sdxl", "sd-turbo"}


def export_command(name: str, dtype: str, out: Path) -> list[str]:
    cmd = [str(OPTIMUM_CLI), "export", "onnx", "--model", f"pipelines/{name}", "--task", pipelines.export_task(name)]
    if dtype == "fp16":
        # CPU fp16 export: the tiny fp16 UNet differs from the fp32 PyTorch reference by ~4e-3, over
        # optimum's default atol (1e-5 → validation "fails" after saving). The models are saved either way.
        cmd += ["--dtype", "fp16", "--atol", "1e-2"]
    return cmd + [str(out)]


def write_graph(folder: Path, settings: Sequence[str] = ()) -> None:
    """folder/graph.pbtxt as graphserve's `--configure` writes it; `settings` are its graph flags (e.g. --default_resolution 512x512)."""
    main_js = REPO / "dist" / "src" / "cli" / "main.js"
    if not main_js.exists():
        raise SystemExit(f"{main_js} missing: run `npm run build` first (graph.pbtxt is written by graphserve itself)")
    subprocess.run(["node", str(main_js), "--configure", "--model_path", str(folder), *settings], check=True, stdout=subprocess.DEVNULL)


def export(name: str, dtype: str) -> tuple[Path, list[str]]:
    out = FIXTURES / name / f"optimum-onnx-{dtype}"
    shutil.rmtree(out, ignore_errors=True)
    if not (pipelines.PIPELINES_DIR / name / "model_index.json").exists():
        pipelines.save(name)
    cmd = export_command(name, dtype, out)
    # Run from .cache so model_index.json records the same relative _name_or_path every time.
    subprocess.run(cmd, check=True, cwd=pipelines.CACHE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    write_graph(out)
    return out, ["optimum-cli"] + cmd[1:-1] + [shown(out)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(pipelines.PIPELINES))
    args = ap.parse_args()
    for name in args.names:
        for dtype in ["fp32"] + (["fp16"] if name in FP16 else []):
            out, cmd = export(name, dtype)
            print(f"{name} {dtype}: {shown(out)} ({tree_size(out) / 1024:.0f} KiB) <- {' '.join(cmd)}", flush=True)


if __name__ == "__main__":
    main()
