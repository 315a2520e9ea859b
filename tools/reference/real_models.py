"""Full-size SD-Turbo, SD 1.5 and SDXL-Turbo with seeded random weights (issue 18).

Compute does not depend on weight values: a UNet with the published
architecture and random weights costs what the real one costs per step. This
script writes each model's published component configs (below, as data, with
the hub file each came from) into a diffusers folder with seeded random
weights, then exports that one folder with the real exporters, so every peer
of `npm run bench:real` runs the SAME weights:

    <cache>/<model>/diffusers/     diffusers folder (safetensors, fp32): diffusers on PyTorch
    <cache>/<model>/onnx-fp32/     optimum-cli export onnx (+ graphserve's graph.pbtxt)
    <cache>/<model>/onnx-fp16/     optimum-cli export onnx --dtype fp16 (only when asked)
    <cache>/<model>/ov-fp32/       optimum-cli export openvino --weight-format fp32
    <cache>/<model>/ov-int8/       optimum-cli export openvino --weight-format int8 (OVMS export_model.py's default)

<cache> is $GRAPHSERVE_REAL_CACHE or tools/reference/.cache/real (gitignored).
Each format is made only when its folder lacks its completion marker, so a
rerun resumes; `--force` remakes.

    tools/reference/.venv/bin/python tools/reference/real_models.py [--formats onnx-fp32,ov-fp32,ov-int8] [model ...]
    tools/reference/.venv/bin/python tools/reference/real_models.py --check   # configs vs published parameter counts, no files

Tokenizers: the real CLIP vocabulary cannot be downloaded, so a CLIP-format
byte-level BPE tokenizer with the real vocabulary size (49408: 512 byte
tokens, 48894 merges, <|startoftext|> 49406, <|endoftext|> 49407) is
generated; tokenization cost is negligible and the encoders' input is always
77 tokens, so compute is unchanged.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pipelines  # noqa: E402  (tokenizer file format, CLIP byte alphabet)
from export_onnx import write_graph  # noqa: E402

CACHE = Path(os.environ.get("GRAPHSERVE_REAL_CACHE") or HERE / ".cache" / "real")
FORMATS = ("diffusers", "onnx-fp32", "onnx-fp16", "ov-fp32", "ov-int8")
DEFAULT_FORMATS = ("diffusers", "onnx-fp32", "ov-fp32", "ov-int8")
DONE = ".complete.json"
TASK = "text-to-image"  # a local folder has no hub metadata for the exporters to infer it from

# ---------------------------------------------------------------------------
# Published configs (the fields that shape compute; everything else is the
# class default, which is what the hub files hold too).

# runwayml/stable-diffusion-v1-5 (now stable-diffusion-v1-5/stable-diffusion-v1-5) unet/config.json
UNET_SD15 = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, norm_eps=1e-5, act_fn="silu",
    flip_sin_to_cos=True, freq_shift=0, downsample_padding=1, mid_block_scale_factor=1, center_input_sample=False,
)
# stabilityai/sd-turbo unet/config.json (the SD 2.1-base UNet: OpenCLIP-H context, linear projections, per-block heads)
UNET_SD21 = dict(UNET_SD15, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
# stabilityai/sdxl-turbo unet/config.json (SDXL base 1.0's UNet; sample_size 64 since it works at 512×512)
UNET_SDXL = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, norm_num_groups=32, norm_eps=1e-5, act_fn="silu",
    flip_sin_to_cos=True, freq_shift=0,
)
# vae/config.json of all three (SD's KL-f8 autoencoder); scaling_factor 0.18215 (SD 1.5, SD-Turbo), 0.13025 (SDXL-Turbo)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
    act_fn="silu", sample_size=512,
)
CLIP_COMMON = dict(vocab_size=49408, max_position_embeddings=77, layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, pad_token_id=1)
# SD 1.5 text_encoder/config.json and SDXL-Turbo text_encoder/config.json: OpenAI CLIP ViT-L/14's text tower
CLIP_L = dict(CLIP_COMMON, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, hidden_act="quick_gelu", projection_dim=768)
# stabilityai/sd-turbo text_encoder/config.json: OpenCLIP ViT-H/14's text tower, 23 of its 24 layers (SD 2.x uses the penultimate)
CLIP_H = dict(CLIP_COMMON, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16, hidden_act="gelu", projection_dim=512)
# stabilityai/sdxl-turbo text_encoder_2/config.json: OpenCLIP ViT-bigG/14's text tower with its projection
CLIP_G = dict(CLIP_COMMON, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20, hidden_act="gelu", projection_dim=1280)

BETAS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", trained_betas=None)
# scheduler/scheduler_config.json of each repo
SCHED_SD15 = ("PNDMScheduler", dict(BETAS, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1, clip_sample=False))
SCHED_SD_TURBO = ("EulerDiscreteScheduler", dict(
    BETAS, prediction_type="epsilon", timestep_spacing="trailing", steps_offset=1, interpolation_type="linear", use_karras_sigmas=False,
))
SCHED_SDXL_TURBO = ("EulerAncestralDiscreteScheduler", dict(
    BETAS, prediction_type="epsilon", timestep_spacing="trailing", steps_offset=1, interpolation_type="linear",
    use_karras_sigmas=False, sample_max_value=1.0, set_alpha_to_one=False, skip_prk_steps=True, clip_sample=False,
))

# Parameter counts of the published checkpoints (as diffusers/transformers count them), checked by --check and at build:
# a config slip (a wrong head count is free, a wrong width or depth is not) shows up here.
PUBLISHED_PARAMS = {
    "unet-sd15": 859_520_964, "unet-sd21": 865_910_724, "unet-sdxl": 2_567_463_684, "vae": 83_653_863,
    "clip-l": 123_060_480, "clip-h": 340_387_840, "clip-g-proj": 694_659_840,
}

MODELS: dict[str, dict] = {
    # The request the bench sends (issue 18): 512×512; turbo models 1 step without CFG, SD 1.5 20 steps at 7.5.
    "sd-turbo": dict(kind="sd", seed=18_1, unet=("unet-sd21", UNET_SD21), text=("clip-h", CLIP_H), tokenizer="sd2",
                     scheduler=SCHED_SD_TURBO, vae_scale=0.18215, steps=1, guidance=0.0),
    "sd15": dict(kind="sd", seed=18_2, unet=("unet-sd15", UNET_SD15), text=("clip-l", CLIP_L), tokenizer="sd1",
                 scheduler=SCHED_SD15, vae_scale=0.18215, steps=20, guidance=7.5),
    "sdxl-turbo": dict(kind="sdxl", seed=18_3, unet=("unet-sdxl", UNET_SDXL), text=("clip-l", CLIP_L), text2=("clip-g-proj", CLIP_G),
                       tokenizer="sd1", tokenizer2="sdxl2", scheduler=SCHED_SDXL_TURBO, vae_scale=0.13025, steps=1, guidance=0.0),
}

# ---------------------------------------------------------------------------
# Tokenizer: CLIP's layout at CLIP's size.

CLIP_VOCAB = 49408


def clip_sized_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """512 byte tokens (CLIP's order), then merges of two byte symbols (the second word-final or not) until
    49406 tokens, then <|startoftext|>, <|endoftext|>: every merge joins two tokens already in the vocabulary."""
    chars = [c for _, c in pipelines.bytes_to_unicode()]
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    want = CLIP_VOCAB - 2 - len(tokens)
    for a in chars:
        for b in [*(c + "</w>" for c in chars), *chars]:
            if len(merges) == want:
                break
            merges.append((a, b))
            tokens.append(a + b)
    assert len(tokens) == CLIP_VOCAB - 2 and len(set(tokens)) == len(tokens)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer(dir: Path, style: str) -> None:
    """pipelines.write_tokenizer's files and quirks ("sd1", "sd2", "sdxl2"), with the CLIP-sized vocabulary."""
    pipelines.write_tokenizer(dir, style)
    vocab, merges = clip_sized_vocab()
    (dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


# ---------------------------------------------------------------------------
# Building.

def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def seeded(seed: int, k: int, make):
    import torch

    torch.manual_seed(seed * 100 + k)
    with torch.no_grad():
        return make().eval()


def check_params(label: str, module) -> int:
    n = count(module)
    if n != PUBLISHED_PARAMS[label]:
        raise SystemExit(f"{label}: {n:,} parameters, the published checkpoint has {PUBLISHED_PARAMS[label]:,}: config mismatch")
    return n


def build(name: str, out: Path) -> dict:
    """The diffusers folder of `name` at `out` (seeded random weights); returns the parameter counts."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    spec = MODELS[name]
    seed = spec["seed"]
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tok_root = out.with_name(out.name + ".tokenizers")
    shutil.rmtree(tok_root, ignore_errors=True)
    params: dict[str, int] = {}
    # One component in memory at a time: built, checked, saved, dropped (SDXL's UNet alone is 10.3 GB in fp32).
    def save(sub: str, module, label: str) -> None:
        params[sub] = check_params(label, module)
        module.save_pretrained(tmp / sub, safe_serialization=True)

    unet_label, unet_cfg = spec["unet"]
    save("unet", seeded(seed, 1, lambda: UNet2DConditionModel(**unet_cfg)), unet_label)
    gc.collect()
    save("vae", seeded(seed, 2, lambda: AutoencoderKL(**VAE, scaling_factor=spec["vae_scale"])), "vae")
    text_label, text_cfg = spec["text"]
    save("text_encoder", seeded(seed, 3, lambda: CLIPTextModel(CLIPTextConfig(**text_cfg))), text_label)
    write_tokenizer(tok_root / "tokenizer", spec["tokenizer"])
    if spec["kind"] == "sdxl":
        text2_label, text2_cfg = spec["text2"]
        save("text_encoder_2", seeded(seed, 4, lambda: CLIPTextModelWithProjection(CLIPTextConfig(**text2_cfg))), text2_label)
        write_tokenizer(tok_root / "tokenizer_2", spec["tokenizer2"])
    gc.collect()

    # The pipeline's own files (model_index.json, scheduler, tokenizers) from a pipeline whose big parts are
    # tiny stand-ins of the right classes; the real components saved above replace theirs.
    cls_name, sched_cfg = spec["scheduler"]
    scheduler = getattr(diffusers, cls_name).from_config(sched_cfg)
    tiny = pipelines.build("sdxl" if spec["kind"] == "sdxl" else "sd1")
    tiny.scheduler = scheduler
    tiny.register_to_config(scheduler=(scheduler.__module__.split(".")[0], cls_name))
    tiny.tokenizer = CLIPTokenizer.from_pretrained(tok_root / "tokenizer")
    if spec["kind"] == "sdxl":
        tiny.tokenizer_2 = CLIPTokenizer.from_pretrained(tok_root / "tokenizer_2")
    skel = out.with_name(out.name + ".skeleton")
    shutil.rmtree(skel, ignore_errors=True)
    tiny.save_pretrained(skel, safe_serialization=True)
    for f in ["model_index.json", "scheduler"]:
        src = skel / f
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp / f)
    for tok in ("tokenizer", "tokenizer_2"):
        if (tok_root / tok).is_dir():
            shutil.copytree(tok_root / tok, tmp / tok)
    shutil.rmtree(skel)
    shutil.rmtree(tok_root)
    del tiny
    # Load it back once as a pipeline: the folder is what every peer reads, so it must be whole.
    pipe = getattr(diffusers, json.loads((tmp / "model_index.json").read_text())["_class_name"]).from_pretrained(tmp, torch_dtype=torch.float32)
    del pipe
    gc.collect()
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return params


# ---------------------------------------------------------------------------
# Exports.

def cli(*args: str, cwd: Path) -> None:
    exe = Path(sys.executable).parent / "optimum-cli"
    print("+ optimum-cli", " ".join(args), flush=True)
    subprocess.run([str(exe), *args], cwd=cwd, check=True)


def make_format(name: str, fmt: str, root: Path) -> dict:
    """Makes <root>/<fmt>; returns what its marker records."""
    out = root / fmt
    if fmt == "diffusers":
        return {"params": build(name, out)}
    src = "diffusers"  # relative: the command recorded is the one run, with no machine paths in it
    tmp = root / (fmt + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if fmt == "onnx-fp32":
        args = ["export", "onnx", "--model", src, "--task", TASK, tmp.name]
    elif fmt == "onnx-fp16":
        # fp16 on CPU: the exporter validates against the fp16 PyTorch model; full-size UNets differ by more
        # than the default atol, so the tolerance is widened as export_onnx.py does for the tiny ones.
        args = ["export", "onnx", "--model", src, "--task", TASK, "--dtype", "fp16", "--atol", "1e-1", tmp.name]
    elif fmt in ("ov-fp32", "ov-int8"):
        args = ["export", "openvino", "--model", src, "--task", TASK, "--weight-format", fmt.split("-")[1], tmp.name]
    else:
        raise SystemExit(f"unknown format {fmt}; one of {', '.join(FORMATS)}")
    cli(*args, cwd=root)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    if fmt.startswith("onnx"):
        write_graph(out)  # graphserve's --configure: the folder serves as it is
    return {"command": ["optimum-cli", *args[:-1], fmt]}


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def ensure(name: str, formats: list[str], force: bool = False) -> Path:
    """Makes the missing formats of `name` (the diffusers folder first: every export reads it)."""
    root = CACHE / name
    root.mkdir(parents=True, exist_ok=True)
    todo = ["diffusers"] + [f for f in formats if f != "diffusers"]
    for fmt in todo:
        marker = root / fmt / DONE
        if marker.exists() and not force:
            continue
        t0 = time.time()
        print(f"{name}: making {fmt} in {root / fmt}", flush=True)
        record = make_format(name, fmt, root)
        record.update(seconds=round(time.time() - t0, 1), bytes=tree_size(root / fmt))
        marker.write_text(json.dumps(record, indent=2) + "\n")
        print(f"{name}: {fmt} done in {record['seconds']} s, {record['bytes'] / 1e9:.2f} GB", flush=True)
    return root


def check_configs() -> None:
    """Builds every distinct component on the meta device (no memory) and compares its size with the published one."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        made = {
            "unet-sd15": UNet2DConditionModel(**UNET_SD15), "unet-sd21": UNet2DConditionModel(**UNET_SD21),
            "unet-sdxl": UNet2DConditionModel(**UNET_SDXL), "vae": AutoencoderKL(**VAE),
            "clip-l": CLIPTextModel(CLIPTextConfig(**CLIP_L)), "clip-h": CLIPTextModel(CLIPTextConfig(**CLIP_H)),
            "clip-g-proj": CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G)),
        }
    bad = 0
    for label, module in made.items():
        n = count(module)
        ok = n == PUBLISHED_PARAMS[label]
        bad += not ok
        print(f"{label:12} {n:>14,} {'ok' if ok else 'MISMATCH: published ' + format(PUBLISHED_PARAMS[label], ',')}")
    vocab, merges = clip_sized_vocab()
    print(f"tokenizer    {len(vocab):>14,} tokens, {len(merges):,} merges")
    if bad:
        raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=list(MODELS))
    ap.add_argument("--formats", default=",".join(DEFAULT_FORMATS), help=f"comma-separated, of {', '.join(FORMATS)}")
    ap.add_argument("--force", action="store_true", help="remake even when complete")
    ap.add_argument("--check", action="store_true", help="only compare the configs with the published parameter counts")
    args = ap.parse_args()
    if args.check:
        return check_configs()
    formats = [f for f in args.formats.split(",") if f]
    for f in formats:
        if f not in FORMATS:
            raise SystemExit(f"unknown format {f}; one of {', '.join(FORMATS)}")
    for name in args.models:
        if name not in MODELS:
            raise SystemExit(f"unknown model {name}; one of {', '.join(MODELS)}")
        ensure(name, formats, force=args.force)


if __name__ == "__main__":
    main()
