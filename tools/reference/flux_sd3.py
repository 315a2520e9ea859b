"""Tiny random-weight FLUX.1 and Stable Diffusion 3 pipelines (issue 16), the
peers of pipelines.py's SD/SDXL ones: seeded per component, saved as diffusers
folders under tools/reference/.cache/pipelines/<name>/.

- flux-schnell: FluxTransformer2DModel without guidance embeds, CLIP-L + T5,
  FlowMatchEuler with schnell's scheduler config (shift 1, no dynamic shift).
- flux-dev: the same with guidance_embeds and dev's config (dynamic shifting).
- sd3: SD3Transformer2DModel (MMDiT, patch 2), CLIP-L + CLIP-G (both with
  projection, different widths) + T5, FlowMatchEuler with SD3's config (shift 3).

Every one uses the 16-channel AutoencoderKL without quant convs, with the real
model's scaling_factor and shift_factor. CLIP tokenizers are written by
pipelines.write_tokenizer (hub format); the T5 tokenizer is a small Unigram
(SentencePiece-style) model built with the `tokenizers` library and saved by
T5TokenizerFast (tokenizer.json, as Optimum's export writes it).

    python tools/reference/flux_sd3.py [name ...]
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipelines  # noqa: E402
from pipelines import CACHE, PIPELINES_DIR, seeded_component, text_config, write_tokenizer  # noqa: E402

# ---------------------------------------------------------------------------
# T5 tokenizer: <pad>=0, </s>=1, <unk>=2 (T5's ids), then SentencePiece pieces.
T5_WORDS = [
    "a", "photo", "of", "the", "cat", "cats", "dog", "an", "astronaut", "riding", "horse", "red", "blue", "on", "in",
    "painting", "three", "portrait", "with", "and", "mountain", "lake", "at", "sunset", "high", "quality", "blurry",
    "ugly", "city", "night", "oil", "style", "green", "tree", "house", "water", "is", "it", "to", "for", "sea", "sky",
]
T5_PIECES = ["ing", "er", "ed", "s", "th", "st", "an", "re", "on", "ou", "pa", "int", "ca", "ts"]
T5_CHARS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()&/éü")


def t5_vocab() -> list[tuple[str, float]]:
    """Pieces with log-probability scores: whole words likeliest, then sub-words, then single characters."""
    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    seen = {p for p, _ in vocab}

    def add(piece: str, score: float) -> None:
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))

    for i, w in enumerate(T5_WORDS):
        add("▁" + w, -3.0 - 0.01 * i)
    for i, p in enumerate(T5_PIECES):
        add(p, -6.0 - 0.01 * i)
        add("▁" + p, -6.5 - 0.01 * i)
    for i, c in enumerate(T5_CHARS):
        add(c, -9.0 - 0.01 * i)
        add("▁" + c, -9.5 - 0.01 * i)
    return vocab


T5_VOCAB_SIZE = len(t5_vocab())


def write_t5_tokenizer(dir: Path) -> None:
    """A T5TokenizerFast folder laid out like T5's: Unigram model, whitespace split + Metaspace, `$A </s>`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    tok = Tokenizer(models.Unigram(t5_vocab(), unk_id=2))
    # T5's own normalizer is Precompiled (an NFKC-like charsmap from the .model file) + this Replace; NFKC stands in for it.
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)])
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    fast = T5TokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0, model_max_length=512)
    shutil.rmtree(dir, ignore_errors=True)
    fast.save_pretrained(dir)


# ---------------------------------------------------------------------------
# Component configs.

def t5_config(d_model: int) -> dict:
    # T5 v1.1 (the FLUX/SD3 T5-XXL): gated-gelu, no tied embeddings; relative attention buckets as T5.
    return dict(vocab_size=T5_VOCAB_SIZE, d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=2, num_heads=4,
                relative_attention_num_buckets=8, relative_attention_max_distance=32, feed_forward_proj="gated-gelu",
                tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0)


# The FLUX/SD3 VAE: SDXL-like AutoencoderKL, 16 latent channels, no quant/post-quant conv (factor 8: four blocks).
VAE16 = dict(pipelines.VAE, latent_channels=16, use_quant_conv=False, use_post_quant_conv=False)

FLUX_TRANSFORMER = dict(patch_size=1, in_channels=64, num_layers=1, num_single_layers=2, attention_head_dim=16, num_attention_heads=2,
                        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 6, 6))
SD3_TRANSFORMER = dict(sample_size=8, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4,
                       joint_attention_dim=96, caption_projection_dim=32, pooled_projection_dim=80, out_channels=16, pos_embed_max_size=32)

# Scheduler configs as the real repos have them (FLUX.1-schnell, FLUX.1-dev, stable-diffusion-3-medium-diffusers).
FLOW = dict(num_train_timesteps=1000, base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096, max_shift=1.15)
SCHED_SCHNELL = ("FlowMatchEulerDiscreteScheduler", dict(FLOW, shift=1.0, use_dynamic_shifting=False))
SCHED_DEV = ("FlowMatchEulerDiscreteScheduler", dict(FLOW, shift=3.0, use_dynamic_shifting=True))
SCHED_SD3 = ("FlowMatchEulerDiscreteScheduler", dict(num_train_timesteps=1000, shift=3.0))

PIPELINES: dict[str, dict] = {
    "flux-schnell": dict(kind="flux", seed=81, transformer=dict(FLUX_TRANSFORMER, guidance_embeds=False), text=text_config(32, "quick_gelu"),
                         t5=t5_config(32), scheduler=SCHED_SCHNELL, vae_scale=0.3611, vae_shift=0.1159),
    "flux-dev": dict(kind="flux", seed=82, transformer=dict(FLUX_TRANSFORMER, guidance_embeds=True), text=text_config(32, "quick_gelu"),
                     t5=t5_config(32), scheduler=SCHED_DEV, vae_scale=0.3611, vae_shift=0.1159),
    # CLIP-L 32 wide, CLIP-G 48 wide: prompt_embeds concat to 80 and zero-pad to T5's 96; pooled 32 + 48 = 80.
    "sd3": dict(kind="sd3", seed=83, transformer=SD3_TRANSFORMER, text=text_config(32, "quick_gelu", projection=32),
                text2=text_config(48, "gelu", projection=48), t5=t5_config(96), scheduler=SCHED_SD3, vae_scale=1.5305, vae_shift=0.0609),
}


def build(name: str):
    import diffusers
    from diffusers import AutoencoderKL, FluxTransformer2DModel, SD3Transformer2DModel
    from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer, T5Config, T5EncoderModel,
                              T5TokenizerFast)

    spec = PIPELINES[name]
    seed = spec["seed"]
    tok_root = CACHE / "tokenizers-src" / name
    shutil.rmtree(tok_root, ignore_errors=True)

    vae = seeded_component(seed, 2, lambda: AutoencoderKL(**VAE16, scaling_factor=spec["vae_scale"], shift_factor=spec["vae_shift"]))
    cls_name, sched_cfg = spec["scheduler"]
    scheduler = getattr(diffusers, cls_name).from_config(sched_cfg)
    t5 = seeded_component(seed, 5, lambda: T5EncoderModel(T5Config(**spec["t5"])))
    write_t5_tokenizer(tok_root / "t5")
    t5_tok = T5TokenizerFast.from_pretrained(tok_root / "t5")
    write_tokenizer(tok_root / "tokenizer", "sd1")
    clip_l_tok = CLIPTokenizer.from_pretrained(tok_root / "tokenizer")
    if spec["kind"] == "flux":
        transformer = seeded_component(seed, 1, lambda: FluxTransformer2DModel(**spec["transformer"]))
        clip_l = seeded_component(seed, 3, lambda: CLIPTextModel(CLIPTextConfig(**spec["text"])))
        (tok_root / "t5").rename(tok_root / "tokenizer_2")
        return diffusers.FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=clip_l, tokenizer=clip_l_tok, text_encoder_2=t5,
                                      tokenizer_2=t5_tok, transformer=transformer)
    transformer = seeded_component(seed, 1, lambda: SD3Transformer2DModel(**spec["transformer"]))
    clip_l = seeded_component(seed, 3, lambda: CLIPTextModelWithProjection(CLIPTextConfig(**spec["text"])))
    clip_g = seeded_component(seed, 4, lambda: CLIPTextModelWithProjection(CLIPTextConfig(**spec["text2"])))
    write_tokenizer(tok_root / "tokenizer_2", "sdxl2")  # CLIP-G pads with "!" (id 0), as SDXL's/SD3's tokenizer_2
    clip_g_tok = CLIPTokenizer.from_pretrained(tok_root / "tokenizer_2")
    (tok_root / "t5").rename(tok_root / "tokenizer_3")
    return diffusers.StableDiffusion3Pipeline(scheduler=scheduler, vae=vae, text_encoder=clip_l, tokenizer=clip_l_tok, text_encoder_2=clip_g,
                                              tokenizer_2=clip_g_tok, text_encoder_3=t5, tokenizer_3=t5_tok, transformer=transformer)


def save(name: str, out_root: Path = PIPELINES_DIR) -> Path:
    pipe = build(name)
    out = out_root / name
    shutil.rmtree(out, ignore_errors=True)
    pipe.save_pretrained(out, safe_serialization=True)
    for tok in ("tokenizer", "tokenizer_2", "tokenizer_3"):
        src = CACHE / "tokenizers-src" / name / tok
        if src.is_dir():
            shutil.rmtree(out / tok)
            shutil.copytree(src, out / tok)
    return out


def ensure(name: str) -> Path:
    folder = PIPELINES_DIR / name
    if not (folder / "model_index.json").exists():
        save(name)
    return folder


def describe(name: str) -> dict:
    """The manifest's description of pipeline `name`."""
    s = PIPELINES[name]
    return {"kind": s["kind"], "seed": s["seed"], "scheduler": s["scheduler"][0], "scheduler_config": s["scheduler"][1],
            "transformer": s["transformer"], "text_encoder": s["text"], **({"text_encoder_2": s["text2"]} if "text2" in s else {}),
            "t5_encoder": s["t5"], "t5_tokenizer": {"model": "Unigram", "vocab_size": T5_VOCAB_SIZE}, "vae": VAE16,
            "vae_scaling_factor": s["vae_scale"], "vae_shift_factor": s["vae_shift"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(PIPELINES))
    args = ap.parse_args()
    for name in args.names:
        out = save(name)
        n = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        print(f"{name}: {out} ({n / 1024:.0f} KiB) {json.loads((out / 'model_index.json').read_text())['_class_name']}", flush=True)


if __name__ == "__main__":
    main()
