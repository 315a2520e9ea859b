"""Tiny random-weight diffusers pipelines, built from the config dicts below.

Each pipeline is seeded (torch.manual_seed before every component), so the
same script gives the same weights, and is saved as a diffusers folder under
tools/reference/.cache/pipelines/<name>/ for the exporters (ONNX, OpenVINO,
legacy layouts) to read: every export of a pipeline carries the SAME weights.

Tokenizers are written by hand in the format real hub repos have (the old
`__type: AddedToken` style), not re-saved by transformers, so the SD 2.x
quirk (pad "<|endoftext|>" in tokenizer_config.json, "!" in
special_tokens_map.json) survives into the saved folder.

    python tools/reference/pipelines.py [--out DIR] [name ...]
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
PIPELINES_DIR = CACHE / "pipelines"

# ---------------------------------------------------------------------------
# Tokenizer: a small CLIP byte-level BPE vocabulary in CLIP's own layout:
# 256 byte tokens in bytes_to_unicode order (id 0 is "!"), the same 256 with
# "</w>", then merges, then <|startoftext|>, <|endoftext|> last.

MERGE_WORDS = [
    "a", "photo", "of", "the", "cat", "cats", "dog", "an", "astronaut", "riding", "horse", "red", "blue", "on",
    "in", "painting", "three", "portrait", "with", "and", "mountain", "lake", "at", "sunset", "high", "quality",
    "blurry", "ugly", "city", "night", "oil", "style", "green", "tree", "house", "water", "!!", "!!!",
]
# Sub-word merges so longer words split CLIP-like into pieces (e.g. "paint" + "ing</w>").
PIECES = ["in", "ing", "er", "th", "st", "an", "re", "on", "ou"]


def bytes_to_unicode() -> list[tuple[int, str]]:
    """CLIP's byte alphabet: printable Latin-1 bytes stand for themselves, the other bytes, in order, for 256, 257, ..."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = sorted(set(range(256)) - set(printable))
    return [(b, chr(b)) for b in printable] + [(b, chr(256 + k)) for k, b in enumerate(others)]


def tiny_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    chars = [c for _, c in bytes_to_unicode()]
    tokens = chars + [c + "</w>" for c in chars]
    seen = set(tokens)
    merges: list[tuple[str, str]] = []

    def add_word(word: str, end: bool) -> None:
        acc = word[0]
        for i in range(1, len(word)):
            piece = word[i] + ("</w>" if end and i == len(word) - 1 else "")
            merged = acc + piece
            if merged not in seen:
                merges.append((acc, piece))
                tokens.append(merged)
                seen.add(merged)
            acc = merged

    for p in PIECES:
        add_word(p, end=False)
        add_word(p, end=True)
    for w in MERGE_WORDS:
        if len(w) >= 2:
            add_word(w, end=True)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def _added(content: str) -> dict:
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def write_tokenizer(dir: Path, style: str) -> None:
    """style: "sd1" (pad <|endoftext|> everywhere), "sd2" (config says <|endoftext|>, map says "!"), "sdxl2" (pad "!" in both)."""
    vocab, merges = tiny_vocab()
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    config_pad = "!" if style == "sdxl2" else "<|endoftext|>"
    map_pad = "!" if style in ("sd2", "sdxl2") else "<|endoftext|>"
    special = {"bos_token": _added("<|startoftext|>"), "eos_token": _added("<|endoftext|>"), "unk_token": _added("<|endoftext|>")}
    (dir / "special_tokens_map.json").write_text(json.dumps({**special, "pad_token": map_pad if style != "sd1" else _added(map_pad)}, indent=2))
    config = {
        "add_prefix_space": False,
        **special,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": 77,
        "pad_token": config_pad if style != "sd1" else _added(config_pad),
        "special_tokens_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
    }
    (dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


# ---------------------------------------------------------------------------
# Component configs.

VOCAB_SIZE = len(tiny_vocab()[0])
BOS_ID, EOS_ID = VOCAB_SIZE - 2, VOCAB_SIZE - 1


def text_config(hidden: int, act: str, projection: int | None = None) -> dict:
    return dict(
        vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, hidden_act=act, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=1,
        projection_dim=projection or hidden, layer_norm_eps=1e-5,
    )


VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, sample_size=64,
)

UNET_SD = dict(
    sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32, attention_head_dim=2,
)
UNET_SD2 = dict(UNET_SD, attention_head_dim=(2, 4), use_linear_projection=True)
UNET_SDXL = dict(
    sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 1), attention_head_dim=(2, 4), use_linear_projection=True, cross_attention_dim=64,
    addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=8 * 6 + 32,
)

BETAS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", trained_betas=None)
# Default schedulers as the real repos configure them (SD 1.5, SD 2.1 with DPM++, sd-turbo, LCM_Dreamshaper_v7, SDXL base).
SCHED_SD1 = ("PNDMScheduler", dict(BETAS, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1, clip_sample=False))
SCHED_SD2 = ("DPMSolverMultistepScheduler", dict(BETAS, prediction_type="v_prediction", steps_offset=1))
SCHED_TURBO = ("EulerDiscreteScheduler", dict(BETAS, prediction_type="epsilon", timestep_spacing="trailing", steps_offset=1, interpolation_type="linear", use_karras_sigmas=False))
SCHED_LCM = ("LCMScheduler", dict(BETAS, original_inference_steps=50, prediction_type="epsilon", set_alpha_to_one=True, steps_offset=1, clip_sample=False, timestep_scaling=10.0, timestep_spacing="leading"))
SCHED_SDXL = ("EulerDiscreteScheduler", dict(BETAS, prediction_type="epsilon", timestep_spacing="leading", steps_offset=1, interpolation_type="linear", use_karras_sigmas=False, sample_max_value=1.0, set_alpha_to_one=False, skip_prk_steps=True, clip_sample=False))

# name → how to build it. "kind" picks the diffusers pipeline class.
PIPELINES: dict[str, dict] = {
    "sd1": dict(kind="sd", seed=1, unet=UNET_SD, text=text_config(32, "quick_gelu"), tokenizer="sd1", scheduler=SCHED_SD1, vae_scale=0.18215),
    "sd2": dict(kind="sd", seed=2, unet=UNET_SD2, text=text_config(32, "gelu"), tokenizer="sd2", scheduler=SCHED_SD2, vae_scale=0.18215),
    "sd-turbo": dict(kind="sd", seed=3, unet=UNET_SD2, text=text_config(32, "gelu"), tokenizer="sd2", scheduler=SCHED_TURBO, vae_scale=0.18215),
    "lcm": dict(kind="lcm", seed=4, unet=dict(UNET_SD, time_cond_proj_dim=32), text=text_config(32, "quick_gelu"), tokenizer="sd1", scheduler=SCHED_LCM, vae_scale=0.18215),
    "sdxl": dict(kind="sdxl", seed=5, unet=UNET_SDXL, text=text_config(32, "quick_gelu"), text2=text_config(32, "gelu", projection=32), tokenizer="sd1", tokenizer2="sdxl2", scheduler=SCHED_SDXL, vae_scale=0.13025),
    "sd-inpaint": dict(kind="inpaint", seed=6, unet=dict(UNET_SD, in_channels=9), text=text_config(32, "quick_gelu"), tokenizer="sd1", scheduler=SCHED_SD1, vae_scale=0.18215),
}


def seeded_component(seed: int, k: int, make):
    """Component k of the pipeline seeded `seed`: torch's RNG seeded per component, so each one's weights are fixed on their own."""
    torch.manual_seed(seed * 100 + k)
    return make().eval()


def build(name: str):
    """The diffusers pipeline `name`, with seeded random weights (not saved)."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    spec = PIPELINES[name]
    seed = spec["seed"]
    tok_root = CACHE / "tokenizers-src" / name
    shutil.rmtree(tok_root, ignore_errors=True)

    unet = seeded_component(seed, 1, lambda: UNet2DConditionModel(**spec["unet"]))
    vae = seeded_component(seed, 2, lambda: AutoencoderKL(**VAE, scaling_factor=spec["vae_scale"]))
    text_encoder = seeded_component(seed, 3, lambda: CLIPTextModel(CLIPTextConfig(**spec["text"])))
    write_tokenizer(tok_root / "tokenizer", spec["tokenizer"])
    tokenizer = CLIPTokenizer.from_pretrained(tok_root / "tokenizer")
    cls_name, sched_cfg = spec["scheduler"]
    scheduler = getattr(diffusers, cls_name).from_config(sched_cfg)
    kind = spec["kind"]
    if kind == "sdxl":
        text_encoder_2 = seeded_component(seed, 4, lambda: CLIPTextModelWithProjection(CLIPTextConfig(**spec["text2"])))
        write_tokenizer(tok_root / "tokenizer_2", spec["tokenizer2"])
        tokenizer_2 = CLIPTokenizer.from_pretrained(tok_root / "tokenizer_2")
        return diffusers.StableDiffusionXLPipeline(
            vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer_2,
            unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True,
        )
    common = dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None)
    if kind == "lcm":
        return diffusers.LatentConsistencyModelPipeline(**common, requires_safety_checker=False)
    if kind == "inpaint":
        return diffusers.StableDiffusionInpaintPipeline(**common, requires_safety_checker=False)
    return diffusers.StableDiffusionPipeline(**common, requires_safety_checker=False)


def export_task(name: str) -> str:
    """The exporters' --task for a saved pipeline: a local folder has no hub metadata to infer it from."""
    return "inpainting" if PIPELINES[name]["kind"] == "inpaint" else "text-to-image"


def save(name: str, out_root: Path = PIPELINES_DIR) -> Path:
    """Builds `name` and saves it as a diffusers folder (tokenizer folders as hand-written, not re-saved)."""
    pipe = build(name)
    out = out_root / name
    shutil.rmtree(out, ignore_errors=True)
    pipe.save_pretrained(out, safe_serialization=True)
    for tok in ("tokenizer", "tokenizer_2"):
        src = CACHE / "tokenizers-src" / name / tok
        if src.is_dir():
            shutil.rmtree(out / tok)
            shutil.copytree(src, out / tok)
    return out


def load(name: str, out_root: Path = PIPELINES_DIR):
    """The saved pipeline `name` (built first when missing), fp32 on CPU."""
    import diffusers

    folder = out_root / name
    if not (folder / "model_index.json").exists():
        save(name, out_root)
    cls = json.loads((folder / "model_index.json").read_text())["_class_name"]
    return getattr(diffusers, cls).from_pretrained(folder, torch_dtype=torch.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(PIPELINES))
    ap.add_argument("--out", type=Path, default=PIPELINES_DIR)
    args = ap.parse_args()
    for name in args.names:
        print(f"{name}: {save(name, args.out)}")


if __name__ == "__main__":
    main()
