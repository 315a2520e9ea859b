"""OpenVINO side for the tiny FLUX/SD3 pipelines (flux_sd3.py): optimum-intel IR
exports as OVMS's export_model.py would make them (fp32 here, see
openvino_ref.py), with its graph.pbtxt, into test/fixtures/openvino/<name>/, and
what openvino_genai does with them: which pipeline classes load, their default
generation config, and golden images (GenAI's own rng_seed noise, and the
initial latents torch draws, compared with diffusers on the same latents).
Results in test/fixtures/openvino/goldens/<name>/ and manifest.json's `flux_sd3`.

    /work/venv-ref/bin/python tools/reference/flux_sd3_openvino.py [--skip-export] [name ...]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import traceback
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flux_sd3  # noqa: E402
from cases import input_image  # noqa: E402
from layout import tree_size  # noqa: E402
from openvino_ref import (GOLDEN_PROPERTIES, GRAPH_PBTXT, OUT, PIPELINE_CLASSES, WEIGHT_FORMAT, config_dict, fixed_generator,  # noqa: E402
                          generate, save_png, sha256)
from pipelines import CACHE  # noqa: E402

NAMES = ["flux-schnell", "sd3"]
PROMPT = "a photo of a cat"
STORE_PNG_MAX = 128  # larger outputs (the demo's 512x512) are recorded by hash only: a noise PNG that size is ~800 KB


def export_command(name: str) -> list[str]:
    return ["optimum-cli", "export", "openvino", "--model", f"pipelines/{name}", "--task", "text-to-image", "--weight-format", WEIGHT_FORMAT,
            str(OUT / name)]


def export_ir(name: str) -> Path:
    flux_sd3.ensure(name)
    dest = OUT / name
    shutil.rmtree(dest, ignore_errors=True)
    cmd = export_command(name)
    subprocess.run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:]], cwd=CACHE, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (dest / "graph.pbtxt").write_text(GRAPH_PBTXT)
    return dest


def cases_for(name: str) -> list[dict]:
    base = dict(prompt=PROMPT, width=64, height=64)
    if name == "sd3":
        base |= dict(negative_prompt="blurry", guidance_scale=7.0, max_sequence_length=32)
    else:
        base |= dict(max_sequence_length=32)
    return [
        dict(id="t2i-seed42", mode="text2image", noise="rng_seed", params=dict(base, num_inference_steps=3, rng_seed=42)),
        dict(id="t2i-torch-seed42", mode="text2image", noise="torch", params=dict(base, num_inference_steps=3), seed=42),
        dict(id="i2i-seed42", mode="image2image", noise="rng_seed", params=dict(base, num_inference_steps=4, strength=0.6, rng_seed=42)),
        dict(id="inpaint-seed42", mode="inpainting", noise="rng_seed", params=dict(base, num_inference_steps=4, strength=0.8, rng_seed=42)),
        # The seed demo's two requests (everything else GenAI's default): the curl and the Python snippet.
        dict(id="t2i-ovms-curl", mode="text2image", noise="rng_seed", params=dict(prompt="three cats", num_inference_steps=2, width=512, height=512)),
        dict(id="t2i-ovms-python", mode="text2image", noise="rng_seed", params=dict(prompt="three cats", num_inference_steps=3, rng_seed=42)),
        # The same pipeline object once more after a max_sequence_length 32 call: GenAI reshapes T5 on the first call and keeps it.
        dict(id="t2i-seq32-then-default-same-pipeline", mode="text2image", noise="rng_seed", reuse=True,
             params=dict(prompt="three cats", num_inference_steps=2, width=64, height=64, rng_seed=42)),
    ]


def diffusers_same_latents(name: str, params: dict, latents: np.ndarray) -> np.ndarray:
    """diffusers text-to-image with GenAI's initial latents (packed for FLUX, as FluxPipeline takes them)."""
    import torch

    import goldens

    pipe = goldens.torch_pipe(name, "text-to-image")
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    lat = torch.from_numpy(latents.copy())
    if name.startswith("flux") and lat.ndim == 4:
        lat = pipe._pack_latents(lat, *lat.shape)
    kw = {k: v for k, v in params.items() if k != "prompt"}
    with torch.no_grad():
        out = pipe(params["prompt"], latents=lat, output_type="np", **kw).images
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def goldens(name: str, ir: Path, gold: Path) -> dict:
    import torch
    import openvino_genai as ov_genai

    image, mask = np.asarray(input_image("checker64")), np.asarray(input_image("square-mask64"))
    save_png(gold / "init.png", image)
    save_png(gold / "mask.png", mask)
    defaults, refused = {}, {}
    for mode, cls in PIPELINE_CLASSES.items():
        try:
            defaults[mode] = config_dict(getattr(ov_genai, cls)(str(ir), "CPU", **GOLDEN_PROPERTIES).get_generation_config())
        except Exception as e:  # recorded: what GenAI refuses is a finding
            refused[mode] = f"{type(e).__name__}: {e}".splitlines()[0][:400]
    results = []
    for case in cases_for(name):
        row = {k: case[k] for k in ("id", "mode", "noise")} | {"params": case["params"]}
        if case["mode"] in refused:
            results.append(row | {"error": f"{PIPELINE_CLASSES[case['mode']]} did not load"})
            continue
        if case.get("reuse"):
            row["reused_pipeline_of"] = "t2i-seed42"
            pipe = t2i_after_seq32
        else:  # a fresh pipeline per case: GenAI keeps T5 reshaped to the first call's max_sequence_length
            pipe = getattr(ov_genai, PIPELINE_CLASSES[case["mode"]])(str(ir), "CPU", **GOLDEN_PROPERTIES)
        if case["id"] == "t2i-seed42":
            t2i_after_seq32 = pipe
        try:
            extra = {}
            if case["noise"] == "torch":
                p = case["params"]
                g = torch.Generator("cpu").manual_seed(case["seed"])
                latents = torch.randn((1, 16, p["height"] // 8, p["width"] // 8), generator=g).numpy()
                gen = fixed_generator(latents)
                extra["generator"] = gen
            out = generate(pipe, case["mode"], case["params"], image, mask, **extra)
            row["shape"] = list(out.shape)
            row["sha256"] = sha256(out.tobytes())
            if out.shape[1] <= STORE_PNG_MAX:
                row["outputs"] = []
                for i, img in enumerate(out):
                    save_png(gold / f"{case['id']}-{i}.png", img)
                    row["outputs"].append(f"{case['id']}-{i}.png")
            if case["noise"] == "torch":
                row["genai_randn_calls"] = gen.calls
                ref = diffusers_same_latents(name, case["params"], latents.reshape(gen.calls[0]))
                row["diffusers_max_abs_255"] = int(np.abs(ref.astype(int) - out.astype(int)).max())
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:400]
            traceback.print_exc()
        print(name, json.dumps(row)[:300], flush=True)
        results.append(row)
    return {"pipelines_loaded": sorted(defaults), "refused": refused, "default_generation_config": defaults, "cases": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=NAMES)
    ap.add_argument("--skip-export", action="store_true")
    args = ap.parse_args()
    manifest_path = OUT / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    section = manifest.setdefault("flux_sd3", {})
    for name in args.names:
        ir = OUT / name if args.skip_export else export_ir(name)
        gold = OUT / "goldens" / name
        shutil.rmtree(gold, ignore_errors=True)
        gold.mkdir(parents=True)
        section[name] = {
            "made_by": "tools/reference/flux_sd3_openvino.py",
            "export_command": "cd tools/reference/.cache && " + " ".join(export_command(name)[:-1] + [f"../../../test/fixtures/openvino/{name}"]),
            "pipeline": flux_sd3.describe(name),
            "bytes": tree_size(ir),
            "files": sorted(f.relative_to(ir).as_posix() for f in ir.rglob("*") if f.is_file()),
            "genai": goldens(name, ir, gold),
            "golden_properties": GOLDEN_PROPERTIES,
            "versions": {p: version(p) for p in ("openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "diffusers", "torch")},
        }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
