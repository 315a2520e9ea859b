"""Token-id goldens: the input_ids transformers' CLIPTokenizer gives, as diffusers
calls it (padding="max_length", max_length=model_max_length, truncation=True),
for every tokenizer folder under test/fixtures/conformance (the hand-written
tokenizers/ folders in the hub repos' format, and every exported one).

    python tools/reference/tokens.py
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

from transformers import CLIPTokenizer, CLIPTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipelines  # noqa: E402
from cases import LONG  # noqa: E402
from layout import CONFORMANCE as FIXTURES  # noqa: E402


PROMPTS = [
    "a photo of a cat",
    "A Photo Of A CAT",
    "three cats on a red painting, high quality",
    "!!",
    "!",
    "cats!!",
    "cats!! on a red!! painting!",
    "hello, world! (masterpiece:1.2) [blue] {green}",
    "don't stop: it's what they'd've wanted",
    "''quoted'' \"double\" `back`",
    "a/b\\c|d~e@f#g$h%i^j&k*l",
    "1234567890 3.14 1,000,000",
    "4k 8K uhd 16:9 ratio",
    "",
    " ",
    "   leading and trailing   ",
    "tabs\tand\nnewlines\r\nhere",
    "café naïve façade résumé",
    "東京の猫 写真",
    "Ünïcödé ÅNGSTRÖM ß ﬁ",
    "emoji 🐱🐶🚀 cats",
    "a\u00a0non-breaking\u2003space",
    "e\u0301 composed vs é",
    "<|startoftext|>injected<|endoftext|> tokens",
    "paintingpaintingpainting",
    "the the the the the the the the the the the the the the the the the the the the",
    LONG,
    " ".join(["cat"] * 76),
    " ".join(["cat"] * 75),
    "riding" * 40,
]

# Hub-style tokenizer folders (as pipelines.write_tokenizer writes them), committed for the tests.
STYLES = {"clip-sd1": "sd1", "clip-sd2": "sd2", "clip-sdxl-2": "sdxl2"}


def encode(tok, prompt: str) -> list[int]:
    return tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids


def main() -> None:
    root = FIXTURES / "tokenizers"
    shutil.rmtree(root, ignore_errors=True)
    for name, style in STYLES.items():
        pipelines.write_tokenizer(root / name, style)
    folders = sorted({p.parent for p in FIXTURES.rglob("vocab.json")})
    # Without ftfy (not a dependency of diffusers or transformers) the slow CLIPTokenizer pre-cleans text with
    # BERT's BasicTokenizer, which puts spaces around CJK characters; with ftfy it does not. Record which it was.
    out: dict = {"call": "CLIPTokenizer(folder)(prompt, padding='max_length', max_length=model_max_length, truncation=True).input_ids",
                 "ftfy_installed": importlib.util.find_spec("ftfy") is not None, "prompts": PROMPTS, "tokenizers": {}}
    for folder in folders:
        rel = folder.relative_to(FIXTURES).as_posix()
        tok = CLIPTokenizer.from_pretrained(folder)
        fast = CLIPTokenizerFast.from_pretrained(folder)
        ids = [encode(tok, p) for p in PROMPTS]
        fast_ids = [encode(fast, p) for p in PROMPTS]
        entry = {"pad_token": tok.pad_token, "pad_id": tok.pad_token_id, "bos_id": tok.bos_token_id, "eos_id": tok.eos_token_id,
                 "model_max_length": tok.model_max_length, "ids": ids}
        differs = [i for i, (a, b) in enumerate(zip(ids, fast_ids)) if a != b]
        if differs:
            entry["fast_tokenizer_differs"] = {str(i): fast_ids[i] for i in differs}
        out["tokenizers"][rel] = entry
        print(rel, tok.pad_token, tok.pad_token_id, "fast differs on", differs)
    text = json.dumps(out, indent=1, ensure_ascii=False)
    # One prompt's ids per line keeps the file readable and diffable.
    text = re.sub(r"\[\s+([-\d,\s]+?)\s+\]", lambda m: "[" + ",".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    (FIXTURES / "tokens.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
