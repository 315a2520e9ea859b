"""OpenVINO side of the conformance harness (issue 15, part c).

For the tiny pipelines of pipelines.py (the SAME saved weights the ONNX
exports and the diffusers goldens use) this script

1. exports each one to OpenVINO IR with optimum-intel, the way OVMS's
   `export_model.py image_generation` does (`optimum-cli export openvino
   --model <src> --weight-format <fmt> <dir>`), but fp32 instead of the
   script's int8 default so that outputs can be compared across runtimes, and
   with --task (optimum cannot infer it for a local folder; for a hub id it
   reads the same answer from the hub's metadata), and writes the graph.pbtxt
   that script renders with its defaults;
2. runs openvino_genai's Text2Image / Image2Image / Inpainting pipelines on the
   IR folders (what OVMS's ImageGenCalculator runs) and records golden images
   with their seeds and parameters. Two kinds of noise:
   - "rng_seed": GenAI's own generator (CppStdGenerator(seed)), what an OVMS
     request with that rng_seed draws; its initial noise is recorded too, and
     diffusers runs the same request with every one of its random draws
     taken from CppStdGenerator(seed) in call order (GenAI's order), the
     largest GenAI-vs-diffusers difference recorded (`diffusers_same_draws`);
   - "torch": the initial latents diffusers draws from
     torch.Generator("cpu").manual_seed(seed), handed to GenAI through a
     Python Generator; diffusers runs with the same latents and the largest
     GenAI-vs-diffusers pixel difference is recorded (the cross-runtime
     spread between two reference implementations);
3. records what GenAI accepts that graphserve's OpenVINO adapter prepares: its
   default generation config per model (against the adapter's detection), a
   model view whose scheduler/scheduler_config.json has a rewritten
   `_class_name` (symlinked components, as the adapter builds it) for every
   scheduler class, and OVMS plugin_config properties.

Everything lands in test/fixtures/openvino/ (IR folders, goldens, manifest.json).

    tools/reference/.venv/bin/python tools/reference/openvino_ref.py [--skip-export] [name ...]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pipelines  # noqa: E402  (same weights for every export)
from cases import input_image  # noqa: E402
from layout import OPENVINO as OUT, shown, tree_size  # noqa: E402

NAMES = ["sd1", "sdxl", "sd-inpaint"]
WEIGHT_FORMAT = "fp32"

# export_model.py's image_generation template rendered with its defaults
# (target_device "CPU", nothing else set): the header line, then the node.
GRAPH_PBTXT = """# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO
input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"

node: {
  name: "ImageGenExecutor"
  calculator: "ImageGenCalculator"
  input_stream: "HTTP_REQUEST_PAYLOAD:input"
  input_side_packet: "IMAGE_GEN_NODE_RESOURCES:pipes"
  output_stream: "HTTP_RESPONSE_PAYLOAD:output"
  node_options: {
    [type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: {
      models_path: "./",
      device: "CPU",
    }
  }
}
"""

# Scheduler classes tried in a rewritten scheduler_config.json: the adapter's
# set (OPENVINO_SCHEDULERS in src/backends/openvino/openvino-backend.ts) and
# the ones it refuses or leaves out, to see what GenAI really does with them.
SCHEDULER_CLASSES = [
    "LCMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "FlowMatchEulerDiscreteScheduler", "PNDMScheduler",
    "EulerAncestralDiscreteScheduler", "LMSDiscreteScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler",
]

# plugin_config values as OVMS writes them (NUM_STREAMS as a string, CACHE_DIR)
# and a few more, each passed as the pipeline constructor's properties.
PROPERTY_SETS = [
    {"NUM_STREAMS": "1"},
    {"NUM_STREAMS": 1},
    {"CACHE_DIR": "<tmp>/ov-cache"},
    {"NUM_STREAMS": "2", "CACHE_DIR": "<tmp>/ov-cache"},
    {"INFERENCE_PRECISION_HINT": "f32"},
    {"PERFORMANCE_HINT": "LATENCY"},
    {"NOT_A_PROPERTY": "1"},
]

# OpenVINO's CPU plugin runs bf16 by default on CPUs with AMX / AVX512-BF16
# (this machine has both), so an OVMS image depends on the host. Goldens are
# made at f32 (reproducible anywhere); the bf16 spread is recorded beside.
GOLDEN_PROPERTIES = {"INFERENCE_PRECISION_HINT": "f32"}

PROMPT = "a photo of a cat"
NEGATIVE = "blurry"


def run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def export_ir(name: str) -> tuple[Path, list[str]]:
    """optimum-cli export openvino of the saved pipeline; relative paths keep machine paths out of the configs."""
    src = pipelines.PIPELINES_DIR / name
    if not (src / "model_index.json").exists():
        pipelines.save(name)
    dest = OUT / name
    shutil.rmtree(dest, ignore_errors=True)
    # Run from .cache with relative paths: the command recorded is the one run, with no machine paths in it.
    cmd = ["optimum-cli", "export", "openvino", "--model", f"pipelines/{name}", "--task", pipelines.export_task(name),
           "--weight-format", WEIGHT_FORMAT, os.path.relpath(dest, pipelines.CACHE)]
    run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:]], cwd=pipelines.CACHE)
    (dest / "graph.pbtxt").write_text(GRAPH_PBTXT)
    return dest, cmd


# ---------------------------------------------------------------------------
# Files.

def save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, optimize=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# GenAI runs.

def fixed_generator(latents: np.ndarray):
    """A GenAI Generator that hands out `latents` for the first randn_tensor call; records every call's shape."""
    import openvino as ov
    import openvino_genai as ov_genai

    class Fixed(ov_genai.Generator):
        def __init__(self) -> None:
            ov_genai.Generator.__init__(self)
            self.calls: list[list[int]] = []

        def next(self) -> float:
            raise RuntimeError("GenAI asked for a scalar random number; only the initial latents are fixed")

        def randn_tensor(self, shape):
            self.calls.append(list(shape))
            if len(self.calls) > 1:
                raise RuntimeError(f"GenAI drew noise again (shape {list(shape)}); only the initial latents are fixed")
            return ov.Tensor(latents.reshape(list(shape)).astype(np.float32))

    return Fixed()


def to_ov_image(rgb: np.ndarray):
    import openvino as ov

    return ov.Tensor(np.ascontiguousarray(rgb[None]))


def generate(pipe, mode: str, params: dict, image: np.ndarray | None, mask: np.ndarray | None, **extra) -> np.ndarray:
    kwargs = {k: v for k, v in params.items() if k != "prompt"}
    kwargs.update(extra)
    if mode == "text2image":
        out = pipe.generate(params["prompt"], **kwargs)
    elif mode == "image2image":
        out = pipe.generate(params["prompt"], to_ov_image(image), **kwargs)
    else:
        out = pipe.generate(params["prompt"], to_ov_image(image), to_ov_image(mask), **kwargs)
    return np.array(out.data)


def config_dict(cfg) -> dict:
    keys = ["width", "height", "guidance_scale", "num_inference_steps", "num_images_per_prompt", "rng_seed", "strength", "max_sequence_length"]
    return {k: getattr(cfg, k) for k in keys}


PIPELINE_CLASSES = {"text2image": "Text2ImagePipeline", "image2image": "Image2ImagePipeline", "inpainting": "InpaintingPipeline"}


def cases_for(name: str) -> list[dict]:
    """The golden cases: OVMS-style (rng_seed) for every mode, torch-noise text-to-image for the diffusers comparison."""
    guidance = 5.0 if name == "sdxl" else 7.5
    base = dict(prompt=PROMPT, negative_prompt=NEGATIVE, width=64, height=64, guidance_scale=guidance)
    cases = []
    if name != "sd-inpaint":
        cases.append(dict(id="t2i-seed42", mode="text2image", noise="rng_seed", params=dict(base, num_inference_steps=3, rng_seed=42)))
        cases.append(dict(id="t2i-seed7-2img", mode="text2image", noise="rng_seed", params=dict(base, num_inference_steps=2, rng_seed=7, num_images_per_prompt=2)))
        # The OVMS demo's request: rng_seed and num_inference_steps only, everything else GenAI's default.
        cases.append(dict(id="t2i-ovms-demo", mode="text2image", noise="rng_seed", params=dict(prompt="three cats", num_inference_steps=3, rng_seed=42)))
        cases.append(dict(id="t2i-torch-seed42", mode="text2image", noise="torch", params=dict(base, num_inference_steps=3), seed=42))
        cases.append(dict(id="i2i-seed42", mode="image2image", noise="rng_seed", params=dict(base, num_inference_steps=4, strength=0.6, rng_seed=42)))
    cases.append(dict(id="inpaint-seed42", mode="inpainting", noise="rng_seed", params=dict(base, num_inference_steps=4, strength=1.0, rng_seed=42)))
    if name == "sd1":
        # Scheduler overrides (a model view, as the adapter makes): where GenAI and diffusers part.
        for cls, mode in [("EulerDiscreteScheduler", "text2image"), ("EulerAncestralDiscreteScheduler", "text2image"),
                          ("DDIMScheduler", "inpainting"), ("EulerDiscreteScheduler", "inpainting"),
                          ("EulerAncestralDiscreteScheduler", "inpainting")]:
            short = "t2i" if mode == "text2image" else "inpaint"
            extra = dict(strength=1.0) if mode == "inpainting" else {}
            cases.append(dict(id=f"{short}-{cls}-seed42", mode=mode, noise="rng_seed", scheduler=cls,
                              params=dict(base, num_inference_steps=4, rng_seed=42, **extra)))
    return cases


def diffusers_text2image(name: str, params: dict, latents: np.ndarray) -> np.ndarray:
    import torch

    pipe = pipelines.load(name)
    pipe.set_progress_bar_config(disable=True)
    kw = {k: v for k, v in params.items() if k not in ("prompt",)}
    out = pipe(params["prompt"], latents=torch.from_numpy(latents), output_type="np", **kw).images
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


GOLDEN_MODES = {"text2image": "text-to-image", "image2image": "image-to-image", "inpainting": "inpainting"}


def diffusers_with_genai_noise(name: str, mode: str, params: dict, image: np.ndarray, mask: np.ndarray, scheduler: str | None) -> np.ndarray:
    """diffusers on the same request, every randn_tensor call served by CppStdGenerator(rng_seed) in call order, as GenAI draws."""
    import openvino as ov
    import openvino_genai as ov_genai
    import diffusers
    import torch
    from PIL import Image

    import draws
    import goldens as diffusers_goldens

    pipe = diffusers_goldens.torch_pipe(name, GOLDEN_MODES[mode])
    cls = getattr(diffusers, scheduler) if scheduler else type(pipe.scheduler)
    pipe.scheduler = cls.from_config(pipe.scheduler.config)  # fresh state
    gen = ov_genai.CppStdGenerator(params["rng_seed"])

    def randn(shape, generator=None, device=None, dtype=None, layout=None, **kw):
        values = np.asarray(gen.randn_tensor(ov.Shape(list(shape))).data, dtype=np.float32).reshape(list(shape))
        return torch.from_numpy(values.copy()).to(dtype=dtype or torch.float32)

    kw = {k: v for k, v in params.items() if k != "rng_seed"}
    if mode == "image2image":
        kw.pop("width", None), kw.pop("height", None)
    if mode != "text2image":
        kw["image"] = Image.fromarray(image)
    if mode == "inpainting":
        kw["mask_image"] = Image.fromarray(mask)
    with torch.no_grad(), draws.serving(randn):
        out = pipe(output_type="np", **kw).images
    return (np.clip(np.asarray(out), 0, 1) * 255).round().astype(np.uint8)


def torch_latents(seed: int, count: int, size: int) -> np.ndarray:
    import torch

    g = torch.Generator("cpu").manual_seed(seed)
    return torch.randn((count, 4, size // 8, size // 8), generator=g, dtype=torch.float32).numpy()


def goldens(name: str, ir: Path, gold: Path, tmp: Path) -> dict:
    import openvino as ov
    import openvino_genai as ov_genai

    size = 64
    image, mask = np.asarray(input_image("checker64")), np.asarray(input_image("square-mask64"))
    save_png(gold / "init.png", image)
    save_png(gold / "mask.png", mask)
    made: dict[str, object] = {}
    defaults: dict[str, dict] = {}
    for mode, cls in PIPELINE_CLASSES.items():
        try:
            made[mode] = getattr(ov_genai, cls)(str(ir), "CPU", **GOLDEN_PROPERTIES)
            defaults[mode] = config_dict(made[mode].get_generation_config())
        except Exception as e:  # a dedicated inpainting model has no text-to-image, as in OVMS
            defaults[mode] = {"error": str(e).strip().splitlines()[-1]}
    entries = []
    for case in cases_for(name):
        mode = case["mode"]
        pipe = made[mode]
        if case.get("scheduler"):
            view, _ = scheduler_view(ir, case["scheduler"], tmp)
            pipe = getattr(ov_genai, PIPELINE_CLASSES[mode])(str(view), "CPU", **GOLDEN_PROPERTIES)
        params = case["params"]
        entry: dict = dict(id=case["id"], mode=mode, pipeline=PIPELINE_CLASSES[mode], properties=GOLDEN_PROPERTIES, noise=case["noise"], params=params)
        if case.get("scheduler"):
            entry["scheduler"] = case["scheduler"]
        if mode != "text2image":
            entry["image"] = "init.png"
        if mode == "inpainting":
            entry["mask"] = "mask.png"
        if case["noise"] == "rng_seed":
            out = generate(pipe, mode, params, image, mask)
            n = params.get("num_images_per_prompt", 1)
            shape = [n, 4, size // 8, size // 8]
            noise = np.asarray(ov_genai.CppStdGenerator(params["rng_seed"]).randn_tensor(ov.Shape(shape)).data, dtype="<f4")
            (gold / f"{case['id']}.noise.f32").write_bytes(noise.tobytes())
            entry["generator"] = "CppStdGenerator"
            entry["initial_noise"] = {"shape": shape, "file": f"{case['id']}.noise.f32", "format": "float32 little-endian, row-major"}
            ref = diffusers_with_genai_noise(name, mode, params, image, mask, case.get("scheduler"))
            diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
            ref_files = []
            for i, img in enumerate(ref):
                ref_files.append(f"{case['id']}.diffusers.png" if len(ref) == 1 else f"{case['id']}.diffusers.{i}.png")
                save_png(gold / ref_files[-1], img)
            entry["diffusers_same_draws"] = {"images": ref_files, "max_abs_diff": int(diff.max()), "mean_abs_diff": round(float(diff.mean()), 4)}
        else:
            latents = torch_latents(case["seed"], 1, size)
            gen = fixed_generator(latents)
            out = generate(pipe, mode, params, image, mask, generator=gen)
            entry["seed"] = case["seed"]
            entry["generator"] = "torch.Generator('cpu').manual_seed(seed), torch.randn([1, 4, 8, 8]) handed to GenAI as its initial latents"
            entry["genai_randn_calls"] = gen.calls
            ref = diffusers_text2image(name, params, latents)
            save_png(gold / f"{case['id']}.diffusers.png", ref[0])
            diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
            default_pipe = getattr(ov_genai, PIPELINE_CLASSES[mode])(str(ir), "CPU")
            default_out = generate(default_pipe, mode, params, image, mask, generator=fixed_generator(latents))
            diff_default = np.abs(default_out.astype(np.int16) - ref.astype(np.int16))
            entry["diffusers"] = {
                "image": f"{case['id']}.diffusers.png",
                "max_abs_diff": int(diff.max()),
                "mean_abs_diff": round(float(diff.mean()), 4),
                "default_precision_max_abs_diff": int(diff_default.max()),
                "default_precision_mean_abs_diff": round(float(diff_default.mean()), 4),
            }
        files = []
        for i, img in enumerate(out):
            fname = f"{case['id']}.png" if len(out) == 1 else f"{case['id']}.{i}.png"
            save_png(gold / fname, img)
            files.append({"file": fname, "rgb_sha256": sha256(img.tobytes())})
        entry["outputs"] = files
        entries.append(entry)
        print(f"  {name} {case['id']}: {out.shape} {entry.get('diffusers', '')}", flush=True)
    return {"defaults": defaults, "cases": entries}


# ---------------------------------------------------------------------------
# What the adapter prepares, tried on the real runtime.

def scheduler_view(ir: Path, cls: str, parent: Path) -> tuple[Path, dict]:
    """A model view as the adapter builds it: component folders symlinked, scheduler_config.json with `_class_name` rewritten."""
    config = json.loads((ir / "scheduler" / "scheduler_config.json").read_text())
    view = Path(tempfile.mkdtemp(prefix="ov-view-", dir=parent))
    for entry in ir.iterdir():
        if entry.name == "scheduler":
            continue
        os.symlink(entry, view / entry.name, target_is_directory=entry.is_dir())
    (view / "scheduler").mkdir()
    rewritten = {**config, "_class_name": cls}
    (view / "scheduler" / "scheduler_config.json").write_text(json.dumps(rewritten, indent=2))
    return view, rewritten


def scheduler_checks(ir: Path, tmp: Path) -> list[dict]:
    import openvino_genai as ov_genai

    results = []
    params = dict(negative_prompt=NEGATIVE, num_inference_steps=3, rng_seed=42, guidance_scale=7.5)
    for cls in SCHEDULER_CLASSES:
        view, rewritten = scheduler_view(ir, cls, tmp)
        row: dict = {"class": cls, "config_written": rewritten}
        try:
            pipe = ov_genai.Text2ImagePipeline(str(view), "CPU", **GOLDEN_PROPERTIES)
            out = np.array(pipe.generate(PROMPT, **params).data)
            row.update(accepted=True, rgb_sha256=sha256(out.tobytes()), mean=float(out.mean()))
        except Exception as e:
            row.update(accepted=False, error=str(e).strip().splitlines()[-1][:300])
        results.append(row)
        print(f"  scheduler {cls}: {'ok' if row['accepted'] else row['error']}", flush=True)
    # Same picture as another class means GenAI ran that other scheduler.
    by_hash: dict[str, list[str]] = {}
    for row in results:
        if row.get("accepted"):
            by_hash.setdefault(row["rgb_sha256"], []).append(row["class"])
    for row in results:
        if row.get("accepted"):
            row["same_image_as"] = [c for c in by_hash[row["rgb_sha256"]] if c != row["class"]]
    return results


def property_checks(ir: Path, tmp: Path) -> list[dict]:
    import openvino_genai as ov_genai

    results = []
    for props in PROPERTY_SETS:
        real = {k: (v.replace("<tmp>", str(tmp)) if isinstance(v, str) else v) for k, v in props.items()}
        row: dict = {"properties": props}
        for mode, cls in PIPELINE_CLASSES.items():
            try:
                getattr(ov_genai, cls)(str(ir), "CPU", **real)
                row[mode] = "accepted"
            except Exception as e:
                row[mode] = "refused: " + str(e).strip().splitlines()[-1][:200]
        results.append(row)
        print(f"  properties {props}: {row['text2image']}", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=NAMES)
    ap.add_argument("--skip-export", action="store_true", help="reuse the IR folders already in test/fixtures/openvino")
    args = ap.parse_args()
    manifest_path = OUT / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"pipelines": {}}
    manifest["made_by"] = f"{shown(Path(sys.prefix))}/bin/python tools/reference/openvino_ref.py (the venv of tools/reference/requirements.txt)"
    manifest["versions"] = {p: version(p) for p in ["openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "optimum", "nncf", "diffusers", "transformers", "torch"]}
    with tempfile.TemporaryDirectory(prefix="h15-ov-") as t:
        tmp = Path(t)
        for name in args.names:
            print(f"{name}:", flush=True)
            ir = OUT / name
            cmd = manifest["pipelines"].get(name, {}).get("export_command")
            if not args.skip_export:
                ir, cmd = export_ir(name)
            gold = OUT / "goldens" / name
            shutil.rmtree(gold, ignore_errors=True)
            entry = {
                "ir_folder": f"test/fixtures/openvino/{name}",
                "export_command": cmd,
                "export_cwd": "tools/reference/.cache",
                "weight_format": WEIGHT_FORMAT,
                "graph_pbtxt": "export_model.py image_generation template, defaults (device CPU)",
                "scheduler_config": json.loads((ir / "scheduler" / "scheduler_config.json").read_text()),
                **goldens(name, ir, gold, tmp),
            }
            if name == "sd1":
                entry["scheduler_overrides"] = scheduler_checks(ir, tmp)
                entry["properties"] = property_checks(ir, tmp)
            entry["ir_bytes"] = tree_size(ir)
            entry["golden_bytes"] = tree_size(gold)
            manifest["pipelines"][name] = entry
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {manifest_path}")


if __name__ == "__main__":
    main()
