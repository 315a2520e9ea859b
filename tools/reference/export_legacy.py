"""Older ONNX layouts of the saved tiny pipelines (issue 15, parts a and b), made
in the legacy venv (requirements-legacy.txt: optimum 1.23.3 on torch 2.5.1;
torch >= 2.9 exports through dynamo by default, which these exporters predate).

Export kinds, into test/fixtures/conformance/<pipeline>/<kind>/, each with the
graph.pbtxt graphserve's `--configure` writes (needs `npm run build` first):

- optimum-1.23: `optimum-cli export onnx` of optimum 1.23.3, the last release
  before the scalar timestep: UNet `timestep` int64 `[steps]`, VAE encoder
  output `latent_parameters` (mean ‖ logvar).
- optimum-1.22: the same CLI of optimum 1.22.0 (installed with --no-deps into
  <legacy venv>/optimum-1.22, or OPTIMUM_122_PATH, and put first on PYTHONPATH): timestep int64
  `[steps]`, VAE encoder output `latent_sample`, sampled inside the graph by
  an unseeded RandomNormalLike, so image-to-image on it is not reproducible.
- legacy: the layout of diffusers' old scripts/convert_stable_diffusion_
  checkpoint_to_onnx.py + OnnxStableDiffusion*Pipeline.save_pretrained: no
  per-component config.json, model_index.json naming OnnxRuntimeModel
  components, text_encoder `input_ids` int32, UNet `timestep` float32
  `[batch]`, UNet weights in one external file `weights.pb`, VAE encoder
  output `latent_sample` (sampled in the graph), opset 14. That script loads
  a StableDiffusionPipeline only: there is no legacy layout for SDXL.

Each folder's entry in test/fixtures/conformance/manifest.json (`exports`,
kept by manifest.py) gets the command, this venv's versions and every
component's inputs and outputs; `--manifest-only` rewrites those entries from
the folders already there.

    tools/reference/.venv-legacy/bin/python tools/reference/export_legacy.py [pipeline ...] [--kinds KIND ...] [--manifest-only]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pipelines  # noqa: E402
from export_onnx import write_graph  # noqa: E402
from layout import CONFORMANCE as FIXTURES, shown, tree_size  # noqa: E402

# optimum 1.22.0 installed with --no-deps beside this venv (README.md), put first on PYTHONPATH for its kind.
OPTIMUM_122 = Path(os.environ.get("OPTIMUM_122_PATH", Path(sys.prefix) / "optimum-1.22"))
KINDS = {
    "optimum-1.23": ["sd1", "sdxl", "sd-inpaint"],
    "optimum-1.22": ["sd1", "sdxl"],
    "legacy": ["sd1", "sd-inpaint"],
}
MANIFEST = FIXTURES / "manifest.json"
VERSIONS = ["torch", "transformers", "diffusers", "optimum", "onnx", "onnxruntime"]


def saved(name: str) -> Path:
    folder = pipelines.PIPELINES_DIR / name
    if not (folder / "model_index.json").exists():
        # Built by the main venv (pipelines.py), so every export carries the same weights.
        raise SystemExit(f"{folder} missing: run `python tools/reference/pipelines.py {name}` in the main venv first")
    return folder


def optimum_command(name: str) -> list[str]:
    return ["optimum-cli", "export", "onnx", "--model", f"pipelines/{name}", "--task", pipelines.export_task(name)]


def optimum_export(name: str, kind: str, out: Path) -> None:
    env = dict(os.environ)
    if kind == "optimum-1.22":
        env["PYTHONPATH"] = str(OPTIMUM_122)
    cmd = optimum_command(name)
    subprocess.run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:], str(out)], check=True, cwd=pipelines.CACHE, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def shown_command(name: str, kind: str) -> str:
    """The command as manifest.json gives commands (run from the repository root)."""
    venv = shown(Path(sys.prefix))
    if kind == "legacy":
        return f"{venv}/bin/python tools/reference/export_legacy.py {name} --kinds legacy"
    env = f"PYTHONPATH={shown(OPTIMUM_122)} " if kind == "optimum-1.22" else ""
    return (f"cd tools/reference/.cache && {env}{venv}/bin/{' '.join(optimum_command(name))} "
            f"../../../test/fixtures/conformance/{name}/{kind}")


def torch_export(module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, args, path.as_posix(), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      do_constant_folding=True, opset_version=14)


def legacy_export(name: str, out: Path) -> None:
    """The old diffusers converter's graphs and save layout, written from its documented facts (see module doc)."""
    import onnx
    import torch
    import diffusers

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(saved(name), torch_dtype=torch.float32)
    image_axes = {0: "batch", 1: "channels", 2: "height", 3: "width"}
    with torch.no_grad():
        tokens = pipe.tokenizer("A sample prompt", padding="max_length", max_length=pipe.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids.to(torch.int32)
        torch_export(pipe.text_encoder, (tokens,), out / "text_encoder" / "model.onnx", ["input_ids"],
                     ["last_hidden_state", "pooler_output"], {"input_ids": {0: "batch", 1: "sequence"}})
        unet_cfg = pipe.unet.config
        hidden = pipe.text_encoder.config.hidden_size
        n_tokens = pipe.text_encoder.config.max_position_embeddings
        unet_path = out / "unet" / "model.onnx"
        torch_export(pipe.unet, (torch.randn(2, unet_cfg.in_channels, unet_cfg.sample_size, unet_cfg.sample_size),
                                 torch.randn(2), torch.randn(2, n_tokens, hidden), False),
                     unet_path, ["sample", "timestep", "encoder_hidden_states", "return_dict"], ["out_sample"],
                     {"sample": image_axes, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch", 1: "sequence"}})
        unet = onnx.load(unet_path.as_posix())
        shutil.rmtree(unet_path.parent)
        unet_path.parent.mkdir()
        onnx.save_model(unet, unet_path.as_posix(), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="weights.pb", convert_attribute=False)
        vae = pipe.vae
        vae_cfg = vae.config

        def sampled_latent(sample, return_dict):  # that layout's encoder outputs a drawn latent, not the distribution
            return vae.encode(sample).latent_dist.sample()

        vae.forward = sampled_latent
        torch_export(vae, (torch.randn(1, vae_cfg.in_channels, vae_cfg.sample_size, vae_cfg.sample_size), False),
                     out / "vae_encoder" / "model.onnx", ["sample", "return_dict"], ["latent_sample"], {"sample": image_axes})
        vae.forward = vae.decode
        torch_export(vae, (torch.randn(1, vae_cfg.latent_channels, unet_cfg.sample_size, unet_cfg.sample_size), False),
                     out / "vae_decoder" / "model.onnx", ["latent_sample", "return_dict"], ["sample"], {"latent_sample": image_axes})

    component = lambda sub: diffusers.OnnxRuntimeModel.from_pretrained(out / sub)  # noqa: E731
    cls = diffusers.OnnxStableDiffusionInpaintPipeline if pipelines.PIPELINES[name]["kind"] == "inpaint" else diffusers.OnnxStableDiffusionPipeline
    onnx_pipe = cls(vae_encoder=component("vae_encoder"), vae_decoder=component("vae_decoder"), text_encoder=component("text_encoder"),
                    tokenizer=pipe.tokenizer, unet=component("unet"), scheduler=pipe.scheduler, safety_checker=None,
                    feature_extractor=None, requires_safety_checker=False)
    onnx_pipe.save_pretrained(out)


def describe(out: Path) -> dict:
    """Input/output names, types and dims of every component, for the manifest."""
    import onnx

    def io(v) -> str:
        dims = ", ".join(str(d.dim_param or d.dim_value) for d in v.type.tensor_type.shape.dim)
        return f"{v.name}: {onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower()} [{dims}]"

    info = {}
    for model in sorted(out.glob("*/model.onnx")):
        m = onnx.load(model.as_posix(), load_external_data=False)
        info[model.parent.name] = {"opset": m.opset_import[0].version, "inputs": [io(v) for v in m.graph.input],
                                   "outputs": [io(v) for v in m.graph.output]}
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--kinds", nargs="*", choices=list(KINDS), default=list(KINDS), help="put pipeline names before --kinds")
    ap.add_argument("--manifest-only", action="store_true", help="only rewrite the manifest entries of the existing folders")
    args = ap.parse_args()
    versions = {p: version(p) for p in VERSIONS}
    if "optimum-1.22" in args.kinds and not args.manifest_only and not (OPTIMUM_122 / "optimum").is_dir():
        # Without it the CLI would silently be this venv's optimum 1.23 and the folder mislabelled.
        raise SystemExit(f"{OPTIMUM_122}/optimum missing: pip install --no-deps --target {OPTIMUM_122} optimum==1.22.0")
    for kind in args.kinds:
        for name in KINDS[kind]:
            if args.names and name not in args.names:
                continue
            out = FIXTURES / name / kind
            if not args.manifest_only:
                saved(name)
                shutil.rmtree(out, ignore_errors=True)
                legacy_export(name, out) if kind == "legacy" else optimum_export(name, kind, out)
                write_graph(out)
            size = tree_size(out)
            manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
            entry = manifest.setdefault("exports", {}).setdefault(f"{name}/{kind}", {})
            entry.update(command=shown_command(name, kind), made_by="tools/reference/export_legacy.py",
                         versions=dict(versions, optimum="1.22.0") if kind == "optimum-1.22" else versions,
                         pipeline=name, kind=kind, bytes=size, models=describe(out))
            MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
            print(f"{name} {kind}: {shown(out)} ({size / 1024:.0f} KiB)", flush=True)


if __name__ == "__main__":
    main()
