"""GGUF for real: `slm export` converts the tiny trained Gemma 3 and Phi with llama.cpp's own converter (from the
pinned llama-cpp-python sdist), llama-cpp-python loads the files, and they answer as transformers does.

- the GGUF's metadata carries the chat template (rendering the same prompt text) and the stop tokens (Gemma 3:
  `<end_of_turn>` and `<eos>`); llama.cpp tokenizes the rendered prompts exactly as transformers;
- greedy generations of the f16 file equal transformers' on the same weights (rounded to f16, which is what the file
  holds) token for token; a divergence is accepted only at a step where transformers' own top two logits are within
  NEAR_TIE (then the two runtimes may round either way), and must be rare;
- `slm ask --model model-f16.gguf` and `slm serve` over the GGUF through the OpenAI SDK give that same answer.
Needs llama-cpp-python (`pip install ".[gguf]"`, which .ci/run installs) and, the first time, PyPI for the sdist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from slm_forest.config import RunConfig
from slm_forest.pipeline import run_stage
from tests.test_evaluate_tiny import SYSTEM_PROMPT, build_run, copy_run

pytestmark = pytest.mark.slow
llama_cpp = pytest.importorskip("llama_cpp", reason='llama-cpp-python is not installed (pip install ".[gguf]")')

PROMPTS = [
    "부가가치세 확정신고는 언제까지 해야 하나요?",
    "상속세 신고 기한은 언제인가요?",
    "종합소득세 세율을 알려 주세요.",
    "증여세 과세표준은 어떻게 계산하나요?",
]
NEW_TOKENS = 48
NEAR_TIE = 0.05  # logits: f16 weights, and llama.cpp's f16 dot products, move logits by ~1e-2
LOGIT_TOLERANCE = 0.02  # |llama.cpp - transformers| with the same f16 weights; a wrong layer pattern gave 0.26


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """kind → the export stage directory of a tiny run exported with export.gguf: [f16, q8_0]."""
    from fine_tuning.train import tiny

    runs: dict[str, Path] = {}
    for kind in ("tiny-random-gemma3", "tiny-random-phi"):
        with pytest.MonkeyPatch.context() as patch:
            # llama.cpp's phi2 assumes Phi-2's MLP width (4 × hidden); the tiny default is 2 × (see check_convertible)
            patch.setitem(tiny._DEFAULTS["tiny-random-phi"], "intermediate_size", 256)
            # a base that has read the corpus, so attention carries the answer (a random base's logits hardly
            # depend on it, and a wrong attention layout in the GGUF would go unseen)
            patch.setitem(tiny._DEFAULTS[kind], "pretrain_steps", 200)
            pristine = build_run(tmp_path_factory.mktemp(f"gguf-{kind}") / "tiny", kind)
        run = copy_run(pristine, tmp_path_factory.mktemp("runs"), "tiny")
        cfg = RunConfig.model_validate(
            {"run_name": "tiny", "runs_dir": str(run.parent), "export": {"gguf": ["f16", "q8_0"]}}
        )
        report = run_stage(cfg, "export")
        assert [g["file"] for g in report.manifest.stats["gguf"]] == ["model-f16.gguf", "model-q8_0.gguf"]
        runs[kind] = run / "export"
    return runs


def _hf_model_with_f16_weights(merged: Path):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())  # the weights the f16 GGUF holds
    return model


@pytest.mark.parametrize("kind", ["tiny-random-gemma3", "tiny-random-phi"])
def test_gguf_metadata_template_and_tokens_match_transformers(exported, kind):
    from transformers import AutoTokenizer

    from fine_tuning.serve.generate import with_system
    from fine_tuning.serve.gguf_engine import load_gguf

    export = exported[kind]
    engine = load_gguf(export / "model-f16.gguf")
    metadata = engine.llama.metadata
    assert metadata["general.architecture"] == ("gemma3" if "gemma" in kind else "phi2")
    assert not re.search(r"\{%-?\s*(end)?generation", engine.chat_template)  # transformers-only training markers
    assert engine.system_prompt == SYSTEM_PROMPT  # from the export's slm_forest.json
    tokenizer = AutoTokenizer.from_pretrained(export / "merged")
    vocab = tokenizer.get_vocab()
    assert set(engine.stop_ids) == {vocab["<eos>"], vocab["<end_of_turn>"]}  # both, from the GGUF
    if "gemma" in kind:
        assert metadata["tokenizer.ggml.model"] == "llama"  # the SentencePiece path (tokenizer.model), no BPE hash
        assert (export / "merged" / "tokenizer.model").is_file()
    for question in PROMPTS:
        messages = with_system([{"role": "user", "content": question}], engine.system_prompt)
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert engine.prompt_ids(messages) == tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("kind", ["tiny-random-gemma3", "tiny-random-phi"])
def test_greedy_generations_equal_transformers_token_for_token(exported, kind):
    import torch

    from fine_tuning.serve.generate import with_system
    from fine_tuning.serve.gguf_engine import load_gguf

    engine = load_gguf(exported[kind] / "model-f16.gguf")
    model = _hf_model_with_f16_weights(exported[kind] / "merged")
    compared = near_ties = 0
    for question in PROMPTS:
        prompt = engine.prompt_ids(with_system([{"role": "user", "content": question}], engine.system_prompt))
        with torch.no_grad():
            output = model.generate(
                torch.tensor([prompt]), max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0
            )[0, len(prompt) :].tolist()
        ours = []
        for token in engine.llama.generate(prompt, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            ours.append(token)
            if len(ours) == NEW_TOKENS:
                break
        step = next((i for i, (a, b) in enumerate(zip(output, ours)) if a != b), None)
        compared += NEW_TOKENS if step is None else step
        if step is not None:  # only where transformers itself is torn between the two tokens
            with torch.no_grad():
                logits = model(torch.tensor([prompt + output[:step]])).logits[0, -1]
            top = torch.topk(logits, 2).values
            assert float(top[0] - top[1]) < NEAR_TIE, (question, step, output[: step + 1], ours[: step + 1])
            near_ties += 1
    assert compared >= 0.75 * NEW_TOKENS * len(PROMPTS) and near_ties <= 1, (compared, near_ties)


@pytest.mark.parametrize("kind", ["tiny-random-gemma3", "tiny-random-phi"])
def test_logits_equal_transformers_at_every_position(exported, kind):
    """The whole forward pass, not only the argmax: sliding-window layers, RoPE bases, norms, tied embeddings."""
    import numpy as np
    import torch

    from fine_tuning.serve.generate import with_system
    from fine_tuning.serve.gguf_engine import load_gguf

    engine = load_gguf(exported[kind] / "model-f16.gguf")
    model = _hf_model_with_f16_weights(exported[kind] / "merged")
    scorer = llama_cpp.Llama(str(exported[kind] / "model-f16.gguf"), n_ctx=512, logits_all=True, verbose=False)
    for question in PROMPTS:
        ids = engine.prompt_ids(with_system([{"role": "user", "content": question}], engine.system_prompt))
        ids = ids + ids[1:]  # past the tiny Gemma 3's 32-token sliding window
        with torch.no_grad():
            expected = model(torch.tensor([ids])).logits[0].numpy()
        scorer.reset()
        scorer.eval(ids)
        got = np.array(scorer.scores[: len(ids)])
        assert np.abs(got - expected).max() < LOGIT_TOLERANCE, (question, np.abs(got - expected).max(axis=1))


def test_gemma_turn_markers_are_control_tokens_and_end_generation(exported):
    from fine_tuning.serve.gguf_engine import load_gguf

    engine = load_gguf(exported["tiny-random-gemma3"] / "model-f16.gguf")
    vocab = engine.llama._model.vocab
    for marker in (b"<start_of_turn>", b"<end_of_turn>", b"<eos>"):
        ids = engine.llama.tokenize(marker, add_bos=False, special=True)
        assert len(ids) == 1, marker  # one special token, not its characters
        assert engine.llama.detokenize(ids, special=False) == b""  # never shown in an answer
    for marker in (b"<end_of_turn>", b"<eos>"):
        token = engine.llama.tokenize(marker, add_bos=False, special=True)[0]
        assert token in engine.stop_ids and llama_cpp.llama_vocab_is_eog(vocab, token)


def test_ask_and_serve_answer_from_the_gguf(exported, tmp_path):
    import openai
    from typer.testing import CliRunner

    from fine_tuning.serve.generate import GenerationSettings
    from fine_tuning.serve.gguf_engine import load_gguf
    from fine_tuning.serve.http import ServeSettings, make_server, run_in_thread
    from slm_forest.cli import app

    gguf = exported["tiny-random-gemma3"] / "model-f16.gguf"
    engine = load_gguf(gguf)
    question = [{"role": "user", "content": PROMPTS[0]}]
    expected = engine.complete(question, GenerationSettings(max_new_tokens=24))
    args = ["ask", PROMPTS[0], "--model", str(gguf), "--max-new-tokens", "24"]
    for extra in ([], ["--no-stream"]):
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == expected.text
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": PROMPTS[0]}, ensure_ascii=False) + "\n", encoding="utf-8")
    batch = CliRunner().invoke(app, ["ask", "--file", str(questions), "--model", str(gguf), "--max-new-tokens", "24"])
    assert batch.exit_code == 0 and json.loads(batch.stdout)["answer"] == expected.text

    server = make_server(engine, ServeSettings(port=0, model_name="tiny-gguf", aliases=("gpt-4o",), log_requests=False))
    run_in_thread(server)
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0, timeout=60)
        reply = client.chat.completions.create(model="gpt-4o", messages=question, max_tokens=24, temperature=0)
        assert reply.choices[0].message.content == expected.text and reply.model == "tiny-gguf"
        assert reply.usage.prompt_tokens == expected.prompt_tokens
        chunks = list(client.chat.completions.create(model="tiny-gguf", messages=question, max_tokens=24, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == expected.text
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-5", messages=question, max_tokens=4)
    finally:
        server.shutdown()
        server.server_close()


def test_q8_0_file_is_smaller_and_loads(exported):
    from fine_tuning.serve.generate import GenerationSettings
    from fine_tuning.serve.gguf_engine import load_gguf

    export = exported["tiny-random-gemma3"]
    assert (export / "model-q8_0.gguf").stat().st_size < (export / "model-f16.gguf").stat().st_size
    completion = load_gguf(export / "model-q8_0.gguf").complete(
        [{"role": "user", "content": PROMPTS[1]}], GenerationSettings(max_new_tokens=8)
    )
    assert completion.completion_tokens >= 1
    assert "FROM ./model-q8_0.gguf" in (export / "Modelfile").read_text(encoding="utf-8")


def test_the_gguf_extra_pins_the_converters_version():
    import tomllib

    from fine_tuning.export.gguf import LLAMA_CPP_PYTHON

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["optional-dependencies"]["gguf"] == [f"llama-cpp-python=={LLAMA_CPP_PYTHON}"]
    assert llama_cpp.__version__ == LLAMA_CPP_PYTHON


def test_serve_command_takes_a_gguf_and_served_model_names(exported, monkeypatch):
    from typer.testing import CliRunner

    from fine_tuning.serve import http
    from fine_tuning.serve.gguf_engine import GgufEngine
    from slm_forest.cli import app

    started = {}
    monkeypatch.setattr(http, "serve", lambda engine, settings: started.update(engine=engine, settings=settings))
    gguf = str(exported["tiny-random-gemma3"] / "model-f16.gguf")
    args = ["serve", "--model", gguf, "--served-model-name", "slm-tax", "--served-model-name", "gpt-4o", "--port", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert isinstance(started["engine"], GgufEngine)
    assert started["settings"].model_name == "slm-tax" and started["settings"].aliases == ("gpt-4o",)
    default = CliRunner().invoke(app, ["serve", "--model", gguf, "--port", "0"])
    assert default.exit_code == 0 and started["settings"].model_name == "model-f16"
    wrong = CliRunner().invoke(app, ["serve", "--model", gguf, "--backend", "vllm"])
    assert wrong.exit_code != 0 and "llama.cpp runs .gguf files" in str(wrong.exception)
