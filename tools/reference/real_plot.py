"""The plot of `npm run bench:real`: seconds per 512×512 image per peer, one panel per model,
each bar split into text encoder / denoising / VAE decode where the peer reports them.

    tools/reference/.venv/bin/python tools/reference/real_plot.py docs/bench-real.json docs/bench-real.png
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODELS = {"sd-turbo": "SD-Turbo, 1 step", "sd15": "SD 1.5, 20 steps, CFG 7.5", "sdxl-turbo": "SDXL-Turbo, 1 step"}
PEERS = ["graphserve", "graphserve-stages", "ort", "diffusers", "ov-fp32", "ov-fp32-default", "ov-int8", "sdcpp"]
LABELS = {
    "graphserve": "graphserve (HTTP)", "graphserve-stages": "graphserve in-process", "ort": "optimum ORT",
    "diffusers": "diffusers PyTorch", "ov-fp32": "OV GenAI fp32 (f32)", "ov-fp32-default": "OV GenAI fp32 (default prec.)",
    "ov-int8": "OV GenAI int8", "sdcpp": "stable-diffusion.cpp",
}
STAGES = [("text_ms", "text encoder", "#8da0cb"), ("denoise_ms", "denoising", "#66c2a5"), ("vae_ms", "VAE decode", "#fc8d62")]


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    data = json.loads(src.read_text())
    entries = [e for e in data["entries"].values() if e.get("runs") and not e.get("error")]
    models = [m for m in MODELS if any(e["model"] == m for e in entries)]
    if not models:
        raise SystemExit("no measurements to plot")
    fig, axes = plt.subplots(len(models), 1, figsize=(9, 1.2 + 0.45 * len(PEERS) * len(models)), squeeze=False)
    for ax, model in zip(axes[:, 0], models):
        rows = [e for p in PEERS for e in entries if e["model"] == model and e["peer"] == p]
        for y, e in enumerate(rows):
            total = statistics.median(r["seconds"] for r in e["runs"])
            left = 0.0
            if all(k in e["runs"][0] for k, _, _ in STAGES):
                for k, label, colour in STAGES:
                    w = statistics.median(r[k] for r in e["runs"]) / 1000
                    ax.barh(y, w, left=left, color=colour, label=label if y == 0 or not ax.get_legend_handles_labels()[1].count(label) else None)
                    left += w
            ax.barh(y, total - left, left=left, color="#cccccc", label="other / not split" if "other / not split" not in ax.get_legend_handles_labels()[1] else None)
            ax.text(total, y, f" {total:.1f} s", va="center", fontsize=8)
        ax.set_yticks(range(len(rows)), [LABELS[e["peer"]] for e in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(MODELS[model], fontsize=10)
        ax.set_xlabel("seconds per 512×512 image (median)", fontsize=8)
        ax.margins(x=0.15)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    m = data["machine"]
    fig.suptitle(f"bench:real on {m['cpu']}, {m['cores']} cores (same intra-op threads for every peer)", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
