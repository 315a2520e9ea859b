"""Older ONNX layouts of the saved tiny pipelines (issue 15, parts a and b), made
in the legacy venv (requirements-legacy.txt: optimum 1.23.3 on torch 2.5.1;
torch >= 2.9 exports through dynamo by default, which these exporters predate).

Export kinds, into test/fixtures/conformance/<pipeline>/<kind>/, each with the
graph.pbtxt graphserve's `--configure` writes (needs `npm run build` first):

- optimum-1.23: `optimum-cli export onnx` of optimum 1.23.3, the last release
  before the scalar timestep: UNet `timestep` int64 `[steps]`, VAE encoder
  output `latent_parameters` (mean ‖ logvar).
- optimum-1.22: the same CLI of optimum 1.22.0 (installed with --no-deps into
  /work/venvs/optimum-1.22 and put first on PYTHONPATH): timestep int64
  `[steps]`, VAE encoder output `latent_sample`, sampled inside the graph by
  an unseeded RandomNormalLike, so image-to-image on it is not reproducible.
- legacy: the layout of diffusers' old scripts/convert_stable_diffusion_
  checkpoint_to_onnx.py + OnnxStableDiffusion*Pipeline.save_pretrained: no
  per-component config.json, model_index.json naming OnnxRuntimeModel
  components, text_encoder `input_ids` int32, UNet `timestep` float32
  `[batch]`, UNet weights in one external file `weights.pb`, VAE encoder
  output `latent_sample` (sampled in the graph), opset 14. That script loads
  a StableDiffusionPipeline only: there is no legacy layout for SDXL.

    /work/venvs/legacy/bin/python tools/reference/export_legacy.py [--kinds ...] [pipeline ...]
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
from export_onnx import FIXTURES, REPO, task, write_graph  # noqa: E402

OPTIMUM_122 = Path(os.environ.get("OPTIMUM_122_PATH", "/work/venvs/optimum-1.22"))
KINDS = {
    "optimum-1.23": ["sd1", "sdxl", "sd-inpaint"],
    "optimum-1.22": ["sd1", "sdxl"],
    "legacy": ["sd1", "sd-inpaint"],
}
MANIFEST = FIXTURES / "manifest-legacy.json"


def saved(name: str) -> Path:
    folder = pipelines.PIPELINES_DIR / name
    if not (folder / "model_index.json").exists():
        # Built by the main venv (pipelines.py), so every export carries the same weights.
        raise SystemExit(f"{folder} missing: run `python tools/reference/pipelines.py {name}` in the main venv first")
    return folder


def optimum_export(name: str, kind: str, out: Path) -> list[str]:
    cmd = ["optimum-cli", "export", "onnx", "--model", f"pipelines/{name}", "--task", task(name), str(out)]
    env = dict(os.environ)
    if kind == "optimum-1.22":
        env["PYTHONPATH"] = str(OPTIMUM_122)
    subprocess.run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:]], check=True, cwd=pipelines.CACHE, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shown = ["optimum-cli", *cmd[1:-1], str(out.relative_to(REPO))]
    return ([f"PYTHONPATH={OPTIMUM_122}"] if kind == "optimum-1.22" else []) + shown


def torch_export(module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, args, path.as_posix(), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      do_constant_folding=True, opset_version=14)


def legacy_export(name: str, out: Path) -> list[str]:
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
        vae.forward = lambda sample, return_dict: vae.encode(sample, return_dict)[0].sample()
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
    return ["python", "tools/reference/export_legacy.py", name, "--kinds", "legacy"]


def describe(out: Path) -> dict:
    """Input/output names, types and dims of every component, for the manifest."""
    import onnx

    def io(v) -> list:
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        return [v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower(), dims]

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
    args = ap.parse_args()
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"exports": {}}
    manifest["made_by"] = "tools/reference/export_legacy.py in /work/venvs/legacy (tools/reference/requirements-legacy.txt)"
    manifest["versions"] = {p: version(p) for p in ["torch", "transformers", "diffusers", "optimum", "onnx", "onnxruntime"]}
    manifest["versions"]["optimum (optimum-1.22 kind)"] = "1.22.0"
    for kind in args.kinds:
        for name in KINDS[kind]:
            if args.names and name not in args.names:
                continue
            saved(name)
            out = FIXTURES / name / kind
            shutil.rmtree(out, ignore_errors=True)
            cmd = legacy_export(name, out) if kind == "legacy" else optimum_export(name, kind, out)
            write_graph(out)
            size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            manifest["exports"][f"{name}/{kind}"] = {"folder": str(out.relative_to(REPO)), "command": cmd, "bytes": size, "models": describe(out)}
            MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
            print(f"{name} {kind}: {out.relative_to(REPO)} ({size / 1024:.0f} KiB)", flush=True)


if __name__ == "__main__":
    main()
