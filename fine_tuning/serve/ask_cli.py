"""Typer command functions for `slm ask`, `slm chat` and `slm serve` (registered on the `slm` app by slm_forest.cli).

    slm ask "부가가치세 신고는 언제 해야 하나요?" --run smoke          one answer, streamed to stdout
    slm ask --file questions.jsonl --run smoke --out answers.jsonl   a batch (JSONL in, JSONL out)
    slm chat --model runs/smoke/export/merged                        an interactive session (/reset, /exit)
    slm serve --run smoke --port 8000 --api-key-env SLM_SERVE_KEY    an OpenAI-compatible endpoint
    slm ask "소득세 세율은?" --run smoke --retrieve 5                  the top 5 articles of runs/smoke/index in the prompt

`--retrieve K` (default off) searches the run's index (`slm index CONFIG`; another with `--index DIR`) for the law in
force today (`--as-of YYYY-MM-DD` for another date), puts the top K articles before the question
(`fine_tuning.serve.retrieval`), shows them on stderr with their 시행일, and after the answer which of its citations
were retrieved and which the model supplied itself.

Every command takes the model the same way: `--run NAME` (with `--runs-dir`), `--model MERGED_DIR`,
`--model BASE --adapter ADAPTER_DIR`, or `--model FILE.gguf` (llama-cpp-python; see
`fine_tuning.serve.generate.resolve_source` and `fine_tuning.serve.gguf_engine`). The system prompt defaults to the one
the model was trained with (`--system ""` sends none). Answers go to stdout, everything else (loading, progress,
prompts) to stderr, so `slm ask … > answer.txt` captures only the answer.

This module imports no torch/transformers at import time; each command imports `fine_tuning.serve.generate` when it runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from slm_forest.errors import SlmError
from slm_forest.progress import console
from slm_forest.redact import register_secret_envs

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="merged model directory, a .gguf file (llama.cpp), or the base model (directory or hub id) with --adapter",
        show_default=False,
    ),
]
AdapterOpt = Annotated[
    str | None,
    typer.Option("--adapter", help="LoRA adapter directory, e.g. runs/smoke/train/adapter", show_default=False),
]
RunOpt = Annotated[
    str | None,
    typer.Option(
        "--run",
        help="run name: its export/merged if present, else its train stage's base + adapter",
        show_default=False,
    ),
]
RunsDirOpt = Annotated[str, typer.Option("--runs-dir", help="directory holding the runs")]
MaxNewOpt = Annotated[int, typer.Option("--max-new-tokens", min=1, help="longest answer, in tokens")]
TemperatureOpt = Annotated[float, typer.Option("--temperature", min=0.0, max=2.0, help="0 = greedy (deterministic)")]
RetrieveOpt = Annotated[
    int | None,
    typer.Option(
        "--retrieve",
        metavar="K",
        min=1,
        max=20,
        help="put the top K articles of the run's index (`slm index CONFIG`) in the prompt; default: no retrieval",
        show_default=False,
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", metavar="YYYY-MM-DD", help="--retrieve: the law in force on this date (default: today)"),
]
IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", help="--retrieve: this index directory instead of the run's index/", show_default=False),
]
SystemOpt = Annotated[
    str | None,
    typer.Option(
        "--system", help='system prompt; default: the one the model was trained with; "" for none', show_default=False
    ),
]


def _load(model: str | None, adapter: str | None, run: str | None, runs_dir: str, system: str | None) -> Any:
    """The engine (`fine_tuning.serve.engines`) for the model options: transformers, or llama.cpp for a .gguf."""
    from fine_tuning.serve.source import resolve_source

    return _load_source(resolve_source(model=model, adapter=adapter, run=run, runs_dir=runs_dir), system)


def _load_source(source: Any, system: str | None) -> Any:
    from fine_tuning.serve.engines import load_engine

    console.print(f"[dim]loading {source.describe()} …[/dim]")
    engine = load_engine(source)
    if system is not None:
        engine.system_prompt = system or None
    return engine


def _retriever(source: Any, retrieve_k: int | None, as_of: str | None, index: Path | None) -> Any:
    """The index to search when --retrieve is given (opened before the model, so a missing index fails fast)."""
    if retrieve_k is None:
        if as_of is not None or index is not None:
            raise SlmError("--as-of and --index choose what --retrieve searches", "add --retrieve K, e.g. --retrieve 5")
        return None
    from fine_tuning.serve.retrieval import open_retriever

    return open_retriever(source, index, retrieve_k, as_of)


def _settings(max_new_tokens: int, temperature: float) -> Any:
    from fine_tuning.serve.generate import GenerationSettings

    return GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature)


def _stream_answer(engine: Any, messages: list[dict[str, str]], settings: Any) -> Any:
    """Print the answer to stdout as it is generated; returns the Completion."""
    stream = engine.stream(messages, settings)
    try:
        for piece in stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        stream.cancel()
        sys.stdout.write("\n")
        console.print("[yellow](answer interrupted)[/yellow]")
        return None
    sys.stdout.write("\n")
    sys.stdout.flush()
    return stream.completion


# ---------------------------------------------------------------------------------------------------------- ask
def read_questions(path: Path) -> list[dict[str, Any]]:
    """Questions from a .jsonl file ({"question": …} or {"messages": […]}, optional "id") or a text file (one per line)."""
    if not path.is_file():
        raise SlmError(f"--file {path}: not found", 'pass a .jsonl file ({"question": …} per line) or a text file')
    rows: list[dict[str, Any]] = []
    if path.suffix == ".jsonl":
        from slm_forest.files import read_jsonl

        for line_no, row in enumerate(read_jsonl(path), start=1):
            if isinstance(row, dict) and isinstance(row.get("question"), str) and row["question"].strip():
                messages = [{"role": "user", "content": row["question"].strip()}]
            elif isinstance(row, dict) and isinstance(row.get("messages"), list) and row["messages"]:
                messages = [{"role": m.get("role"), "content": m.get("content")} for m in row["messages"]]
                if messages[-1]["role"] != "user":
                    raise SlmError(
                        f"{path}:{line_no}: the last message must come from the user", "drop the trailing answer"
                    )
            else:
                raise SlmError(
                    f'{path}:{line_no}: no "question" (string) or "messages" (list)', 'write {"question": "…"} per line'
                )
            rows.append({"id": row.get("id", line_no), "messages": messages})
    else:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                rows.append({"id": line_no, "messages": [{"role": "user", "content": line.strip()}]})
    if not rows:
        raise SlmError(f"--file {path}: no questions in it", "one question per line")
    return rows


def answer_batch(engine: Any, rows: list[dict[str, Any]], settings: Any, batch_size: int) -> list[dict[str, Any]]:
    from slm_forest.progress import progress_bar

    answers: list[dict[str, Any]] = []
    with progress_bar("ask: answering", len(rows)) as bar:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            for row, completion in zip(chunk, engine.complete_batch([r["messages"] for r in chunk], settings)):
                answer = {
                    "id": row["id"],
                    "question": row.get("question", row["messages"][-1]["content"]),
                    "answer": completion.text,
                    "finish_reason": completion.finish_reason,
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                }
                if row.get("retrieved") is not None:  # --retrieve: what the prompt held, and the citation check
                    answer["retrieval"] = row["retrieved"].checked(completion.text).model_dump(mode="json")
                answers.append(answer)
            bar.advance(len(chunk))
    return answers


def ask(
    question: Annotated[str | None, typer.Argument(help="the question (or use --file)", show_default=False)] = None,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    run: RunOpt = None,
    runs_dir: RunsDirOpt = "runs",
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help='batch: .jsonl ({"question"} or {"messages"} per line) or .txt', show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="batch: write the JSONL answers here instead of stdout", show_default=False),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="batch: questions per generate call")] = 8,
    max_new_tokens: MaxNewOpt = 256,
    temperature: TemperatureOpt = 0.0,
    system: SystemOpt = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="print the answer token by token")] = True,
    retrieve_k: RetrieveOpt = None,
    as_of: AsOfOpt = None,
    index: IndexOpt = None,
) -> None:
    """Answer one question (streamed to stdout) or a file of questions (JSONL to stdout or --out)."""
    from fine_tuning.serve.source import resolve_source

    if (question is None) == (file is None):
        raise SlmError(
            "give either a question or --file", 'e.g. slm ask "부가가치세 신고는 언제 해야 하나요?" --run smoke'
        )
    rows = read_questions(file) if file is not None else None
    source = resolve_source(model=model, adapter=adapter, run=run, runs_dir=runs_dir)
    retriever = _retriever(source, retrieve_k, as_of, index)
    engine = _load_source(source, system)
    settings = _settings(max_new_tokens, temperature)
    if rows is None:
        _ask_one(engine, retriever, question or "", settings, stream)
        return
    if retriever is not None:
        _retrieve_rows(retriever, rows)
    answers = answer_batch(engine, rows, settings, batch_size)
    if out is not None:
        from slm_forest.files import write_jsonl

        write_jsonl(out, answers)
        console.print(f"ask: {len(answers)} answers → {out}")
    else:
        for row in answers:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def _ask_one(engine: Any, retriever: Any, question: str, settings: Any, stream: bool) -> None:
    """One answer to stdout; with a retriever, the articles before it and the citation check after it (stderr)."""
    from fine_tuning.serve.retrieval import print_check, print_retrieved, retrieve

    messages = [{"role": "user", "content": question}]
    retrieved = None
    if retriever is not None:
        messages, retrieved = retrieve(retriever, messages)
        print_retrieved(retrieved)
    if stream:
        completion = _stream_answer(engine, messages, settings)
    else:
        completion = engine.complete(messages, settings)
        sys.stdout.write(completion.text + "\n")
        sys.stdout.flush()
    if retrieved is not None and completion is not None:
        print_check(retrieved.checked(completion.text).citation_check)


def _retrieve_rows(retriever: Any, rows: list[dict[str, Any]]) -> None:
    """Batch --retrieve: each row's last question gets its articles; the JSONL keeps the question as written."""
    from fine_tuning.serve.retrieval import retrieve
    from slm_forest.progress import progress_bar

    with progress_bar("ask: retrieving", len(rows)) as bar:
        for row in rows:
            row["question"] = row["messages"][-1]["content"]
            row["messages"], row["retrieved"] = retrieve(retriever, row["messages"])
            bar.advance()


# --------------------------------------------------------------------------------------------------------- chat
CHAT_HELP = "/reset clears the conversation, /exit (or Ctrl-D) quits"


def chat(
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    run: RunOpt = None,
    runs_dir: RunsDirOpt = "runs",
    max_new_tokens: MaxNewOpt = 256,
    temperature: TemperatureOpt = 0.0,
    system: SystemOpt = None,
    retrieve_k: RetrieveOpt = None,
    as_of: AsOfOpt = None,
    index: IndexOpt = None,
) -> None:
    """Talk with the model in the terminal: answers stream as they are generated and the history is kept."""
    from fine_tuning.serve.source import resolve_source

    source = resolve_source(model=model, adapter=adapter, run=run, runs_dir=runs_dir)
    retriever = _retriever(source, retrieve_k, as_of, index)
    engine = _load_source(source, system)
    settings = _settings(max_new_tokens, temperature)
    console.print(f"[bold]slm chat[/bold] with {engine.label} — {CHAT_HELP}")
    history: list[dict[str, str]] = []
    while True:
        console.print("[bold cyan]you>[/bold cyan] ", end="")
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            break
        if not line:  # end of input
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            history.clear()
            console.print("[dim](conversation cleared)[/dim]")
            continue
        if text.startswith("/"):
            console.print(f"[yellow]unknown command {text}[/yellow] — {CHAT_HELP}")
            continue
        history.append({"role": "user", "content": text})
        completion = _chat_turn(engine, retriever, history, settings)
        if completion is None:  # interrupted: forget the unanswered question
            history.pop()
            continue
        history.append({"role": "assistant", "content": completion.text})
    console.print("[dim]bye[/dim]")


def _chat_turn(engine: Any, retriever: Any, history: list[dict[str, str]], settings: Any) -> Any:
    """One answer; with a retriever the articles go into this turn's prompt only (the history keeps the question)."""
    from fine_tuning.serve.retrieval import print_check, print_retrieved, retrieve

    messages, retrieved = (history, None) if retriever is None else retrieve(retriever, history)
    if retrieved is not None:
        print_retrieved(retrieved)
    console.print("[bold green]model>[/bold green] ", end="")
    completion = _stream_answer(engine, messages, settings)
    if retrieved is not None and completion is not None:
        print_check(retrieved.checked(completion.text).citation_check)
    return completion


# -------------------------------------------------------------------------------------------------------- serve
BACKENDS = ("auto", "transformers", "vllm", "llama.cpp")


def serve(
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    run: RunOpt = None,
    runs_dir: RunsDirOpt = "runs",
    host: Annotated[
        str, typer.Option("--host", help="interface to bind; 0.0.0.0 exposes the server to the network")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    served_model_name: Annotated[
        list[str] | None,
        typer.Option(
            "--served-model-name",
            "--model-name",
            metavar="NAME",
            help="a name clients may send as `model` (repeatable: the first is the id responses carry, the others "
            "aliases, e.g. gpt-4o); other names get 404 model_not_found; default: the run, directory or file name",
            show_default=False,
        ),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="require `Authorization: Bearer $VAR` (e.g. SLM_SERVE_KEY); 401 otherwise",
            show_default=False,
        ),
    ] = None,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", min=1, help="generations running at once")] = 1,
    queue_timeout: Annotated[
        float, typer.Option("--queue-timeout", min=0.0, help="seconds a request waits for a free slot before 429")
    ] = 30.0,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="default max_tokens of a request")
    ] = 512,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="auto (llama.cpp for a .gguf, else vLLM when importable with a GPU, else transformers), "
            "transformers, vllm or llama.cpp",
        ),
    ] = "auto",
    system: SystemOpt = None,
    retrieve_k: RetrieveOpt = None,
    as_of: AsOfOpt = None,
    index: IndexOpt = None,
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/models).

    With --retrieve K every chat request gets the top K articles of the index in its last user message, and the
    response a `retrieval` field (the articles, then the citation check); a request may send
    `"retrieval": {"k": 3, "as_of": "2025-01-01"}` or `"retrieval": false` to change that for itself."""
    from fine_tuning.serve.http import ServeSettings
    from fine_tuning.serve.http import serve as serve_forever
    from fine_tuning.serve.source import resolve_source

    if backend not in BACKENDS:
        raise SlmError(f"--backend {backend}: unknown backend", f"use {', '.join(BACKENDS)}")
    api_key = _api_key_from(api_key_env)
    source = resolve_source(model=model, adapter=adapter, run=run, runs_dir=runs_dir)
    retriever = _retriever(source, retrieve_k, as_of, index)
    engine = _serve_engine(source, backend, model, adapter, run, runs_dir, system)
    names = [n.strip() for n in served_model_name or [] if n.strip()] or [source.label]
    settings = ServeSettings(
        host=host,
        port=port,
        model_name=names[0],
        aliases=tuple(names[1:]),
        api_key=api_key,
        max_concurrent=max_concurrent,
        queue_timeout=queue_timeout,
        default_max_tokens=max_new_tokens,
        max_tokens_limit=max(4096, max_new_tokens),
        retriever=retriever,
    )
    serve_forever(engine, settings)


def _api_key_from(api_key_env: str | None) -> str | None:
    """The key `--api-key-env` names, registered as a secret so no log line or error shows it."""
    if not api_key_env:
        return None
    register_secret_envs([api_key_env])
    api_key = os.environ.get(api_key_env, "").strip()
    if not api_key:
        raise SlmError(
            f"--api-key-env {api_key_env}: that environment variable is not set",
            f"export {api_key_env}=<a long random string>",
        )
    return api_key


def _serve_engine(source: Any, backend: str, model: Any, adapter: Any, run: Any, runs_dir: Any, system: Any) -> Any:
    """llama.cpp for a .gguf, vLLM when asked (or, on auto, importable with a GPU), else transformers."""
    from fine_tuning.serve.generate import default_system_prompt
    from fine_tuning.serve.http import vllm_available, vllm_engine

    if (source.kind == "gguf") != (backend == "llama.cpp") and backend != "auto":
        raise SlmError(
            f"--backend {backend} with {source.describe()}: llama.cpp runs .gguf files, the others model directories",
            "drop --backend (auto picks the right one)",
        )
    use_vllm = backend == "vllm" or (backend == "auto" and source.kind != "gguf" and vllm_available() and _has_cuda())
    if backend == "vllm" and not vllm_available():
        raise SlmError(
            "--backend vllm: vLLM is not installed",
            "pip install vllm (needs a CUDA GPU), or use --backend transformers",
        )
    if use_vllm:
        prompt = default_system_prompt(source) if system is None else (system or None)
        return vllm_engine(source, prompt)
    return _load(model, adapter, run, runs_dir, system)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
