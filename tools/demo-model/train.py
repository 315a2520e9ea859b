"""Trains the demo model: a small AutoencoderKL, then a small CLIP text encoder
and UNet2DConditionModel together, on the procedural shapes of shapes.py.
Seeded, CPU, resumable (a checkpoint every --save-every steps in .cache/;
running the same command again continues from the last one).

    python tools/demo-model/train.py [--vae-steps N] [--unet-steps N] [--minutes M]
"""
from __future__ import annotations

import argparse
import copy
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import shapes  # noqa: E402
from model import CACHE, build_text_encoder, build_tokenizer, build_unet, build_vae, keep_1x1, noise_schedule  # noqa: E402

CKPT = CACHE / "checkpoints"
PEAK_LR = 5e-4
CFG_DROP = 0.1  # share of captions replaced by "" so classifier-free guidance works
# Squares are drawn more often: the checker asks most of them (a square must fill ≥ 0.89 of its box, so
# rounded corners fail it, while a circle passes anywhere in 0.64–0.89); within a shape every training
# combination is equally likely, and the held-out ones are never drawn.
SHAPE_WEIGHTS = {"circle": 0.275, "square": 0.45, "triangle": 0.275}


def cosine_lr(step: int, total: int, peak: float, warmup: int = 0, floor: float = 0.02) -> float:
    """Linear warm-up, then cosine decay to floor·peak at `total`: the late small steps sharpen edges and
    corners that a constant rate keeps jittering. A function of the step alone, so a resumed run follows it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * p)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def pick_combos(combos: list[tuple[str, str, str]], n: int, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    by_shape = {s: [c for c in combos if c[0] == s] for s in shapes.SHAPES}
    names = list(SHAPE_WEIGHTS)
    drawn = rng.choice(len(names), size=n, p=[SHAPE_WEIGHTS[s] for s in names])
    return [by_shape[names[k]][rng.integers(len(by_shape[names[k]]))] for k in drawn]


class Stop:
    """Set by SIGTERM/SIGINT: the loops end at the next step with a checkpoint, and the run is recorded."""
    requested = False


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never a half-written checkpoint


def train_vae(steps: int, batch: int, save_every: int, deadline: float) -> None:
    path = CKPT / "vae.pt"
    vae = build_vae()
    keep_1x1(vae)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    step = 0
    if path.exists():
        st = torch.load(path, weights_only=False)
        vae.load_state_dict(st["model"]), opt.load_state_dict(st["opt"])
        step = st["step"]
        if st.get("done"):
            return
    rng = np.random.default_rng(1000 + step)
    # Training combinations only, like the UNet: the autoencoder knows nothing of captions, but no picture of
    # a held-out combination is seen by any part of the model.
    combos = shapes.train_combos()
    vae.train()
    while step < steps and time.time() < deadline and not Stop.requested:
        set_lr(opt, cosine_lr(step, steps, 1e-3, floor=0.01))
        x = torch.from_numpy(shapes.draw(pick_combos(combos, batch, rng), rng))
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        kl = post.kl().mean()
        loss = F.mse_loss(rec, x) + 1e-6 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        keep_1x1(vae)
        step += 1
        if step % 50 == 0:
            log(f"vae step {step} mse {F.mse_loss(rec, x).item():.5f} kl {kl.item():.1f}")
        if step % save_every == 0:
            save(path, dict(model=vae.state_dict(), opt=opt.state_dict(), step=step, done=False))
    save(path, dict(model=vae.state_dict(), opt=opt.state_dict(), step=step, done=step >= steps))


def latent_scale(vae, rng: np.random.Generator) -> float:
    """1 / std of the latents, as Stable Diffusion's scaling_factor: unit-variance latents for the UNet."""
    combos = shapes.train_combos()
    with torch.no_grad():
        x = torch.from_numpy(shapes.draw([combos[i] for i in rng.integers(len(combos), size=512)], rng))
        z = vae.encode(x).latent_dist.mean
    return float(1.0 / z.std())


def train_unet(steps: int, batch: int, save_every: int, deadline: float) -> None:
    vae = build_vae()
    vae.load_state_dict(torch.load(CKPT / "vae.pt", weights_only=False)["model"])
    vae.eval().requires_grad_(False)
    tok = build_tokenizer()
    text, unet = build_text_encoder(), build_unet()
    # Channels-last convolutions: the same maths, about twice as fast on this CPU (0.86 → 0.41 s a UNet step at batch 32).
    unet = unet.to(memory_format=torch.channels_last)
    params = list(text.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=PEAK_LR, weight_decay=0.0)
    path = CKPT / "unet.pt"
    step = 0
    scale = latent_scale(vae, np.random.default_rng(5))
    ema, loss_so_far = None, None
    if path.exists():
        st = torch.load(path, weights_only=False)
        text.load_state_dict(st["text"]), unet.load_state_dict(st["unet"]), opt.load_state_dict(st["opt"])
        step, scale = st["step"], st["scale"]
        ema, loss_so_far = st["ema"], st.get("loss")
    if ema is None:
        ema = {"text": copy.deepcopy(text.state_dict()), "unet": copy.deepcopy(unet.state_dict())}
    sched = noise_schedule()
    ac = torch.from_numpy(sched.alphas_cumprod.numpy() if hasattr(sched.alphas_cumprod, "numpy") else np.asarray(sched.alphas_cumprod)).float()
    rng = np.random.default_rng(2000 + step)
    gen = torch.Generator().manual_seed(3000 + step)
    combos = shapes.train_combos()
    text.train(), unet.train()
    t0, losses = time.time(), []

    def checkpoint() -> None:
        save(path, dict(text=text.state_dict(), unet=unet.state_dict(), opt=opt.state_dict(), ema=ema, step=step, scale=scale,
                        loss=float(np.mean(losses[-200:])) if losses else loss_so_far))
    while step < steps and time.time() < deadline and not Stop.requested:
        set_lr(opt, cosine_lr(step, steps, PEAK_LR, warmup=100))
        picked = pick_combos(combos, batch, rng)
        x = torch.from_numpy(shapes.draw(picked, rng))
        caps = ["" if rng.random() < CFG_DROP else shapes.caption(*c) for c in picked]
        ids = tok(caps, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample(gen) * scale
        noise = torch.randn(z.shape, generator=gen)
        t = torch.randint(0, 1000, (batch,), generator=gen)
        a = ac[t].view(-1, 1, 1, 1)
        zt = (a.sqrt() * z + (1 - a).sqrt() * noise).contiguous(memory_format=torch.channels_last)
        v = a.sqrt() * noise - (1 - a).sqrt() * z  # v-prediction target
        enc = text(ids)[0]
        pred = unet(zt, t, encoder_hidden_states=enc).sample
        loss = F.mse_loss(pred, v)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, mod in (("text", text), ("unet", unet)):
                for k, p in mod.state_dict().items():
                    if p.dtype.is_floating_point:
                        ema[name][k].mul_(decay).add_(p, alpha=1 - decay)
        losses.append(loss.item())
        if step % 50 == 0:
            log(f"unet step {step} loss {np.mean(losses[-50:]):.4f} ({(time.time() - t0) / len(losses):.2f} s/step)")
        if step % save_every == 0:
            checkpoint()
    checkpoint()
    log(f"unet stopped at step {step}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--unet-steps", type=int, default=4500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=80, help="stop (with a checkpoint) after this long; run again to go on")
    ap.add_argument("--threads", type=int, default=1, help="more threads only help on an idle machine (shared cores make 2 threads 20× slower)")
    args = ap.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(Stop, "requested", True))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    CKPT.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.minutes * 60
    start = time.time()
    train_vae(args.vae_steps, 32, args.save_every, deadline)
    log(f"vae done ({time.time() - start:.0f} s)")
    train_unet(args.unet_steps, args.batch, args.save_every, deadline)
    log(f"training wall time this run: {time.time() - start:.0f} s")
    # Every run of this command, appended: a resumed training's wall time is their sum.
    runs_file = CACHE / "train-runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else []
    runs.append({"seconds": round(time.time() - start), **vars(args)})
    runs_file.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
