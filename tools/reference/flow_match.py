"""FlowMatchEulerDiscreteScheduler reference values from diffusers, for test/flow-match.test.ts.

Runs the scheduler the way diffusers' FLUX and SD3 pipelines drive it (FLUX passes
sigmas = linspace(1, 1/n, n) and mu from the image sequence length; SD3 passes
neither; img2img cuts with get_timesteps) and records the float32 schedules, a
few Euler steps and scale_noise on small seeded tensors.

    /work/venv-ref/bin/python tools/reference/flow_match.py test/fixtures/flow-match/diffusers.json
"""

import json
import sys

import diffusers
import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

# scheduler_config.json of the published models (FLUX.1-schnell, FLUX.1-dev, SD3-medium), plus a linear-μ variant.
CONFIGS = {
    "flux-schnell": {"base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": False},
    "flux-dev": {"base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True},
    "sd3": {"num_train_timesteps": 1000, "shift": 3.0},
    "linear-mu": {"num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": True, "time_shift_type": "linear", "base_shift": 0.5, "max_shift": 1.15},
}


def calculate_shift(seq_len, cfg):
    base_seq, max_seq = cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096)
    base_shift, max_shift = cfg.get("base_shift", 0.5), cfg.get("max_shift", 1.15)
    m = (max_shift - base_shift) / (max_seq - base_seq)
    return seq_len * m + (base_shift - m * base_seq)


def f32list(t):
    return [float(x) for x in torch.as_tensor(t).to(torch.float32).flatten().tolist()]


def case(name, steps, strength=1.0, seq_len=None, flux_sigmas=False):
    cfg = CONFIGS[name]
    s = FlowMatchEulerDiscreteScheduler.from_config(cfg)
    kwargs = {}
    sigmas = None
    if flux_sigmas:
        sigmas = np.linspace(1.0, 1 / steps, steps)
        kwargs["sigmas"] = sigmas
    if s.config.use_dynamic_shifting:
        kwargs["mu"] = calculate_shift(seq_len, cfg)
    s.set_timesteps(steps, **kwargs)
    # get_timesteps of the img2img/inpaint pipelines.
    init = min(steps * strength, steps)
    t_start = int(max(steps - init, 0))
    timesteps = s.timesteps[t_start:]
    s.set_begin_index(t_start)

    g = torch.Generator().manual_seed(steps * 31 + len(name))
    shape = (1, 4, 2, 3)
    x0 = torch.randn(shape, generator=g)
    noise = torch.randn(shape, generator=g)
    latents = s.scale_noise(x0, timesteps[:1], noise) if strength < 1 else noise.clone()
    outputs, renoised = [], []
    for i, t in enumerate(timesteps):
        v = torch.randn(shape, generator=g)
        latents = s.step(v, t, latents, return_dict=False)[0]
        outputs.append({"model_output": f32list(v), "latents": f32list(latents)})
        if i + 1 < len(timesteps):
            # inpainting's blend: the original re-noised to the next step's σ
            renoised.append(f32list(s.scale_noise(x0, timesteps[i + 1 : i + 2], noise)))
    return {
        "name": name,
        "config": cfg,
        "steps": steps,
        "strength": strength,
        "image_seq_len": seq_len,
        "sigmas_passed": None if sigmas is None else [float(x) for x in sigmas],
        "mu": kwargs.get("mu"),
        "timesteps": f32list(timesteps),
        "sigmas": f32list(s.sigmas[t_start:]),
        "x0": f32list(x0),
        "noise": f32list(noise),
        "steps_run": outputs,
        "renoised": renoised,
    }


def main(out):
    cases = [
        case("flux-schnell", 4, flux_sigmas=True, seq_len=16),
        case("flux-schnell", 3, strength=0.6, flux_sigmas=True, seq_len=16),
        case("flux-dev", 28, flux_sigmas=True, seq_len=1024),
        case("flux-dev", 5, strength=0.6, flux_sigmas=True, seq_len=4096),
        case("flux-dev", 2, flux_sigmas=True, seq_len=16),
        case("sd3", 28),
        case("sd3", 5, strength=0.6),
        case("linear-mu", 10, seq_len=4096),
    ]
    manifest = {
        "made_by": "tools/reference/flow_match.py",
        "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "note": "float32 values written as exact decimals; inputs drawn from torch.Generator seeds",
    }
    with open(out, "w") as f:
        json.dump({"manifest": manifest, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
