"""Writes test/fixtures/conformance/manifest.json: tool versions, the commands
that made each export, every golden case, the tokenizer goldens and sizes.

Entries other tools add (other export kinds) are kept: an export folder's
entry keeps the `command` an earlier manifest gave it unless this tool made
that folder.

    python tools/reference/manifest.py
"""
from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_onnx  # noqa: E402
import flux_sd3  # noqa: E402
import flux_sd3_export  # noqa: E402
import pipelines  # noqa: E402
from cases import CASES  # noqa: E402
from flux_sd3_cases import CASES as FLUX_SD3_CASES  # noqa: E402
from layout import CONFORMANCE as FIXTURES, REPO, tree_size as size  # noqa: E402

PACKAGES = ["torch", "diffusers", "transformers", "tokenizers", "optimum", "optimum-onnx", "optimum-intel", "onnx", "onnxruntime",
            "openvino", "openvino-genai", "numpy", "pillow"]


def export_folders() -> list[Path]:
    return sorted(p.parent for p in FIXTURES.glob("*/*/graph.pbtxt"))


def main() -> None:
    path = FIXTURES / "manifest.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old_exports = old.get("exports", {})
    versions = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    exports = {}
    for folder in export_folders():
        rel = folder.relative_to(FIXTURES).as_posix()
        pipeline, kind = folder.parent.name, folder.name
        entry = dict(old_exports.get(rel, {}))
        mine = kind.startswith("optimum-onnx-") and pipeline in pipelines.PIPELINES
        if mine:
            dtype = kind.removeprefix("optimum-onnx-")
            cmd = export_onnx.export_command(pipeline, dtype, Path(rel))
            entry["command"] = f"cd tools/reference/.cache && optimum-cli {' '.join(cmd[1:-1])} ../../../test/fixtures/conformance/{rel}"
            entry["made_by"] = "tools/reference/export_onnx.py"
        if kind.startswith("optimum-onnx-") and pipeline in flux_sd3.PIPELINES:
            cmd = flux_sd3_export.export_command(pipeline, kind.removeprefix("optimum-onnx-"), Path(rel))
            entry["command"] = f"cd tools/reference/.cache && optimum-cli {' '.join(cmd[1:-1])} ../../../test/fixtures/conformance/{rel}"
            entry["made_by"] = "tools/reference/flux_sd3_export.py"
            entry["signatures"] = flux_sd3_export.signatures(folder)
            entry |= flux_sd3_export.NOTES.get(pipeline, {})
        entry.update(pipeline=pipeline, kind=kind, bytes=size(folder),
                     files=sorted(f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()))
        exports[rel] = entry
    cases = {}
    for case in CASES + FLUX_SD3_CASES:
        d = FIXTURES / "goldens" / case["id"]
        if (d / "case.json").exists():
            meta = json.loads((d / "case.json").read_text())
            cases[case["id"]] = {"pipeline": meta["pipeline"], "pipeline_class": meta["pipeline_class"], **meta["request"],
                                 "draws": [c["site"] for c in meta["draws"]["calls"]], "float_output": "output_float" in meta}
            if case.get("extra"):
                cases[case["id"]]["extra"] = case["extra"]
    manifest = {
        **{k: v for k, v in old.items() if k not in ("versions", "commands", "pipelines", "exports", "cases", "sizes")},
        "versions": versions,
        "commands": {
            "venv": "python3.11 -m venv tools/reference/.venv && tools/reference/.venv/bin/pip install -r tools/reference/requirements.txt",
            "venv_legacy": "python3.11 -m venv tools/reference/.venv-legacy && tools/reference/.venv-legacy/bin/pip install -r "
                           "tools/reference/requirements-legacy.txt && tools/reference/.venv-legacy/bin/pip install --no-deps --target "
                           "tools/reference/.venv-legacy/optimum-1.22 optimum==1.22.0",
            "all": "npm run build && tools/reference/.venv/bin/python tools/reference/make_all.py",
            "pipelines": "tools/reference/.venv/bin/python tools/reference/pipelines.py",
            "exports": "tools/reference/.venv/bin/python tools/reference/export_onnx.py",
            "exports_legacy": "tools/reference/.venv-legacy/bin/python tools/reference/export_legacy.py",
            "openvino": "tools/reference/.venv/bin/python tools/reference/openvino_ref.py",
            "goldens": "tools/reference/.venv/bin/python tools/reference/goldens.py",
            "tokens": "tools/reference/.venv/bin/python tools/reference/tokens.py",
            "check": "tools/reference/.venv/bin/python tools/reference/check_onnx.py",
            "manifest": "tools/reference/.venv/bin/python tools/reference/manifest.py",
            "flux_sd3": "tools/reference/.venv/bin/python tools/reference/flux_sd3.py && (same python) flux_sd3_export.py && flux_sd3_goldens.py"
                        " && flux_sd3_check.py",
            "flux_sd3_openvino": "tools/reference/.venv/bin/python tools/reference/flux_sd3_openvino.py",
        },
        "pipelines": {name: {"kind": s["kind"], "seed": s["seed"], "scheduler": s["scheduler"][0], "unet": s["unet"],
                             "text_encoder": s["text"], **({"text_encoder_2": s["text2"]} if "text2" in s else {}),
                             "vae": pipelines.VAE, "vae_scaling_factor": s["vae_scale"],
                             "tokenizer_style": s["tokenizer"], **({"tokenizer_2_style": s["tokenizer2"]} if "tokenizer2" in s else {})}
                      for name, s in pipelines.PIPELINES.items()} | {name: flux_sd3.describe(name) for name in flux_sd3.PIPELINES},
        "exports": exports,
        "cases": cases,
        "sizes": {"exports_bytes": sum(e["bytes"] for e in exports.values()), "goldens_bytes": size(FIXTURES / "goldens"),
                  # Everything but this file, whose own size would change with each rewrite.
                  "total_bytes": size(FIXTURES) - (path.stat().st_size if path.exists() else 0)},
    }
    path.write_text(json.dumps(manifest, indent=1, default=list) + "\n")
    print(f"{path.relative_to(REPO)}: {len(exports)} exports, {len(cases)} cases, {manifest['sizes']['total_bytes'] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
