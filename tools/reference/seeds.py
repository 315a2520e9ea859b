#!/usr/bin/env python3
"""Records what the reference generators draw for a seed, for test/noise-*.test.ts.

  tools/reference/.venv/bin/python tools/reference/seeds.py   (from the repository root)

Writes test/fixtures/seeds/mt19937.json (OpenVINO GenAI's CppStdGenerator, the
generator OVMS's image-generation calculator gets for `rng_seed`) and
test/fixtures/seeds/torch-cpu.json (torch.Generator("cpu") + torch.randn,
what a diffusers seed means), and test/fixtures/seeds/glibc-libm.json (this
machine's glibc logf and fmaf, which the ports of both emulate). Needs openvino-genai and torch (CPU is enough).

Each case is one generator, fresh for its seed, and a list of randn calls made
on it in order (later calls see the state the earlier ones left, including a
cached second normal). Small results are stored whole; large ones as their
first and last 64 values and the SHA-256 of all float32 values, little-endian.
JSON numbers hold float32 values exactly (every float32 is a double).
"""
import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layout import SEEDS as OUT, shown  # noqa: E402

COMMAND = f"{shown(Path(sys.prefix))}/bin/python tools/reference/seeds.py"  # the venv this run used
SEEDS = [0, 1, 42, 2**32 + 42, 2**63 + 5, 2**64 - 1]
WHOLE_LIMIT = 256
EDGE = 64

# Shapes: SD/SDXL latents (4 channels), SD3/FLUX latents (16 channels), odd
# sizes that leave a normal cached between calls, and torch's special cases
# (numel < 16 takes another algorithm; numel % 16 != 0 redraws the last block).
MT19937_CALLS = [
    [[1, 4, 8, 8]],
    [[2, 4, 64, 64]],
    [[1, 16, 16, 16]],
    [[1, 3, 5, 7], [2, 3], [1, 4, 8, 8]],
]
TORCH_CALLS = [
    [[1, 4, 8, 8]],
    [[2, 4, 64, 64]],
    [[1, 16, 16, 16]],
    [[20]],
    [[1, 37]],
    [[1]],
    [[15]],
    [[2, 3]],
    [[8], [3], [20], [5], [1, 4, 8, 8], [1]],
]


def record(values: np.ndarray) -> dict:
    flat = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
    out = {"count": int(flat.size), "sha256": hashlib.sha256(flat.tobytes()).hexdigest()}
    if flat.size <= WHOLE_LIMIT:
        out["values"] = [float(v) for v in flat]
    else:
        out["first"] = [float(v) for v in flat[:EDGE]]
        out["last"] = [float(v) for v in flat[-EDGE:]]
    return out


def mt19937_case(seed: int, calls: list) -> dict:
    import openvino as ov
    import openvino_genai as genai

    if seed < 2**63:
        # The path OVMS takes: rng_seed in the request properties makes a fresh CppStdGenerator.
        config = genai.ImageGenerationConfig()
        config.update_generation_config(rng_seed=seed)
        generator = config.generator
        how = "ImageGenerationConfig.update_generation_config(rng_seed=seed).generator"
    else:
        # The Python binding casts properties through int64; seed(size_t) takes the full range.
        generator = genai.CppStdGenerator(0)
        generator.seed(seed)
        how = "CppStdGenerator(0).seed(seed)"
    results = [dict(shape=shape, **record(np.array(generator.randn_tensor(ov.Shape(shape)).data))) for shape in calls]
    return {"seed": str(seed), "made_with": how, "calls": results}


def torch_case(seed: int, calls: list) -> dict:
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    results = [dict(shape=shape, **record(torch.randn(shape, generator=generator, dtype=torch.float32).numpy())) for shape in calls]
    return {"seed": str(seed), "made_with": 'torch.Generator("cpu").manual_seed(seed); torch.randn(shape, generator=g, dtype=torch.float32) per call', "calls": results}


def libm_cases() -> dict:
    """glibc's logf and fmaf on inputs the generators hit, including ones where a naive port goes wrong."""
    import ctypes

    libm = ctypes.CDLL("libm.so.6")
    libm.logf.restype = libm.fmaf.restype = ctypes.c_float
    libm.logf.argtypes = [ctypes.c_float]
    libm.fmaf.argtypes = [ctypes.c_float] * 3
    rng = np.random.default_rng(15)
    # logf: the polar method's r2 and Box-Muller's u1 lie in (0, 1]; add edges and a few outside.
    logf_in = np.concatenate([
        rng.integers(1, 2**24, 2000) * np.float32(2**-24),
        (rng.random(300, dtype=np.float32) * np.float32(1e-6)),
        np.array([1, 0.5, 2**-24, 1 - 2**-24, 2**-126, 2**-149, 3e-40, 2, 1e30, 0.70710677], dtype=np.float32),
    ]).astype(np.float32)
    naive = np.float32(np.log(logf_in.astype(np.float64)))
    logf_out = np.array([libm.logf(float(x)) for x in logf_in], dtype=np.float32)
    # fmaf: random triples, and products that land exactly halfway between floats once rounded to double.
    a = rng.random(1000, dtype=np.float32) * 4 - 2
    b = rng.random(1000, dtype=np.float32) * 4 - 2
    c = rng.random(1000, dtype=np.float32) * 4 - 2
    # Halfway cases: a·b = ±(2^-24 − 2^-70) puts the double sum exactly between two floats,
    # and only the fused rounding sees which side the exact sum is on.
    up, down = 2**-12 * (1 + 2**-23), 2**-12 * (1 - 2**-23)
    hard = [(sa * up * 2**k, down, sc * (1 + 2**-23) * 2**(2 * k)) for k in (0, 5, -9) for sa in (1, -1) for sc in (1, -1)]
    a = np.concatenate([a, [h[0] for h in hard]]).astype(np.float32)
    b = np.concatenate([b, [h[1] for h in hard]]).astype(np.float32)
    c = np.concatenate([c, [h[2] for h in hard]]).astype(np.float32)
    fma_out = np.array([libm.fmaf(float(x), float(y), float(z)) for x, y, z in zip(a, b, c)], dtype=np.float32)
    bits = lambda arr: [int(v) for v in np.asarray(arr, dtype="<f4").view("<u4")]
    return {
        "logf": {"x": bits(logf_in), "logf": bits(logf_out), "differs_from_rounded_log": int(np.sum(naive != logf_out))},
        "fmaf": {"a": bits(a), "b": bits(b), "c": bits(c), "fmaf": bits(fma_out)},
    }


def torch_rare_blocks() -> list:
    """Blocks of 16 whose u2 hits one of the 3 (of 2^24) values where the Cephes
    reduction's last step, x + y*DP3, rounds differently fused than unfused: they
    show whether torch's build fused it. torch.rand gives the same uniforms that
    torch.randn fills first (one engine output each), so the block is found there."""
    import torch

    n = 2**24
    rare = {12582909, 12582912, 12582913}  # u2 * 2^24; found by trying every u2 in both readings
    blocks = []
    for seed in range(64):
        u = torch.rand(n, generator=torch.Generator("cpu").manual_seed(seed)).numpy()
        hits = [int(i) for i in np.nonzero(np.isin((u * 2**24).astype(np.int64), list(rare)))[0] if i % 16 >= 8]
        if not hits:
            continue
        normals = torch.randn(n, generator=torch.Generator("cpu").manual_seed(seed)).numpy()
        for i in hits:
            b = i - i % 16
            blocks.append({"seed": seed, "numel": n, "offset": b, "uniforms": [float(v) for v in u[b:b + 16]], "normals": [float(v) for v in normals[b:b + 16]]})
        if len(blocks) >= 4:
            return blocks
    return blocks


def write(name: str, generator: str, versions: dict, cases: list, extra: dict | None = None) -> None:
    doc = {
        "generator": generator,
        "made_by": {"command": COMMAND, "python": sys.version.split()[0], "machine": platform.machine(), **versions},
        "cases": cases,
    }
    path = OUT / f"{name}.json"
    # One case per line: readable diffs without one number per line.
    head = json.dumps({**{k: v for k, v in doc.items() if k != "cases"}, **(extra or {})})[:-1]
    lines = ",\n".join(json.dumps(case, separators=(",", ":")) for case in cases)
    path.write_text(f'{head}, "cases": [\n{lines}\n]}}\n')
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main() -> None:
    import openvino_genai as genai
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    write(
        "mt19937",
        "openvino_genai.CppStdGenerator (Linux build: libstdc++ std::mt19937 + std::normal_distribution<float>, glibc logf)",
        {"openvino_genai": genai.__version__},
        [mt19937_case(seed, calls) for seed in SEEDS for calls in MT19937_CALLS],
    )
    libm = OUT / "glibc-libm.json"
    libm.write_text(json.dumps({"made_by": {"command": COMMAND, "libc": " ".join(platform.libc_ver())}, "as": "float32 bit patterns", **libm_cases()}) + "\n")
    print(f"wrote {libm} ({libm.stat().st_size} bytes)")
    write(
        "torch-cpu",
        "torch.Generator('cpu') + torch.randn, float32",
        {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        [torch_case(seed, calls) for seed in SEEDS for calls in TORCH_CALLS],
        {"rare_blocks": torch_rare_blocks()},
    )


if __name__ == "__main__":
    main()
