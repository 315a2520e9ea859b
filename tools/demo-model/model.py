"""The demo model's components, in diffusers' and transformers' own classes,
built from the configs below with seeded weights (training starts from these).

The tokenizer is CLIP's byte-level BPE layout (vocab.json + merges.txt, ids as
CLIP orders them) with merges for the demo's words, so graphserve's CLIP
tokenizer and transformers' CLIPTokenizer read the same files.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
import os
CACHE = Path(os.environ.get("DEMO_MODEL_CACHE", HERE / ".cache"))  # another folder for side experiments
sys.path.insert(0, str(HERE.parent / "reference"))
from pipelines import _added, bytes_to_unicode  # noqa: E402  (the reference tool's CLIP byte table)

import shapes  # noqa: E402

WORDS = ["a", "an", "the", "on", "of", "with", "background"] + shapes.SHAPES + shapes.NAMES


def vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's order: 256 byte symbols, the same with "</w>", merged symbols, then the two specials last."""
    chars = [c for _, c in bytes_to_unicode()]
    tokens = chars + [c + "</w>" for c in chars]
    seen = set(tokens)
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        acc = word[0]
        for i in range(1, len(word)):
            piece = word[i] + ("</w>" if i == len(word) - 1 else "")
            if acc + piece not in seen:
                merges.append((acc, piece))
                tokens.append(acc + piece)
                seen.add(acc + piece)
            acc += piece
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer(dir: Path) -> None:
    v, merges = vocab()
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "vocab.json").write_text(json.dumps(v, ensure_ascii=False))
    (dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = {"bos_token": _added("<|startoftext|>"), "eos_token": _added("<|endoftext|>"), "unk_token": _added("<|endoftext|>"),
               "pad_token": _added("<|endoftext|>")}
    (dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {"add_prefix_space": False, **special, "do_lower_case": True, "errors": "replace", "model_max_length": MAX_TOKENS,
              "tokenizer_class": "CLIPTokenizer"}
    (dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


MAX_TOKENS = 77  # CLIP's context; graphserve and diffusers pad every prompt to it
VOCAB_SIZE = len(vocab()[0])

TEXT = dict(vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS, hidden_act="quick_gelu", bos_token_id=VOCAB_SIZE - 2, eos_token_id=VOCAB_SIZE - 1,
            pad_token_id=VOCAB_SIZE - 1, projection_dim=64, layer_norm_eps=1e-5)
# The trained autoencoder: three blocks, 32×32 pixels ↔ 8×8×4 latents. Its conv_in and conv_out are kept 1×1
# (outer taps zero), so fixed resampling stages can be put around it unchanged (see expand_vae).
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8,
           down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3, sample_size=shapes.SIZE)
# The shipped autoencoder: the same weights with four more halvings on the image side, 512×512 ↔ 8×8×4.
EXTRA = 4
SHIPPED_VAE = dict(VAE, block_out_channels=(16,) * (EXTRA + 1) + (32, 32), down_block_types=["DownEncoderBlock2D"] * (EXTRA + 3),
                   up_block_types=["UpDecoderBlock2D"] * (EXTRA + 3), sample_size=shapes.SIZE << EXTRA)
UNET = dict(sample_size=shapes.SIZE // 4, in_channels=4, out_channels=4, block_out_channels=(64, 128), layers_per_block=1, norm_num_groups=16,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=TEXT["hidden_size"], attention_head_dim=8)
# v-prediction with "trailing" spacing: the first step starts from pure noise at t=999 and even 2 steps give a clean picture.
SCHEDULER = ("DDIMScheduler", dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", trained_betas=None,
                                   prediction_type="v_prediction", timestep_spacing="trailing", steps_offset=1, clip_sample=False,
                                   set_alpha_to_one=False))


def build_vae():
    from diffusers import AutoencoderKL
    torch.manual_seed(1)
    return AutoencoderKL(**VAE)


def keep_1x1(vae) -> None:
    """Zeroes the outer taps of conv_in and conv_out: at any resolution they then act pixel by pixel."""
    with torch.no_grad():
        for conv in (vae.encoder.conv_in, vae.decoder.conv_out):
            centre = conv.weight[:, :, 1, 1].clone()
            conv.weight.zero_()
            conv.weight[:, :, 1, 1] = centre


def _blur(conv: torch.nn.Conv2d) -> None:
    """Each channel to itself through a [1 2 1]ᵀ[1 2 1]/16 kernel: smooth 2× resampling, no mixing."""
    k = torch.tensor([1.0, 2.0, 1.0])
    k = torch.outer(k, k) / 16
    with torch.no_grad():
        conv.weight.zero_()
        for c in range(conv.weight.shape[0]):
            conv.weight[c, c] = k
        conv.bias.zero_()


def _identity_resnet(block) -> None:
    for r in block.resnets:
        with torch.no_grad():
            r.conv2.weight.zero_()
            r.conv2.bias.zero_()  # out = (x + 0) / output_scale_factor (1): the identity


def expand_vae(trained):
    """The shipped AutoencoderKL: the trained 32-pixel one with EXTRA fixed 2× stages on the image side
    (identity resnets, blur-resampling convs). The image-side 3×3 convs are 1×1 in the trained model, so on
    a smooth 512×512 image the trained blocks see what they saw at 32×32 during training."""
    from diffusers import AutoencoderKL
    big = AutoencoderKL(**SHIPPED_VAE)
    src = trained.state_dict()
    dst = big.state_dict()
    for k in dst:
        m = re.match(r"(encoder\.down_blocks|decoder\.up_blocks)\.(\d+)\.(.*)", k)
        if m is None:
            name = k
        else:
            i = int(m.group(2))
            if m.group(1).startswith("encoder"):
                if i < EXTRA:
                    continue
                name = f"{m.group(1)}.{i - EXTRA}.{m.group(3)}"
            else:
                if i > 2 or (i == 2 and m.group(3).startswith("upsamplers")):
                    continue
                name = k
        dst[k] = src[name].clone()
    big.load_state_dict(dst)
    for i in range(EXTRA):
        _identity_resnet(big.encoder.down_blocks[i])
        _blur(big.encoder.down_blocks[i].downsamplers[0].conv)
    for i in range(2, EXTRA + 3):
        if i > 2:
            _identity_resnet(big.decoder.up_blocks[i])
        if big.decoder.up_blocks[i].upsamplers is not None:
            _blur(big.decoder.up_blocks[i].upsamplers[0].conv)
    big.register_to_config(scaling_factor=trained.config.scaling_factor)
    return big.eval()


def build_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(2)
    return UNet2DConditionModel(**UNET)


def build_text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(3)
    return CLIPTextModel(CLIPTextConfig(**TEXT))


def build_tokenizer():
    from transformers import CLIPTokenizer
    write_tokenizer(CACHE / "tokenizer")
    return CLIPTokenizer.from_pretrained(CACHE / "tokenizer")


def noise_schedule():
    import diffusers
    cls, cfg = SCHEDULER
    return getattr(diffusers, cls).from_config(cfg)
