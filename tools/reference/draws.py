"""Every random draw diffusers makes, recorded or replayed.

diffusers draws all its noise through `diffusers.utils.torch_utils.randn_tensor`,
imported by name into each pipeline, scheduler and VAE module. Recording
replaces that name in every loaded diffusers module (and in optimum's, whose
ONNX pipelines reuse diffusers' code) with a wrapper that keeps each call's
shape, values and call site, in call order. Replaying hands the recorded
values back in the same order, so another runtime (ONNX Runtime through
optimum) sees exactly the noise diffusers saw.
"""
from __future__ import annotations

import contextlib
import inspect
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.utils import torch_utils

ORIGINAL = torch_utils.randn_tensor


@dataclass
class Draw:
    shape: list[int]
    values: np.ndarray  # float32, row-major
    site: str  # "<module>.<function>" that called randn_tensor


@dataclass
class Draws:
    calls: list[Draw] = field(default_factory=list)

    def raw(self) -> bytes:
        """All values, call after call, as little-endian float32."""
        return b"".join(d.values.astype("<f4").tobytes() for d in self.calls)

    def manifest(self) -> list[dict]:
        return [{"shape": d.shape, "site": d.site} for d in self.calls]

    @staticmethod
    def from_raw(raw: bytes, manifest: list[dict]) -> "Draws":
        flat = np.frombuffer(raw, dtype="<f4")
        out, at = Draws(), 0
        for m in manifest:
            n = int(np.prod(m["shape"]))
            out.calls.append(Draw(list(m["shape"]), flat[at:at + n].copy(), m["site"]))
            at += n
        assert at == flat.size, "draws file longer than its manifest"
        return out


def _caller_site() -> str:
    frame = inspect.currentframe().f_back.f_back  # randn_tensor wrapper → its caller
    module = frame.f_globals.get("__name__", "?").rsplit(".", 1)[-1]
    return f"{module}.{frame.f_code.co_name}"


def _targets():
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name.startswith("diffusers") or name.startswith("optimum")):
            continue
        if getattr(mod, "randn_tensor", None) is ORIGINAL:
            yield mod


@contextlib.contextmanager
def serving(fn):
    """Inside the block every randn_tensor call diffusers (or optimum) makes is answered by `fn`."""
    mods = list(_targets()) + [torch_utils]
    for m in mods:
        m.randn_tensor = fn
    try:
        yield
    finally:
        for m in mods:
            m.randn_tensor = ORIGINAL


@contextlib.contextmanager
def recording():
    """Yields a Draws that fills up with every randn_tensor call made inside the block."""
    draws = Draws()

    def record(shape, generator=None, device=None, dtype=None, layout=None, **kw):
        t = ORIGINAL(shape, generator=generator, device=device, dtype=dtype, layout=layout, **kw)
        draws.calls.append(Draw(list(t.shape), t.detach().to(torch.float32).cpu().numpy().copy(), _caller_site()))
        return t

    with serving(record):
        yield draws


@contextlib.contextmanager
def replaying(draws: Draws):
    """Inside the block randn_tensor returns the recorded draws in order (shapes must match)."""
    queue = list(draws.calls)
    used: list[Draw] = []

    def replay(shape, generator=None, device=None, dtype=None, layout=None, **kw):
        if not queue:
            raise AssertionError(f"more randn_tensor calls than recorded ({len(used)}); this one from {_caller_site()}")
        d = queue.pop(0)
        if list(shape) != d.shape:
            raise AssertionError(f"draw {len(used)}: shape {list(shape)} but recorded {d.shape} (from {d.site})")
        used.append(d)
        return torch.from_numpy(d.values.reshape(d.shape)).to(device=device or "cpu", dtype=dtype or torch.float32)

    with serving(replay):
        yield
    if queue:
        raise AssertionError(f"{len(queue)} recorded draws were not used")
