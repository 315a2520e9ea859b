"""One peer of `npm run bench:real` on one full-size model, in its own process (issue 18).

    tools/reference/.venv/bin/python tools/reference/real_peers.py --model sd-turbo --peer ort [--threads 2] [--warmup 1] [--reps 3]

Peers (every one reads the files real_models.py made, so the weights are the same):
  ort        optimum's ORT pipeline (ORTPipelineForText2Image) on <model>/onnx-fp32: the engine graphserve uses
  diffusers  diffusers' pipeline on PyTorch, CPU, fp32, on <model>/diffusers
  ov-fp32    openvino_genai.Text2ImagePipeline on <model>/ov-fp32 at INFERENCE_PRECISION_HINT f32 (the same arithmetic as the others)
  ov-fp32-default  the same IR at the CPU plugin's default precision (what OVMS runs unless told otherwise; bf16 on CPUs with it)
  ov-int8    openvino_genai.Text2ImagePipeline on <model>/ov-int8 (OVMS export_model.py's default weights), default precision
  sdcpp      stable-diffusion.cpp through stable-diffusion-cpp-python on <model>/sdcpp/model.safetensors (if installed)

Every peer: the same request (prompt, 512×512, the model's steps and guidance, seed), `--warmup` runs
first (not counted), then `--reps` timed runs. Threads: one intra-op pool of `--threads` threads
(ORT intra_op_num_threads, torch.set_num_threads, OpenVINO INFERENCE_NUM_THREADS, sd.cpp n_threads);
the driver also sets OMP_NUM_THREADS to it.

Prints one JSON object (the last stdout line): load seconds, per-run seconds, text-encoder / denoiser
/ VAE-decode milliseconds per run, RSS after load and peak RSS (ru_maxrss, so load included).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from real_models import CACHE, MODELS  # noqa: E402

PROMPT = "a photo of an astronaut riding a horse on mars"
SIZE = 512
SEED = 42
PEERS = ("ort", "diffusers", "ov-fp32", "ov-fp32-default", "ov-int8", "sdcpp")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Stages:
    """Wall time spent inside wrapped calls, per stage, for the current run."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def reset(self) -> None:
        self.ms, self.calls = {}, {}

    def wrap(self, obj, attr: str, stage: str) -> None:
        inner = getattr(obj, attr)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000
                self.calls[stage] = self.calls.get(stage, 0) + 1

        setattr(obj, attr, timed)


def finite_fraction(image: np.ndarray) -> float:
    a = np.asarray(image, dtype=np.float64)
    return float(np.isfinite(a).mean())


# ---------------------------------------------------------------------------
# Peers: each returns (run(): (image array, stage ms dict), description dict) after loading.

def load_ort(model: str, threads: int, stages: Stages):
    import onnxruntime as ort
    from optimum.onnxruntime import ORTPipelineForText2Image

    spec = MODELS[model]
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    pipe = ORTPipelineForText2Image.from_pretrained(CACHE / model / "onnx-fp32", provider="CPUExecutionProvider", session_options=so)
    for attr, stage in [("text_encoder", "text"), ("text_encoder_2", "text"), ("unet", "denoise"), ("vae_decoder", "vae")]:
        comp = getattr(pipe, attr, None)
        if comp is not None:
            stages.wrap(comp, "forward", stage)

    def run():
        import torch

        g = torch.Generator("cpu").manual_seed(SEED)
        out = pipe(PROMPT, width=SIZE, height=SIZE, num_inference_steps=spec["steps"], guidance_scale=spec["guidance"], generator=g, output_type="np")
        return out.images[0], dict(stages.ms)

    return run, {"engine": f"onnxruntime {ort.__version__}", "files": "onnx-fp32"}


def load_diffusers(model: str, threads: int, stages: Stages):
    import diffusers
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    spec = MODELS[model]
    folder = CACHE / model / "diffusers"
    cls = json.loads((folder / "model_index.json").read_text())["_class_name"]
    pipe = getattr(diffusers, cls).from_pretrained(folder, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    for attr, stage in [("text_encoder", "text"), ("text_encoder_2", "text"), ("unet", "denoise")]:
        comp = getattr(pipe, attr, None)
        if comp is not None:
            stages.wrap(comp, "forward", stage)
    stages.wrap(pipe.vae, "decode", "vae")

    def run():
        g = torch.Generator("cpu").manual_seed(SEED)
        with torch.inference_mode():
            out = pipe(PROMPT, width=SIZE, height=SIZE, num_inference_steps=spec["steps"], guidance_scale=spec["guidance"], generator=g, output_type="np")
        return out.images[0], dict(stages.ms)

    return run, {"engine": f"torch {torch.__version__} (diffusers {diffusers.__version__})", "files": "diffusers"}


def load_openvino(model: str, threads: int, stages: Stages, ir: str, precision: str | None):
    import openvino as ov
    import openvino_genai as ov_genai

    spec = MODELS[model]
    props: dict[str, object] = {"INFERENCE_NUM_THREADS": threads}
    if precision:
        props["INFERENCE_PRECISION_HINT"] = precision
    default_precision = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    pipe = ov_genai.Text2ImagePipeline(str(CACHE / model / ir), "CPU", **props)

    def run():
        gen = ov_genai.TorchGenerator(SEED)
        kwargs = dict(width=SIZE, height=SIZE, num_inference_steps=spec["steps"], guidance_scale=spec["guidance"], generator=gen)
        tensor = pipe.generate(PROMPT, **kwargs)
        m = pipe.get_performance_metrics()
        text = sum(m.get_text_encoder_infer_duration().values())
        vae = m.get_vae_decoder_infer_duration()
        denoise = float(sum(m.raw_metrics.unet_inference_durations)) / 1000  # raw durations are in µs, the getters in ms
        if "GRAPHSERVE_REAL_DEBUG" in os.environ:
            print(f"genai metrics: generate {m.get_generate_duration()} inference {m.get_inference_duration()} text {m.get_text_encoder_infer_duration()} "
                  f"unet raw {list(m.raw_metrics.unet_inference_durations)} iterations raw {list(m.raw_metrics.iteration_durations)} vae {vae}", file=sys.stderr)
        return np.array(tensor.data)[0], {"text": text, "denoise": denoise, "vae": vae}

    return run, {
        "engine": f"openvino {ov.__version__} (genai {ov_genai.__version__})", "files": ir,
        "precision": precision or f"default ({default_precision})",
    }


SDCPP_STAGES = {"get_learned_condition completed": "text", "sampling completed": "denoise", "decode_first_stage completed": "vae"}


def load_sdcpp(model: str, threads: int, stages: Stages):
    """stable-diffusion.cpp reads the diffusers folder itself (its ModelLoader maps diffusers names to its own), fp32
    as stored; it tokenizes with its built-in CLIP vocabulary. Stage times come from its own log lines."""
    import ctypes
    import re
    from importlib.metadata import version

    import stable_diffusion_cpp as sdc
    from stable_diffusion_cpp import StableDiffusion

    spec = MODELS[model]
    pipe = StableDiffusion(model_path=str(CACHE / model / "diffusers"), n_threads=threads, verbose=False)
    pattern = re.compile(r"(get_learned_condition completed|sampling completed|decode_first_stage completed), taking ([0-9.]+)s")

    @sdc.sd_log_callback
    def on_log(level: int, text: bytes, data: ctypes.c_void_p) -> None:
        m = pattern.search(text.decode("utf-8", errors="replace"))
        if m:
            stage = SDCPP_STAGES[m.group(1)]
            stages.ms[stage] = stages.ms.get(stage, 0.0) + float(m.group(2)) * 1000

    sdc.sd_set_log_callback(on_log, ctypes.c_void_p(0))
    stages.keep = on_log  # the C side holds only a pointer: keep the callback alive

    def run():
        # sd.cpp has no PNDM; its Euler runs one UNet call per step, as the others' schedulers do.
        images = pipe.generate_image(prompt=PROMPT, width=SIZE, height=SIZE, sample_steps=spec["steps"],
                                     cfg_scale=max(1.0, spec["guidance"]), sample_method="euler", seed=SEED)
        return np.asarray(images[0]), dict(stages.ms)

    return run, {"engine": f"stable-diffusion.cpp (stable-diffusion-cpp-python {version('stable-diffusion-cpp-python')})", "files": "diffusers"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=list(MODELS))
    ap.add_argument("--peer", required=True, choices=PEERS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if args.threads < 1 or args.reps < 1 or args.warmup < 0:
        raise SystemExit("--threads and --reps must be ≥ 1, --warmup ≥ 0")

    stages = Stages()
    t0 = time.perf_counter()
    if args.peer == "ort":
        run, desc = load_ort(args.model, args.threads, stages)
    elif args.peer == "diffusers":
        run, desc = load_diffusers(args.model, args.threads, stages)
    elif args.peer == "ov-fp32":
        run, desc = load_openvino(args.model, args.threads, stages, "ov-fp32", "f32")
    elif args.peer == "ov-fp32-default":
        run, desc = load_openvino(args.model, args.threads, stages, "ov-fp32", None)
    elif args.peer == "ov-int8":
        run, desc = load_openvino(args.model, args.threads, stages, "ov-int8", None)
    else:
        run, desc = load_sdcpp(args.model, args.threads, stages)
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()

    runs = []
    for i in range(args.warmup + args.reps):
        stages.reset()
        t = time.perf_counter()
        image, ms = run()
        seconds = time.perf_counter() - t
        if i >= args.warmup:
            runs.append({"seconds": seconds, **{f"{k}_ms": v for k, v in ms.items()}, "finite": finite_fraction(image)})
        print(f"{args.peer} {args.model} run {i + 1}/{args.warmup + args.reps}: {seconds:.2f} s {ms}", file=sys.stderr, flush=True)
    print(json.dumps({
        "peer": args.peer, "model": args.model, "threads": args.threads, "warmup": args.warmup, "load_s": load_s,
        "rss_loaded_mb": rss_loaded, "peak_rss_mb": peak_rss_mb(), "runs": runs, **desc,
    }))


if __name__ == "__main__":
    main()
