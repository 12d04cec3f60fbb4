"""Benchmark of local generation: transformers vs llama.cpp (GGUF f16 and q8_0) on the same model, same prompts, greedy.

    python bench/generate.py                   # the tiny Gemma 3 and a mid-size random Gemma 3 (~40 M parameters)
    python bench/generate.py --new-tokens 32   # a quicker look

What it does: trains the tiny Gemma 3's SentencePiece tokenizer on the bundled corpus, builds two random Gemma 3
models with `fine_tuning.train.tiny.build_tiny_model` — the tiny one the tests use (hidden 64, 2 layers) and a
mid-size one (hidden 512, 8 layers, MLP 2,048, 8 heads / 4 KV heads, ~40 M parameters with its vocabulary) — converts
each to GGUF f16 and q8_0 with the project's export path (`fine_tuning.export.gguf`: llama.cpp's converter from the
pinned llama-cpp-python sdist), then generates `--new-tokens` tokens greedily for the same four Korean chat prompts
(system prompt + question through the chat template) with:
- transformers: fp32 on CPU, `generate(do_sample=False)` (the path of `slm ask --model merged/`), torch's threads;
- llama.cpp: `fine_tuning.serve.gguf_engine.load_gguf` (the path of `slm ask --model model.gguf`), every core.
Every run generates exactly `--new-tokens` tokens (no stop token on either side: random weights stop anywhere), so
tokens/s = generated tokens ÷ wall time of the whole call, prompt processing included. Each prompt is generated once
untimed first (warm-up). The share of f16 greedy tokens equal to transformers' (up to the first difference) is printed
as a check: random weights give near-ties, where fp32 and f16 may pick differently (tests/test_gguf.py makes the exact
comparison on trained tiny models with the same f16 weights).

The last line is machine-readable, for the mid-size model and the f16 file:
`generate: transformers_tps=<x> llamacpp_tps=<y> ratio=<y/x>`; the line before it has the q8_0 figures.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _name, _value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_name, _value)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYSTEM = "당신은 한국 세법 전문가입니다. 관련 법령을 근거로 정확하게 답변하세요."
QUESTIONS = [
    "부가가치세 확정신고는 언제까지 해야 하나요?",
    "상속세 신고 기한은 언제인가요?",
    "종합소득세 세율을 알려 주세요.",
    "증여세 과세표준은 어떻게 계산하나요?",
]
MODELS = {
    "tiny": {},
    "mid": {
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 64,
        "sliding_window": 512,
        "vocab_size": 8000,
    },
}


def corpus_text() -> list[str]:
    """Korean lines of the bundled statutes and rulings (what the tokenizer is trained on)."""
    lines: list[str] = []
    for path in sorted(glob.glob(str(ROOT / "slm_datagen" / "data" / "**" / "*.json*"), recursive=True)):
        text = Path(path).read_text(encoding="utf-8", errors="ignore")
        lines += [line for line in text.splitlines() if sum("가" <= c <= "힣" for c in line) > 10]
    return lines[:4000]


def build(name: str, overrides: dict[str, int], texts: list[str], workdir: Path) -> dict[str, Path]:
    from fine_tuning.export.gguf import convert_to_gguf, converter_command
    from fine_tuning.train.tiny import build_tiny_model

    model_dir = build_tiny_model("tiny-random-gemma3", workdir / name, texts, seed=0, overrides=overrides)
    command = converter_command("required")
    assert command is not None
    files = {"merged": model_dir}
    for outtype in ("f16", "q8_0"):
        files[outtype] = convert_to_gguf(command, model_dir, workdir / f"{name}-{outtype}.gguf", outtype)
    return files


def transformers_run(model_dir: Path, prompts: list[list[int]], new_tokens: int) -> tuple[float, list[list[int]]]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None  # no stop token: exactly new_tokens, as the llama.cpp loop
    outputs, seconds = [], 0.0
    for ids in prompts:
        kwargs = {"max_new_tokens": new_tokens, "do_sample": False, "pad_token_id": 0}
        with torch.no_grad():
            model.generate(torch.tensor([ids]), **kwargs)  # warm-up
            start = time.perf_counter()
            out = model.generate(torch.tensor([ids]), **kwargs)[0, len(ids) :].tolist()
            seconds += time.perf_counter() - start
        outputs.append(out)
    return sum(map(len, outputs)) / seconds, outputs


def llamacpp_run(gguf: Path, prompts: list[list[int]], new_tokens: int) -> tuple[float, list[list[int]]]:
    from fine_tuning.serve.gguf_engine import load_gguf

    llama = load_gguf(gguf).llama

    def once(ids: list[int]) -> list[int]:
        llama.reset()
        out: list[int] = []
        for token in llama.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            out.append(token)
            if len(out) == new_tokens:
                return out
        return out

    outputs, seconds = [], 0.0
    for ids in prompts:
        once(ids)  # warm-up
        start = time.perf_counter()
        outputs.append(once(ids))
        seconds += time.perf_counter() - start
    return sum(map(len, outputs)) / seconds, outputs


def same_share(a: list[list[int]], b: list[list[int]]) -> float:
    """Share of tokens equal before the first divergence, over all prompts."""
    equal = sum(next((i for i, (x, y) in enumerate(zip(p, q)) if x != y), len(p)) for p, q in zip(a, b))
    return equal / max(1, sum(len(p) for p in a))


def _n(handle: Any, key: str) -> int:
    count = 1
    for dim in handle.get_slice(key).get_shape():
        count *= dim
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--keep", action="store_true", help="keep the models and GGUF files (path printed)")
    opts = parser.parse_args()
    import torch
    from transformers import AutoTokenizer

    texts = corpus_text()
    workdir = Path(tempfile.mkdtemp(prefix="slm-bench-generate-"))
    results: dict[str, dict[str, float]] = {}
    try:
        for name, overrides in MODELS.items():
            files = build(name, overrides, texts, workdir)
            tokenizer = AutoTokenizer.from_pretrained(files["merged"])
            prompts = [
                tokenizer(
                    tokenizer.apply_chat_template(
                        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
                        tokenize=False,
                        add_generation_prompt=True,
                    ),
                    add_special_tokens=False,
                )["input_ids"]
                for q in QUESTIONS
            ]
            hf_tps, hf_out = transformers_run(files["merged"], prompts, opts.new_tokens)
            f16_tps, f16_out = llamacpp_run(files["f16"], prompts, opts.new_tokens)
            q8_tps, _ = llamacpp_run(files["q8_0"], prompts, opts.new_tokens)
            size = {k: files[k].stat().st_size / 1e6 for k in ("f16", "q8_0")}
            results[name] = {"hf": hf_tps, "f16": f16_tps, "q8": q8_tps}
            print(
                f"{name}: {_params(files['merged']) / 1e6:.1f} M parameters, prompts {min(map(len, prompts))}–"
                f"{max(map(len, prompts))} tokens, {opts.new_tokens} new tokens × {len(prompts)} prompts; "
                f"transformers fp32 {hf_tps:,.1f} tok/s ({torch.get_num_threads()} threads) · llama.cpp f16 "
                f"{f16_tps:,.1f} tok/s ({size['f16']:.1f} MB) · q8_0 {q8_tps:,.1f} tok/s ({size['q8_0']:.1f} MB); "
                f"f16 greedy tokens equal to transformers' {same_share(hf_out, f16_out):.1%}"
            )
    finally:
        if opts.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    mid = results["mid"]
    print(
        f"load average {os.getloadavg()[0]:.2f}; q8_0: llamacpp_tps={mid['q8']:.1f} ratio={mid['q8'] / mid['hf']:.2f}"
    )
    print(
        f"generate: transformers_tps={mid['hf']:.1f} llamacpp_tps={mid['f16']:.1f} ratio={mid['f16'] / mid['hf']:.2f}"
    )


def _params(model_dir: Path) -> int:
    from safetensors import safe_open

    total = 0
    with safe_open(str(model_dir / "model.safetensors"), "pt") as handle:
        for key in handle.keys():
            total += _n(handle, key)
    return total


if __name__ == "__main__":
    main()
