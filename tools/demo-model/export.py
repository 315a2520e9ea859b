"""Exports the trained demo model with the real exporter (optimum-onnx's
main_export, the function `optimum-cli export onnx` runs; fp32) into the
committed model folder, with its graph.pbtxt and a manifest saying how it was
made. Optimum's own validation (PyTorch vs ONNX Runtime on dummy inputs) is
off: on the 512×512 VAE it takes minutes on a shared 2-core machine, and
graphserve's tests check what the exported model draws.

    python tools/demo-model/export.py [--out models/demo]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "reference"))
import shapes  # noqa: E402
from export_onnx import write_graph  # noqa: E402  (tools/reference)
from model import CACHE, SCHEDULER, build_text_encoder, build_tokenizer, build_unet, build_vae, expand_vae, noise_schedule  # noqa: E402

REPO = HERE.parents[1]
CKPT = CACHE / "checkpoints"

# The demo's servable, written by graphserve's own --configure (as the reference tool writes its exports'):
# 512×512 by default (the UNet's native 8×8 latents), up to 1024×1024; enough steps allowed for a run long
# enough to watch in the web UI and cancel.
GRAPH_SETTINGS = ["--default_resolution", "512x512", "--max_resolution", "1024x1024",
                  "--default_num_inference_steps", "20", "--max_num_inference_steps", "500"]


def pipeline_folder() -> tuple[Path, dict]:
    """The trained weights (EMA) as a diffusers StableDiffusionPipeline folder."""
    import diffusers

    vae_state = torch.load(CKPT / "vae.pt", weights_only=False)
    unet_state = torch.load(CKPT / "unet.pt", weights_only=False)
    vae = build_vae()
    vae.load_state_dict(vae_state["model"])
    vae.register_to_config(scaling_factor=unet_state["scale"])
    text, unet = build_text_encoder(), build_unet()
    text.load_state_dict(unet_state["ema"]["text"])
    unet.load_state_dict(unet_state["ema"]["unet"])
    pipe = diffusers.StableDiffusionPipeline(
        vae=expand_vae(vae), text_encoder=text.eval(), tokenizer=build_tokenizer(), unet=unet.eval(), scheduler=noise_schedule(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    out = CACHE / "pipeline"
    shutil.rmtree(out, ignore_errors=True)
    pipe.save_pretrained(out)
    info = dict(vae_steps=vae_state["step"], unet_steps=unet_state["step"], final_loss=unet_state.get("loss"), latent_scale=unet_state["scale"])
    return out, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "models" / "demo"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder, info = pipeline_folder()
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    from optimum.exporters.onnx import main_export
    main_export(str(folder), out, task="text-to-image", do_validation=False)
    write_graph(out, GRAPH_SETTINGS)
    shapes.write_prompts(out / "held-out-prompts.txt")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    runs = json.loads((CACHE / "train-runs.json").read_text()) if (CACHE / "train-runs.json").exists() else []
    manifest = {
        "made_by": "tools/demo-model (python tools/demo-model/make.py)",
        "export": "optimum.exporters.onnx.main_export(<pipeline>, <out>, task='text-to-image', do_validation=False), fp32",
        "training": {**info, "runs": runs, "wall_seconds": sum(r["seconds"] for r in runs), "held_out": [shapes.caption(*c) for c in shapes.held_out()]},
        "scheduler": SCHEDULER[0],
        "versions": {p: version(p) for p in ("torch", "diffusers", "transformers", "optimum-onnx", "onnx", "onnxruntime")},
        "python": platform.python_version(),
        "files": {str(p.relative_to(out)): {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in files},
        "total_bytes": sum(p.stat().st_size for p in files),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{out}: {manifest['total_bytes'] / 1e6:.1f} MB, unet steps {info['unet_steps']}, loss {info['final_loss']}")


if __name__ == "__main__":
    main()
