"""Exports the tiny FLUX/SD3 pipelines (flux_sd3.py) with optimum-onnx's
`optimum-cli export onnx --task text-to-image` (one export serves text-to-image,
image-to-image and inpainting: vae_encoder is always exported) into
test/fixtures/conformance/<pipeline>/optimum-onnx-fp32/ (and -fp16/ for flux-schnell and sd3,
with export_onnx.py's fp16 options), with graph.pbtxt, and
prints each ONNX file's input/output signature (names, dtypes, shapes).

    python tools/reference/flux_sd3_export.py [pipeline ...]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_onnx  # noqa: E402
import flux_sd3  # noqa: E402
from export_onnx import FIXTURES, OPTIMUM_CLI, REPO  # noqa: E402
from pipelines import CACHE  # noqa: E402

FP16 = {"flux-schnell", "sd3"}

# Facts about the exports a reader of the signatures needs (the manifest carries them beside each export).
NOTES = {
    "flux-schnell": {
        "serves_as": "black-forest-labs/FLUX.1-schnell: the fixture for the seed demo's requests (OVMS demo curl: 'three cats', "
                     "num_inference_steps 2, size 512x512; its Python snippet: rng_seed 42, num_inference_steps 3, default size). "
                     "Serve this folder with --model_name black-forest-labs/FLUX.1-schnell --model_path <this folder>.",
        "seed_demo_on_optimum_ort": "ORTFluxPipeline on this folder (Python, 1 process, this machine): the curl's 512x512, 2 steps "
                                    "took 0.9 s, peak RSS 1.2 GB; the Python snippet's default 1024x1024, 3 steps took 5.3 s, peak RSS "
                                    "3.7 GB (the VAE decoder's mid-block attention over 128x128 latent positions: 16384^2 scores).",
        "edit_pipelines": "optimum-onnx has no ORT class for FLUX image-to-image/inpainting (optimum/onnxruntime/modeling_diffusion.py: "
                          "only ORT_TEXT2IMAGE_PIPELINES_MAPPING['flux'] = ORTFluxPipeline, :1158; ORTPipelineForImage2Image raises "
                          "\"ORTPipelineForTask can't find a pipeline linked to FluxPipeline for flux\", :1225); the export itself has "
                          "vae_encoder, and flux_sd3_check.py runs diffusers' Flux{Img2Img,Inpaint}Pipeline on its ONNX components.",
    },
    "sd3": {
        "exporter_quirk": "text_encoder*/text_embeds is declared [batch_size, sequence_length] (optimum-onnx "
                          "exporters/onnx/model_configs.py:1244, CLIPTextWithProjectionOnnxConfig.outputs names axis 1 like "
                          "last_hidden_state's) but is [batch_size, projection_dim] at run time; hidden_states.{0..num_layers} are "
                          "every layer's output (diffusers uses hidden_states[-2]).",
    },
}
for _name in ("flux-schnell", "flux-dev"):
    NOTES.setdefault(_name, {})["ids_dtype"] = ("transformer img_ids/txt_ids are int64 inputs in the export (diffusers builds them as "
                                                "float; optimum's ORT wrapper casts to the declared dtype); timestep is float [step] = t/1000")


def export_command(name: str, dtype: str, out: Path) -> list[str]:
    # fp16: the fp16 VAE decoder differs from its PyTorch fp16 reference by 0.012 (flux) / 0.016 (sd3), over --atol 1e-2: saved with a warning.
    fp16 = ["--dtype", "fp16", "--atol", "1e-2"] if dtype == "fp16" else []
    return [str(OPTIMUM_CLI), "export", "onnx", "--model", f"pipelines/{name}", "--task", "text-to-image", *fp16, str(out)]


def signatures(folder: Path) -> dict:
    """{component: {"inputs"|"outputs": {name: {"dtype", "shape"}}}} read from each exported model.onnx (dims: int or symbolic name)."""
    import onnx

    def io(values) -> dict:
        out = {}
        for v in values:
            t = v.type.tensor_type
            out[v.name] = {"dtype": onnx.TensorProto.DataType.Name(t.elem_type).lower(),
                           "shape": [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]}
        return out

    sigs = {}
    for model in sorted(folder.glob("*/model.onnx")):
        m = onnx.load(str(model), load_external_data=False)
        sigs[model.parent.name] = {"opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
                                   "inputs": io(m.graph.input), "outputs": io(m.graph.output)}
    return sigs


def export(name: str, dtype: str) -> Path:
    out = FIXTURES / name / f"optimum-onnx-{dtype}"
    shutil.rmtree(out, ignore_errors=True)
    flux_sd3.ensure(name)
    # From .cache, so model_index.json records the same relative _name_or_path every run (as export_onnx.py).
    subprocess.run(export_command(name, dtype, out), check=True, cwd=CACHE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    export_onnx.write_graph(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(flux_sd3.PIPELINES))
    args = ap.parse_args()
    for name in args.names:
        for dtype in ["fp32"] + (["fp16"] if name in FP16 else []):
            out = export(name, dtype)
            size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            print(f"{name} {dtype}: {out.relative_to(REPO)} ({size / 1024:.0f} KiB)", flush=True)
            print(json.dumps(signatures(out), indent=1), flush=True)


if __name__ == "__main__":
    main()
