"""diffusers goldens for the tiny FLUX/SD3 pipelines (cases in flux_sd3_cases.py),
written by goldens.py's own run/write_case into test/fixtures/conformance/goldens/<case>/,
plus T5 token-id goldens (t5-tokens.json).

case.json gains `request.extra` (the further call arguments) and, in
`defaults_used`, max_sequence_length / guidance when the case left them out.
FLUX step latents are the packed ones: [calls, n, (h/2)(w/2), 64].

    python tools/reference/flux_sd3_goldens.py [case-id-prefix ...]
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flux_sd3  # noqa: E402
from flux_sd3_cases import CASES  # noqa: E402
from goldens import FIXTURES, GOLDENS, run, torch_pipe, write_case  # noqa: E402
from tokens import PROMPTS  # noqa: E402

T5_TOKENS = FIXTURES / "t5-tokens.json"
# T5 goldens: the exported tokenizer folders (what graphserve reads), at the lengths the cases and defaults use.
T5_FOLDERS = ["flux-schnell/optimum-onnx-fp32/tokenizer_2", "sd3/optimum-onnx-fp32/tokenizer_3"]
T5_LENGTHS = [16, 77, 256, 512]


def extra_defaults(pipe, case: dict) -> dict:
    params = inspect.signature(pipe.__call__).parameters
    return {k: params[k].default for k in ("max_sequence_length", "true_cfg_scale") if k in params and k not in case["extra"]}


def without_padding(ids: list[int], pad_id: int) -> list[int]:
    end = len(ids)
    while end and ids[end - 1] == pad_id:
        end -= 1
    return ids[:end]


def t5_tokens() -> dict:
    """input_ids as diffusers' _get_t5_prompt_embeds asks for them (max_length padding, truncation)."""
    from transformers import T5TokenizerFast

    out = {"prompts": PROMPTS, "call": "tokenizer(prompt, padding='max_length', max_length=L, truncation=True, add_special_tokens=True)",
           "tokenizers": {}}
    for rel in T5_FOLDERS:
        tok = T5TokenizerFast.from_pretrained(FIXTURES / rel)
        entry = {"pad_id": tok.pad_token_id, "eos_id": tok.eos_token_id, "unk_id": tok.unk_token_id, "model_max_length": tok.model_max_length,
                 "vocab_size": len(tok), "ids": {}}
        for length in T5_LENGTHS:
            ids = [tok(p, padding="max_length", max_length=length, truncation=True).input_ids for p in PROMPTS]
            # Stored without the trailing pad ids, so the file stays small: pad with pad_id up to L to get the call's ids.
            entry["ids"][str(length)] = [without_padding(i, tok.pad_token_id) for i in ids]
        entry["tokens"] = [tok.convert_ids_to_tokens(tok(p).input_ids) for p in PROMPTS]
        out["tokenizers"][rel] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefixes", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for case in CASES:
        if args.prefixes and not any(case["id"].startswith(p) for p in args.prefixes):
            continue
        flux_sd3.ensure(case["pipeline"])
        pipe = torch_pipe(case["pipeline"], case["mode"])
        result = run(pipe, case)
        result["defaults"] |= extra_defaults(pipe, case)
        meta = write_case(case, result, f"{case['pipeline']}/optimum-onnx-fp32")
        meta["request"]["extra"] = case["extra"]
        (GOLDENS / case["id"] / "case.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(case["id"], meta["pipeline_class"], [d["site"] for d in meta["draws"]["calls"]], meta["timesteps"], flush=True)
    if not args.prefixes:
        T5_TOKENS.write_text(json.dumps(t5_tokens(), ensure_ascii=False) + "\n")
        print(T5_TOKENS)


if __name__ == "__main__":
    main()
