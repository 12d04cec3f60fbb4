"""`slm evaluate`: is the tuned model better than its base? Same prompts, same decoding, same metrics, side by side.

Reads `build/test.jsonl` (and `build/val.jsonl` for the loss), the train stage (base + LoRA adapter, loaded once: the
base answers are produced by the same weights with the adapter switched off, so nothing but the adapter differs),
`collect/documents.jsonl` (which articles exist) and the KMMLU-format CSVs in `evaluate.benchmarks`.

For base and tuned:
1. eval loss and perplexity on the assistant tokens of every val/test example (the prompt rendered by the chat
   template with `add_generation_prompt=True` is masked; the answer and its end-of-turn token count);
2. answers to the first `evaluate.max_examples` test questions (chat template, left-padded batches of
   `evaluate.batch_size`, `evaluate.max_new_tokens`, greedy when `evaluate.temperature` is 0), scored with chrF and
   ROUGE-L on characters, citation checks (articles that exist in the corpus, that match the reference) and, on
   calculation items, the final amount;
3. each benchmark's accuracy by option log-likelihood (`fine_tuning.evaluate.mcq`), zero-shot and, when
   `evaluate.few_shot` > 0, also `few_shot`-shot (on the same questions);
4. optionally (`evaluate.judge`, off by default) an LLM judge's 1–5 scores for correctness, legal basis and
   clarity, with reasons.
Every number is reported over all examples and per law and per source kind.

Writes `predictions.jsonl` (one row per test question: both answers and their scores), `benchmark_predictions.jsonl`,
`metrics.json`, and `report.md` with `metrics.png`, `groups.png` and a copy of train's `loss.png`.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, write_json, write_jsonl
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console, progress_bar
from slm_forest.records import SFTExample

MODELS = ("base", "tuned")
ALL = "all"


# ---------------------------------------------------------------------------------------------------------- data
def read_split(path: Path, *, required: bool) -> list[SFTExample]:
    if not path.exists():
        if required:
            raise SlmError(f"{path}: not found", "run `slm build CONFIG` first")
        return []
    out: list[SFTExample] = []
    for line_no, row in enumerate(read_jsonl(path), start=1):
        try:
            out.append(SFTExample.model_validate(row))
        except ValueError:
            raise SlmError(f"{path}:{line_no}: not an SFTExample", "rerun `slm build CONFIG --force`") from None
    if required and not out:
        raise SlmError(f"{path}: no examples", "the build stage put nothing in this split; check build.test_share")
    return out


def messages_of(example: SFTExample) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in example.messages]


def split_prompt_answer(example: SFTExample, path: str = "") -> tuple[list[dict[str, str]], str]:
    messages = messages_of(example)
    if not messages or messages[-1]["role"] != "assistant":
        raise SlmError(
            f"{path or 'test.jsonl'}: example {example.id} does not end with an assistant answer",
            "rerun `slm build --force`",
        )
    return messages[:-1], messages[-1]["content"]


def groups_of(example: SFTExample) -> list[str]:
    """The groups an example is reported in: all, its law and its source kind."""
    meta = example.meta
    return [ALL, f"law:{meta.get('law_name') or '(none)'}", f"kind:{meta.get('kind') or '(unknown)'}"]


# ---------------------------------------------------------------------------------------------- model switching
@contextlib.contextmanager
def as_model(model: Any, which: str) -> Iterator[None]:
    """`base`: the same PEFT model with its adapter disabled; `tuned`: as trained."""
    if which == "base":
        with model.disable_adapter():
            yield
    else:
        yield


# -------------------------------------------------------------------------------------------------------- loss
def assistant_tokens(tokenizer: Any, example: SFTExample) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids): the answer is what the template renders after the generation prompt."""
    prompt_messages, _ = split_prompt_answer(example)
    full = tokenizer.apply_chat_template(messages_of(example), tokenize=False)
    prompt = tokenizer.apply_chat_template(prompt_messages, tokenize=False, add_generation_prompt=True)
    full_ids = list(tokenizer(full, add_special_tokens=False)["input_ids"])
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    shared = 0
    for a, b in zip(full_ids, prompt_ids):
        if a != b:
            break
        shared += 1
    return full_ids[:shared], full_ids[shared:]


def answer_nll(
    model: Any, tokenizer: Any, examples: list[SFTExample], batch_size: int, bar: Any
) -> list[tuple[float, int]]:
    """(sum of negative log-likelihood, token count) of each example's answer."""
    from fine_tuning.evaluate.mcq import continuation_logprobs

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pairs = [assistant_tokens(tokenizer, ex) for ex in examples]
    out: list[tuple[float, int]] = []
    for start in range(0, len(pairs), batch_size):
        chunk = [(p, a) for p, a in pairs[start : start + batch_size]]
        scorable = [(p, a) for p, a in chunk if a]
        logprobs = (
            iter(continuation_logprobs(model, [p for p, _ in scorable], [a for _, a in scorable], pad))
            if scorable
            else iter(())
        )
        for _, answer in chunk:
            if not answer:
                out.append((0.0, 0))
                continue
            values = next(logprobs)
            out.append((-float(sum(values)), len(values)))
        bar.advance(len(chunk))
    return out


def loss_metrics(model: Any, tokenizer: Any, splits: dict[str, list[SFTExample]], batch_size: int) -> dict[str, Any]:
    from fine_tuning.evaluate.metrics import LossSums

    total = sum(len(v) for v in splits.values()) * len(MODELS)
    result: dict[str, Any] = {}
    with progress_bar("evaluate: answer loss", total) as bar:
        for split, examples in splits.items():
            if not examples:
                continue
            result[split] = {}
            for which in MODELS:
                sums: dict[str, LossSums] = defaultdict(LossSums)
                with as_model(model, which):
                    values = answer_nll(model, tokenizer, examples, batch_size, bar)
                for example, (nll, tokens) in zip(examples, values):
                    if tokens:
                        for group in groups_of(example):
                            sums[group].add(nll, tokens)
                result[split][which] = {group: s.summary() for group, s in sorted(sums.items())}
    return result


# --------------------------------------------------------------------------------------------------- generation
def generate_answers(
    model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], cfg: Any, seed: int
) -> dict[str, list[Any]]:
    """Completions of base and tuned for every prompt, batched by prompt length (fewer pads), in input order."""
    import torch

    from fine_tuning.serve.generate import GenerationSettings, generate_batch, stop_token_ids

    settings = GenerationSettings(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
    stop_ids = stop_token_ids(tokenizer, model)
    lengths = [len(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    out: dict[str, list[Any]] = {}
    with progress_bar("evaluate: generating answers", len(prompts) * len(MODELS)) as bar:
        for which in MODELS:
            torch.manual_seed(seed)  # sampling (temperature > 0) draws the same way for both models
            results: list[Any] = [None] * len(prompts)
            with as_model(model, which):
                for start in range(0, len(order), cfg.batch_size):
                    batch = order[start : start + cfg.batch_size]
                    for index, completion in zip(
                        batch, generate_batch(model, tokenizer, [prompts[i] for i in batch], settings, stop_ids)
                    ):
                        results[index] = completion
                    bar.advance(len(batch))
            out[which] = results
    return out


def score_answer(answer: str, reference: str, example: SFTExample, corpus: Any) -> dict[str, Any]:
    from fine_tuning.evaluate.metrics import check_citations, chrf_sentence, final_amount, rouge_l

    scores: dict[str, Any] = {
        "chrf": round(chrf_sentence(answer, reference), 2),
        "rouge_l": round(rouge_l(answer, reference), 4),
        "citations": check_citations(answer, reference, example.meta.get("citations") or [], corpus).as_dict(),
        "numeric_correct": None,
    }
    if example.meta.get("style") == "calculation":
        expected = final_amount(reference)
        if expected is not None:
            got = final_amount(answer)
            scores["numeric_correct"] = got == expected
            scores["numeric"] = {"expected": expected, "got": got}
    return scores


def aggregate(rows: list[dict[str, Any]], examples: list[SFTExample]) -> dict[str, Any]:
    from fine_tuning.evaluate.metrics import ScoreSums

    out: dict[str, Any] = {}
    for which in MODELS:
        sums: dict[str, ScoreSums] = defaultdict(ScoreSums)
        for row, example in zip(rows, examples):
            for group in groups_of(example):
                sums[group].add(row[which]["answer"], row["reference"], row[which]["scores"])
        out[which] = {group: s.summary() for group, s in sorted(sums.items())}
    return out


# --------------------------------------------------------------------------------------------------- benchmarks
def run_benchmarks(
    model: Any, tokenizer: Any, paths: list[str], few_shot: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Path]]:
    """(per-benchmark summaries, per-question rows, files read).

    Each summary holds `zero_shot: {base, tuned}` and, when `few_shot` > 0, `few_shot: {base, tuned}` (each
    {n, accuracy, accuracy_norm}), both over the same questions; `shots` is the few-shot count (0 without).
    Each row is one question in one setting (`shots` 0 or k) with both models' picks.
    """
    from fine_tuning.evaluate.mcq import (
        BenchmarkScore,
        build_prompt,
        dev_file_for,
        option_logliks,
        read_benchmark,
        shot_counts,
        split_shots,
    )

    summaries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    read: list[Path] = []
    for raw in paths:
        path = Path(raw)
        questions = read_benchmark(path)
        shots, scored, shots_from = split_shots(path, questions, few_shot)
        read.append(path)
        dev = dev_file_for(path)
        if shots and dev is not None:
            read.append(dev)
        settings = shot_counts(len(shots))
        scores = {(k, which): BenchmarkScore() for k in settings for which in MODELS}
        picks: dict[tuple[int, int], dict[str, Any]] = defaultdict(dict)
        with progress_bar(f"evaluate: {path.name}", len(scored) * len(MODELS) * len(settings)) as bar:
            for which in MODELS:
                with as_model(model, which):
                    for k in settings:
                        for question in scored:
                            prompt = build_prompt(question, shots[:k])
                            result = option_logliks(model, tokenizer, prompt, list(question.options))
                            scores[(k, which)].add(result, question.answer)
                            picks[(k, question.row)][which] = {
                                "pick": result.pick + 1,
                                "pick_norm": result.pick_norm + 1,
                                "loglik": [round(v, 4) for v in result.loglik],
                            }
                            bar.advance()
        for k in settings:
            for question in scored:
                rows.append(
                    {
                        "benchmark": path.name,
                        "shots": k,
                        "row": question.row,
                        "answer": question.answer + 1,
                        **picks[(k, question.row)],
                    }
                )
        summary: dict[str, Any] = {
            "name": path.stem,
            "path": str(path),
            "questions": len(scored),
            "shots": len(shots),
            "shots_from": shots_from,
            "zero_shot": {which: scores[(0, which)].summary() for which in MODELS},
        }
        if shots:
            summary["few_shot"] = {which: scores[(len(shots), which)].summary() for which in MODELS}
        summaries.append(summary)
    return summaries, rows, read


# -------------------------------------------------------------------------------------------------------- judge
JUDGE_CRITERIA = ("correctness", "legal_basis", "clarity")
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [*JUDGE_CRITERIA, "reason"],
    "properties": {
        **{c: {"type": "integer", "enum": [1, 2, 3, 4, 5]} for c in JUDGE_CRITERIA},
        "reason": {"type": "string", "description": "한두 문장의 채점 근거"},
    },
}
JUDGE_SYSTEM = "당신은 한국 세법 답변을 채점하는 평가자입니다. 기준에 따라 점수를 매기고 반드시 JSON 하나로만 답하세요."
JUDGE_RUBRIC = """채점 기준 (각 1-5점):
- correctness: 참고 답변과 비교해 내용(요건, 기한, 금액, 결론)이 정확한가. 5 = 모두 정확, 1 = 틀리거나 무관함.
- legal_basis: 근거 법령·조문을 정확히 제시하는가. 5 = 정확한 조문 인용, 1 = 근거 없음 또는 틀린 조문.
- clarity: 질문에 직접 답하고 이해하기 쉬운가. 5 = 명확하고 간결, 1 = 알아볼 수 없음."""


def judge_messages(question: str, reference: str, answer: str) -> list[dict[str, str]]:
    user = (
        f"{JUDGE_RUBRIC}\n\n[질문]\n{question}\n\n[참고 답변]\n{reference}\n\n[평가할 답변]\n{answer or '(빈 답변)'}\n\n"
        '다음 형식의 JSON 하나로 답하세요: {"correctness": 1-5, "legal_basis": 1-5, "clarity": 1-5, "reason": "..."}'
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_judge_reply(text: str | None) -> dict[str, Any]:
    """{criterion: 1-5, ..., "reason", "score" (mean)}; ValueError when a criterion is missing or out of range."""
    from slm_datagen.distill.parse import extract_json

    data, problem = extract_json(text or "")
    if data is None:
        raise ValueError(problem or "no JSON object")
    out: dict[str, Any] = {}
    for criterion in JUDGE_CRITERIA:
        value = data.get(criterion)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise ValueError(f"{criterion}={value!r} is not 1-5")
        out[criterion] = value
    out["reason"] = str(data.get("reason") or "")
    out["score"] = round(sum(out[c] for c in JUDGE_CRITERIA) / len(JUDGE_CRITERIA), 3)
    return out


def run_judge(judge_cfg: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Score every base and tuned answer; failures are counted and kept with their reason, never dropped silently."""
    from concurrent.futures import ThreadPoolExecutor

    from slm_datagen.dataset.judge import SdkTeacher, Spend

    teacher = SdkTeacher(judge_cfg, "evaluate.judge")
    spend = Spend(judge_cfg.provider, judge_cfg.model, price_known=teacher.price is not None)
    jobs = [(i, which) for i in range(len(rows)) for which in MODELS]

    def one(job: tuple[int, str]) -> float:
        index, which = job
        row = rows[index]
        try:
            reply = teacher.complete(
                judge_messages(row["question"], row["reference"], row[which]["answer"]), JUDGE_SCHEMA
            )
        except RuntimeError as exc:
            spend.fail(str(exc))
            row[which]["scores"]["judge"] = {"error": str(exc)[:200]}
            return 0.0
        spend.add(teacher, reply)
        try:
            row[which]["scores"]["judge"] = parse_judge_reply(reply.text)
        except (ValueError, TypeError) as exc:
            spend.fail(f"unreadable judgement: {exc}")
            row[which]["scores"]["judge"] = {"error": f"unreadable judgement: {exc}"}
        return teacher.cost(reply)

    workers = max(1, min(judge_cfg.max_concurrency, 16, len(jobs) or 1))
    try:
        with progress_bar("evaluate: judge", len(jobs), show_cost=True) as bar, ThreadPoolExecutor(workers) as pool:
            spent = 0.0
            for cost in pool.map(one, jobs):
                spent += cost
                bar.advance(cost_usd=spent)
    finally:
        teacher.close()
    return spend.summary()


# -------------------------------------------------------------------------------------------------------- stage
@dataclass
class Headline:
    """One row of the report's main table."""

    name: str
    base: float | None
    tuned: float | None
    higher_is_better: bool = True


def headline(metrics: dict[str, Any]) -> list[Headline]:
    rows: list[Headline] = []
    for split in ("test", "val"):
        loss = metrics["loss"].get(split)
        if loss:
            b, t = loss["base"].get(ALL, {}), loss["tuned"].get(ALL, {})
            rows.append(Headline(f"{split} loss", b.get("loss"), t.get("loss"), False))
            rows.append(Headline(f"{split} perplexity", b.get("perplexity"), t.get("perplexity"), False))
    gen = metrics.get("generation")
    if gen:
        b, t = gen["base"][ALL], gen["tuned"][ALL]
        for key, name in (
            ("chrf", "chrF"),
            ("rouge_l", "ROUGE-L (chars)"),
            ("citing_share", "answers citing an article"),
            ("citation_in_corpus", "cited articles in corpus"),
            ("citation_precision", "citation precision"),
            ("citation_recall", "citation recall"),
            ("numeric_accuracy", "final amount correct"),
            ("judge_mean", "judge score (1-5)"),
        ):
            if b.get(key) is not None or t.get(key) is not None:
                rows.append(Headline(name, b.get(key), t.get(key)))
    from fine_tuning.evaluate.mcq import benchmark_settings

    for bench in metrics.get("benchmarks", []):
        for k, scores in benchmark_settings(bench):
            label = f"{k}-shot"
            b, t = scores["base"], scores["tuned"]
            rows.append(Headline(f"{bench['name']} accuracy ({label})", b["accuracy"], t["accuracy"]))
            rows.append(
                Headline(
                    f"{bench['name']} accuracy, length-normalised ({label})", b["accuracy_norm"], t["accuracy_norm"]
                )
            )
    return rows


def run_evaluate(ctx: StageContext) -> StageResult:
    from fine_tuning.evaluate.metrics import CorpusIndex, delta
    from fine_tuning.evaluate.report import write_report
    from fine_tuning.train.loading import load_trained

    cfg = ctx.cfg.evaluate
    build_dir, train_dir, stage_dir = ctx.upstream_dir("build"), ctx.upstream_dir("train"), ctx.stage_dir
    test = read_split(build_dir / "test.jsonl", required=True)
    val = read_split(build_dir / "val.jsonl", required=False)
    selected = test[: cfg.max_examples] if cfg.max_examples else test
    documents = ctx.run_dir / "collect" / "documents.jsonl"
    corpus = CorpusIndex.from_documents(documents) if documents.exists() else CorpusIndex(frozenset())
    notes: list[str] = []
    if not documents.exists():
        notes.append(f"{documents} not found: 'cited articles in corpus' is 0 for every answer")

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model, tokenizer = load_trained(train_dir)
    if not hasattr(model, "disable_adapter"):
        raise SlmError(
            f"{train_dir}: the trained model has no adapter to switch off", "rerun `slm train CONFIG --force`"
        )

    metrics: dict[str, Any] = {
        "run_name": ctx.cfg.run_name,
        "settings": cfg.model_dump(mode="json") | {"seed": ctx.cfg.seed},
        "examples": {"test": len(test), "val": len(val), "generated": len(selected)},
        "notes": notes,
    }
    metrics["loss"] = loss_metrics(model, tokenizer, {"test": test, "val": val}, cfg.batch_size)

    prompts, references = [], []
    for example in selected:
        prompt, reference = split_prompt_answer(example, str(build_dir / "test.jsonl"))
        prompts.append(prompt)
        references.append(reference)
    completions = generate_answers(model, tokenizer, prompts, cfg, ctx.cfg.seed)
    rows: list[dict[str, Any]] = []
    for i, example in enumerate(selected):
        question = next((m["content"] for m in reversed(prompts[i]) if m["role"] == "user"), "")
        row: dict[str, Any] = {
            "id": example.id,
            "pair_id": example.meta.get("pair_id"),
            "law_name": example.meta.get("law_name"),
            "kind": example.meta.get("kind"),
            "style": example.meta.get("style"),
            "question": question,
            "reference": references[i],
        }
        for which in MODELS:
            c = completions[which][i]
            row[which] = {
                "answer": c.text,
                "finish_reason": c.finish_reason,
                "tokens": c.completion_tokens,
                "scores": score_answer(c.text, references[i], example, corpus),
            }
        rows.append(row)

    judge_cfg = getattr(cfg, "judge", None)
    if judge_cfg is not None:
        metrics["judge"] = run_judge(judge_cfg, rows)
    metrics["generation"] = aggregate(rows, selected)

    bench_summaries, bench_rows, bench_files = run_benchmarks(model, tokenizer, list(cfg.benchmarks), cfg.few_shot)
    metrics["benchmarks"] = bench_summaries
    metrics["headline"] = [
        {
            "metric": h.name,
            "base": h.base,
            "tuned": h.tuned,
            "delta": delta(h.base, h.tuned),
            "higher_is_better": h.higher_is_better,
        }
        for h in headline(metrics)
    ]

    outputs = [stage_dir / "predictions.jsonl", stage_dir / "metrics.json"]
    write_jsonl(outputs[0], rows)
    write_json(outputs[1], metrics)
    if bench_rows:
        write_jsonl(stage_dir / "benchmark_predictions.jsonl", bench_rows)
        outputs.append(stage_dir / "benchmark_predictions.jsonl")
    outputs += write_report(stage_dir, metrics, rows, train_dir)

    loss = metrics["loss"]["test"]
    summary = (
        f"test loss {loss['base'][ALL]['loss']} → {loss['tuned'][ALL]['loss']}, "
        f"chrF {metrics['generation']['base'][ALL]['chrf']} → {metrics['generation']['tuned'][ALL]['chrf']} "
        f"(base → tuned, {len(selected)} answers)"
    )
    from fine_tuning.evaluate.mcq import benchmark_settings

    for bench in bench_summaries:
        summary += f"; {bench['name']} " + ", ".join(
            f"{k}-shot {scores['base']['accuracy']} → {scores['tuned']['accuracy']}"
            for k, scores in benchmark_settings(bench)
        )
    console.print(f"evaluate: report at {stage_dir / 'report.md'}")
    return StageResult(
        outputs=outputs,
        counts={
            "test_examples": len(test),
            "generated": len(selected),
            "benchmark_questions": sum(b["questions"] for b in bench_summaries),
        },
        stats={"headline": metrics["headline"]},
        extra_inputs=bench_files,
        summary=summary,
    )


def read_metrics(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
