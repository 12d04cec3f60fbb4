"""`slm ask` / `slm chat` on the tiny trained run: model resolution, one answer, batches, an interactive session."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from fine_tuning.serve.ask_cli import ask, chat, read_questions
from fine_tuning.serve.generate import GenerationSettings, resolve_source
from slm_forest.errors import SlmError
from tests.test_evaluate_tiny import SYSTEM_PROMPT, copy_run, tiny_run

QUESTION = "부가가치세 확정신고는 언제까지 해야 하나요?"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(ask)
    app.command()(chat)
    return app


def _invoke(args: list[str], input: str | None = None):
    result = CliRunner().invoke(_app(), args, input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return copy_run(tiny_run(tmp_path_factory), tmp_path_factory.mktemp("ask"), "asked")


@pytest.fixture(scope="module")
def loaded(run_dir):
    from fine_tuning.serve.generate import load_model

    return load_model(resolve_source(run="asked", runs_dir=run_dir.parent), device="cpu")


def _greedy(loaded, conversations, max_new_tokens=24):
    from fine_tuning.serve.generate import generate_batch, with_system

    convos = [with_system(c, loaded.system_prompt) for c in conversations]
    return generate_batch(
        loaded.model, loaded.tokenizer, convos, GenerationSettings(max_new_tokens=max_new_tokens), loaded.stop_ids
    )


def test_ask_module_imports_no_torch():
    code = "import sys, fine_tuning.serve.ask_cli, fine_tuning.serve.http, fine_tuning.serve.generate; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_resolve_source(tmp_path, tmp_path_factory):
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    train = run / "train"
    source = resolve_source(run="tiny", runs_dir=tmp_path)
    assert source.kind == "train" and source.model == str(train) and source.label == "tiny"
    # the train stage's adapter directory alone means the same thing
    assert resolve_source(adapter=str(train / "adapter")).kind == "train"
    # base + adapter: the tokenizer (with the trained chat template) comes from train/tokenizer beside the adapter
    explicit = resolve_source(model=str(train / "base_model"), adapter=str(train / "adapter"))
    assert explicit.kind == "adapter" and explicit.tokenizer == str(train / "tokenizer")
    # once the export stage has written merged/, --run uses it
    (run / "export" / "merged").mkdir(parents=True)
    (run / "export" / "merged" / "config.json").write_text("{}", encoding="utf-8")
    assert resolve_source(run="tiny", runs_dir=tmp_path).kind == "merged"

    with pytest.raises(SlmError, match="no model given"):
        resolve_source()
    with pytest.raises(SlmError, match="cannot be combined"):
        resolve_source(run="tiny", model="x")
    with pytest.raises(SlmError, match="does not exist"):
        resolve_source(run="nope", runs_dir=tmp_path)
    with pytest.raises(SlmError, match="no adapter_config.json"):
        resolve_source(model=str(train / "base_model"), adapter=str(tmp_path))


def test_ask_answers_one_question_streamed_and_not(run_dir, loaded):
    expected = _greedy(loaded, [[{"role": "user", "content": QUESTION}]])[0]
    assert loaded.system_prompt == SYSTEM_PROMPT  # taken from the run's build manifest
    assert expected.text  # the tuned tiny model says something
    base_args = ["ask", QUESTION, "--run", "asked", "--runs-dir", str(run_dir.parent), "--max-new-tokens", "24"]
    streamed = _invoke(base_args)
    assert streamed.stdout.strip() == expected.text
    plain = _invoke([*base_args, "--no-stream"])
    assert plain.stdout.strip() == expected.text
    # base + adapter given explicitly: the same model, the same answer
    train = run_dir / "train"
    explicit = _invoke(
        [
            "ask",
            QUESTION,
            "--model",
            str(train / "base_model"),
            "--adapter",
            str(train / "adapter"),
            "--max-new-tokens",
            "24",
            "--no-stream",
        ]
    )
    assert explicit.stdout.strip() == expected.text


def test_ask_file_answers_a_batch_like_one_by_one(run_dir, loaded, tmp_path):
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"id": "q1", "question": QUESTION},
        {"id": "q2", "question": "과세표준이 5,000만원이면 종합소득세 산출세액은 얼마인가요?"},
        {"messages": [{"role": "user", "content": "법인세 신고기한은 언제인가요?"}]},
    ]
    questions.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    _invoke(
        [
            "ask",
            "--file",
            str(questions),
            "--run",
            "asked",
            "--runs-dir",
            str(run_dir.parent),
            "--max-new-tokens",
            "24",
            "--batch-size",
            "3",
            "--out",
            str(out),
        ]
    )
    answers = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [a["id"] for a in answers] == ["q1", "q2", 3]
    # left-padded batch == each question alone
    singles = [_greedy(loaded, [[{"role": "user", "content": a["question"]}]])[0] for a in answers]
    assert [a["answer"] for a in answers] == [s.text for s in singles]
    assert all(a["finish_reason"] in ("stop", "length") and a["completion_tokens"] <= 24 for a in answers)

    # without --out the JSONL goes to stdout
    printed = _invoke(
        ["ask", "--file", str(questions), "--run", "asked", "--runs-dir", str(run_dir.parent), "--max-new-tokens", "24"]
    )
    assert [json.loads(line)["answer"] for line in printed.stdout.splitlines()] == [a["answer"] for a in answers]


def test_read_questions_errors_and_text_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{"q": "no"}\n', encoding="utf-8")
    with pytest.raises(SlmError, match=r"bad\.jsonl:2"):
        read_questions(bad)
    text = tmp_path / "q.txt"
    text.write_text("첫 질문\n\n둘째 질문\n", encoding="utf-8")
    assert [r["messages"][0]["content"] for r in read_questions(text)] == ["첫 질문", "둘째 질문"]
    with pytest.raises(SlmError, match="either a question or --file"):
        _invoke(["ask"])


def test_chat_keeps_history_and_resets(run_dir, loaded):
    second = "근거 조문은 무엇인가요?"
    args = ["chat", "--run", "asked", "--runs-dir", str(run_dir.parent), "--max-new-tokens", "24"]
    result = _invoke(args, input=f"{QUESTION}\n{second}\n/reset\n{second}\n/exit\nnot read\n")
    answers = result.stdout.splitlines()
    assert len(answers) == 3

    first = _greedy(loaded, [[{"role": "user", "content": QUESTION}]])[0].text
    with_history = _greedy(
        loaded,
        [
            [
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": first},
                {"role": "user", "content": second},
            ]
        ],
    )[0].text
    fresh = _greedy(loaded, [[{"role": "user", "content": second}]])[0].text
    assert [a.strip() for a in answers] == [first, with_history, fresh]
    assert "/reset" in result.stderr and "bye" in result.stderr  # prompts and help go to stderr


def test_chat_ends_at_end_of_input(run_dir):
    result = _invoke(["chat", "--run", "asked", "--runs-dir", str(run_dir.parent), "--max-new-tokens", "8"], input="")
    assert result.stdout == ""
