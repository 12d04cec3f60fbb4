"""`--retrieve K` in `slm ask`, `slm chat` and `slm serve` (through the real OpenAI SDK): the top-k articles of the
run's index go before the question in the one context layout, the user sees them with their 시행일, and the answer's
citations are checked against them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest
import typer
from typer.testing import CliRunner

from fine_tuning.serve.ask_cli import ask, chat
from fine_tuning.serve.generate import GenerationSettings, resolve_source
from fine_tuning.serve.http import ServeSettings, TransformersEngine, make_server, run_in_thread
from fine_tuning.serve.openai_protocol import RequestError, parse_retrieval
from fine_tuning.serve.retrieval import Retriever, open_index, retrieve
from slm_datagen.index import load_index, search
from slm_datagen.index.build import build_index
from slm_datagen.index.context import article_from, question_with_context
from slm_forest.config import IndexConfig
from slm_forest.errors import SlmError
from slm_forest.files import write_jsonl
from slm_forest.manifest import Manifest, describe_files, write_manifest
from tests.test_evaluate_tiny import copy_run, tiny_run
from tests.test_index import CHUNKS

KEY = "test-retrieval-key-0123456789"
QUESTION = "소득세법 제55조의 종합소득 세율은 어떻게 되나요?"
AS_OF = "2025-06-01"


def add_index(run_dir: Path, chunks: list = CHUNKS) -> Path:
    """runs/<run>/index built from `chunks` (default: the index tests'), with a finished manifest as `slm index`
    writes it."""
    source = run_dir / "prepare" / "chunks.jsonl"
    write_jsonl(source, chunks)
    index_dir = run_dir / "index"
    outcome = build_index(source, index_dir, IndexConfig())
    manifest = Manifest(
        stage="index",
        run_name=run_dir.name,
        fingerprint="test",
        config={},
        outputs=describe_files(outcome.outputs, run_dir),
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:00+00:00",
        seconds=0.0,
    )
    write_manifest(index_dir, manifest)
    return index_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = copy_run(tiny_run(tmp_path_factory), tmp_path_factory.mktemp("retrieve"), "grounded")
    add_index(run)
    return run


@pytest.fixture(scope="module")
def loaded(run_dir):
    from fine_tuning.serve.generate import load_model

    return load_model(resolve_source(run="grounded", runs_dir=run_dir.parent), device="cpu")


@pytest.fixture(scope="module")
def index(run_dir):
    opened = load_index(run_dir / "index")
    yield opened
    opened.close()


def _with_articles(index, question: str, k: int, as_of: str = AS_OF) -> str:
    hits = search(index, question, k=k, as_of=as_of).hits
    return question_with_context(question, [article_from(hit) for hit in hits])


def _greedy(loaded, messages, max_new_tokens=24) -> str:
    from fine_tuning.serve.generate import generate_batch, with_system

    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    convo = with_system(messages, loaded.system_prompt)
    return generate_batch(loaded.model, loaded.tokenizer, [convo], settings, loaded.stop_ids)[0].text


def _invoke(args: list[str], input: str | None = None):
    app = typer.Typer()
    app.command()(ask)
    app.command()(chat)
    result = CliRunner().invoke(app, args, input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


# ------------------------------------------------------------------------------------------------ no model needed
def test_retrieve_puts_the_articles_before_the_last_question_only(index):
    retriever = Retriever(index, k=2, as_of=AS_OF)
    history = [
        {"role": "user", "content": "국세기본법 제22조는 무엇인가요?"},
        {"role": "assistant", "content": "수정신고의 효력입니다."},
        {"role": "user", "content": QUESTION},
    ]
    sent, retrieved = retrieve(retriever, history)
    assert sent[:2] == history[:2] and sent[2]["content"] == _with_articles(index, QUESTION, 2)
    assert [(a.citation, a.effective_date, a.match) for a in retrieved.articles][0] == (
        "소득세법 제55조",
        "2025-01-01",  # the version in force on AS_OF, not the 2023 text
        "citation",
    )
    assert retrieved.as_of == AS_OF and retrieved.citation_check is None
    # a message that already holds an article block (a RAFT pair) is sent as it is: never two blocks
    again, nothing = retrieve(retriever, sent)
    assert again == sent and nothing.articles == [] and nothing.as_of == AS_OF
    # a follow-up's bare "제22조" is read in the law the conversation last cited
    follow = [*history[:2], {"role": "user", "content": "같은 법 제22조의 효력은?"}]
    assert retrieve(retriever, follow)[1].articles[0].citation == "국세기본법 제22조"


def test_the_citation_check_splits_retrieved_from_remembered(index):
    _, retrieved = retrieve(Retriever(index, k=2, as_of=AS_OF), [{"role": "user", "content": QUESTION}])
    check = retrieved.checked("소득세법 제55조제1항에 따라 6퍼센트이고, 소득세법 제99조도 보세요.").citation_check
    assert check.cited_and_retrieved == ["소득세법 제55조"]
    assert check.cited_not_retrieved == ["소득세법 제99조"]


def test_a_missing_index_is_one_line_naming_slm_index(tmp_path):
    with pytest.raises(SlmError, match=r"no finished index in .*") as raised:
        open_index(tmp_path / "index")
    assert "slm index CONFIG" in raised.value.hint


def test_the_request_extension_is_checked():
    on = ServeSettings(retriever=SimpleNamespace(k=3))
    assert parse_retrieval(None, on).k == 3 and parse_retrieval(True, on).k == 3
    assert parse_retrieval(False, on) is None
    assert parse_retrieval({"k": 1, "as_of": "2024-01-01"}, on).as_of == "2024-01-01"
    for bad in ({"k": 0}, {"k": "3"}, {"as_of": "yesterday"}, {"top": 1}, "yes"):
        with pytest.raises(RequestError, match="retrieval"):
            parse_retrieval(bad, on)
    assert parse_retrieval(None, ServeSettings()) is None
    with pytest.raises(RequestError, match="without --retrieve"):
        parse_retrieval({"k": 2}, ServeSettings())


# ------------------------------------------------------------------------------------------------ ask and chat
def test_ask_retrieve_answers_from_the_articles_and_shows_them(run_dir, loaded, index):
    args = ["ask", QUESTION, "--run", "grounded", "--runs-dir", str(run_dir.parent), "--max-new-tokens", "24"]
    result = _invoke([*args, "--retrieve", "2", "--as-of", AS_OF])
    expected = _greedy(loaded, [{"role": "user", "content": _with_articles(index, QUESTION, 2)}])
    assert result.stdout.strip() == expected  # the answer alone on stdout
    assert expected != _greedy(loaded, [{"role": "user", "content": QUESTION}])  # the articles changed the prompt
    assert f"law in force on {AS_OF}" in result.stderr
    assert "[1] 소득세법 제55조" in result.stderr and "시행 2025-01-01" in result.stderr
    assert "citations:" in result.stderr or "cited" in result.stderr  # the check after the answer

    with pytest.raises(SlmError, match="add --retrieve"):
        _invoke([*args, "--as-of", AS_OF])
    with pytest.raises(SlmError, match="not a YYYY-MM-DD"):
        _invoke([*args, "--retrieve", "2", "--as-of", "2025-13-01"])
    with pytest.raises(SlmError, match="no finished index"):
        _invoke([*args, "--retrieve", "2", "--index", str(run_dir / "nowhere")])


def test_ask_file_retrieve_records_articles_and_check(run_dir, loaded, index, tmp_path):
    questions = tmp_path / "q.jsonl"
    write_jsonl(questions, [{"id": "a", "question": QUESTION}, {"id": "b", "question": "증여재산공제 한도는?"}])
    out = tmp_path / "answers.jsonl"
    _invoke(
        ["ask", "--file", str(questions), "--run", "grounded", "--runs-dir", str(run_dir.parent)]
        + ["--max-new-tokens", "16", "--retrieve", "1", "--as-of", AS_OF, "--out", str(out)]
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["question"] for r in rows] == [QUESTION, "증여재산공제 한도는?"]  # as written, without the block
    assert [r["retrieval"]["articles"][0]["citation"] for r in rows] == ["소득세법 제55조", "상속세 및 증여세법 제53조"]
    assert all(set(r["retrieval"]["citation_check"]) == {"cited_and_retrieved", "cited_not_retrieved"} for r in rows)
    assert rows[0]["answer"] == _greedy(loaded, [{"role": "user", "content": _with_articles(index, QUESTION, 1)}], 16)


def test_chat_retrieve_keeps_the_plain_question_in_the_history(run_dir, loaded, index):
    second = "증여재산공제 한도는 얼마인가요?"
    args = ["chat", "--run", "grounded", "--runs-dir", str(run_dir.parent), "--max-new-tokens", "16"]
    result = _invoke([*args, "--retrieve", "1", "--as-of", AS_OF], input=f"{QUESTION}\n{second}\n/exit\n")
    answers = [line.strip() for line in result.stdout.splitlines()]
    first = _greedy(loaded, [{"role": "user", "content": _with_articles(index, QUESTION, 1)}], 16)
    then = _greedy(
        loaded,
        [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": first},
            {"role": "user", "content": _with_articles(index, second, 1)},
        ],
        16,
    )
    assert answers == [first, then]
    assert "상속세 및 증여세법 제53조" in result.stderr


# ------------------------------------------------------------------------------------------------------- serve
@pytest.fixture(scope="module")
def server(loaded, index):
    retriever = Retriever(index, k=2, as_of=AS_OF)
    settings = ServeSettings(port=0, model_name="tiny-tax", api_key=KEY, log_requests=False, retriever=retriever)
    server = make_server(TransformersEngine(loaded), settings)
    run_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=60)


def test_serve_retrieve_through_the_openai_sdk(client, loaded, index):
    messages = [{"role": "user", "content": QUESTION}]
    response = client.chat.completions.create(model="tiny-tax", messages=messages, max_tokens=20, temperature=0)
    expected = _greedy(loaded, [{"role": "user", "content": _with_articles(index, QUESTION, 2)}], 20)
    assert response.choices[0].message.content == expected
    retrieval = response.model_extra["retrieval"]  # the extra field the SDK keeps
    assert retrieval["as_of"] == AS_OF
    assert [(a["citation"], a["effective_date"]) for a in retrieval["articles"]][0] == ("소득세법 제55조", "2025-01-01")
    assert set(retrieval["citation_check"]) == {"cited_and_retrieved", "cited_not_retrieved"}

    # the request's own k and date, through extra_body
    older = client.chat.completions.create(
        model="tiny-tax", messages=messages, max_tokens=5, extra_body={"retrieval": {"k": 1, "as_of": "2023-06-01"}}
    )
    assert [a["effective_date"] for a in older.model_extra["retrieval"]["articles"]] == ["2023-01-01"]
    # and none for this request
    plain = client.chat.completions.create(
        model="tiny-tax", messages=messages, max_tokens=20, extra_body={"retrieval": False}
    )
    assert "retrieval" not in (plain.model_extra or {})
    assert plain.choices[0].message.content == _greedy(loaded, messages, 20)
    with pytest.raises(openai.BadRequestError, match="retrieval.k"):
        client.chat.completions.create(model="tiny-tax", messages=messages, extra_body={"retrieval": {"k": 99}})


def test_serve_retrieve_streamed_through_the_openai_sdk(client, loaded, index):
    chunks = list(
        client.chat.completions.create(
            model="tiny-tax", messages=[{"role": "user", "content": QUESTION}], max_tokens=20, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == _greedy(loaded, [{"role": "user", "content": _with_articles(index, QUESTION, 2)}], 20)
    first, last = chunks[0].model_extra["retrieval"], chunks[-1].model_extra["retrieval"]
    assert first["articles"][0]["citation"] == "소득세법 제55조" and first["citation_check"] is None
    assert set(last["citation_check"]) == {"cited_and_retrieved", "cited_not_retrieved"}


# -------------------------------------------------------------------------------------------------------- GGUF
@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory) -> Path:
    pytest.importorskip("llama_cpp", reason='llama-cpp-python is not installed (pip install ".[gguf]")')
    from slm_forest.config import RunConfig
    from slm_forest.pipeline import run_stage

    run = copy_run(tiny_run(tmp_path_factory, "tiny-random-gemma3"), tmp_path_factory.mktemp("gguf"), "tiny")
    cfg = RunConfig.model_validate({"run_name": "tiny", "runs_dir": str(run.parent), "export": {"gguf": ["f16"]}})
    run_stage(cfg, "export")
    return run / "export" / "model-f16.gguf"


def test_ask_and_serve_retrieve_with_a_gguf_model(gguf_file, run_dir, index):
    from fine_tuning.serve.gguf_engine import load_gguf

    engine = load_gguf(gguf_file)
    grounded = [{"role": "user", "content": _with_articles(index, QUESTION, 2)}]
    expected = engine.complete(grounded, GenerationSettings(max_new_tokens=16)).text
    result = _invoke(
        ["ask", QUESTION, "--model", str(gguf_file), "--max-new-tokens", "16", "--no-stream"]
        + ["--retrieve", "2", "--as-of", AS_OF, "--index", str(run_dir / "index")]
    )
    assert result.stdout.strip() == expected and "[1] 소득세법 제55조" in result.stderr
    with pytest.raises(SlmError, match="belongs to no run"):  # a bare .gguf has no run: --index is needed
        _invoke(["ask", QUESTION, "--model", str(gguf_file), "--retrieve", "2"])

    retriever = Retriever(index, k=2, as_of=AS_OF)
    server = make_server(engine, ServeSettings(port=0, model_name="tiny-gguf", log_requests=False, retriever=retriever))
    run_in_thread(server)
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0, timeout=60)
        reply = client.chat.completions.create(
            model="tiny-gguf", messages=[{"role": "user", "content": QUESTION}], max_tokens=16, temperature=0
        )
        assert reply.choices[0].message.content == expected
        assert reply.model_extra["retrieval"]["articles"][0]["citation"] == "소득세법 제55조"
    finally:
        server.shutdown()
        server.server_close()
