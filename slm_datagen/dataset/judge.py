"""Optional teacher-based checks, run last because they cost money: an LLM judge and a second teacher.

* `build.judge`: a teacher scores each remaining pair's faithfulness to its source chunk on a 1–5 rubric; a score
  below `build.judge_min_score` rejects the pair (judge_low_score).
* `build.second_teacher`: another teacher answers the same question from the same chunk; when the two answers
  disagree on the final tax amount or cite no article in common, the pair is held out of the splits and written to
  review.jsonl (teacher_disagreement) for a person to decide.

Both are off by default. Their requests go through `teacher_calls.py`: distill's SDK adapters, rate limiter, retries,
price table (`distill.prices`) and ledger, here `build/judge_ledger.jsonl`, keyed by the content of each request, so
a rebuild (even `--force`, or after a kill) answers every recorded request from the ledger at no cost.
`build.max_cost_usd` caps what that ledger records as paid, judge and second teacher together: when it is reached
the build stops with one line and writes nothing (what was paid for stays in the ledger). Keys come from the
environment variable the teacher config names (`api_key_env`, else the provider's default); they are never
written anywhere. A key that is refused (401/403) or an unknown model (404) stops the build with an SlmError; a
request still failing after its retries leaves that pair unjudged, is counted, and a plain rerun asks again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from slm_datagen.dataset.arithmetic import TAX_LABELS
from slm_datagen.dataset.rules import Finding
from slm_datagen.dataset.teacher_calls import CheckLedger, CheckRequest, CheckSpend
from slm_datagen.distill.schema import RequestShape
from slm_datagen.taxlaw.answer_amounts import labelled_amounts
from slm_datagen.taxlaw.citations import find_citations, normalize_law_name
from slm_forest.config import BuildConfig
from slm_forest.records import Chunk, QAPair

JUDGE_TOOL = "record_judgement"
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "reason"],
    "properties": {
        "score": {"type": "integer", "enum": [1, 2, 3, 4, 5], "description": "1-5 faithfulness score"},
        "reason": {"type": "string", "description": "한 문장의 근거"},
    },
}
JUDGE_SYSTEM = (
    "당신은 한국 세법 학습 데이터의 검수자입니다. 답변이 주어진 원문에 충실한지만 평가하고, 반드시 JSON으로만 답하세요."
)
RUBRIC = """채점 기준 (score):
5 = 답변의 모든 내용이 원문에 근거하며 정확하다.
4 = 사실 오류는 없고 사소한 누락이나 표현 문제만 있다.
3 = 대체로 맞지만 원문에 없는 일반론이나 확인할 수 없는 내용이 섞여 있다.
2 = 원문과 어긋나는 내용이나 중요한 오류(조문, 금액, 요건)가 있다.
1 = 원문과 무관하거나 틀린 답변이다."""
SECOND_TEACHER_PROMPT = "다음 자료만을 근거로 질문에 답하세요. 근거 조문과 금액은 구체적으로 쓰세요."
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
# Part of every request's ledger key: changing a prompt or the rubric means a new version (and new requests).
JUDGE_PROMPT_VERSION = "build-judge-1"
SECOND_TEACHER_PROMPT_VERSION = "build-second-1"
JUDGE_SHAPE = RequestShape(schema=JUDGE_SCHEMA, schema_name=JUDGE_TOOL, tool_description="Record the score.")
FREE_TEXT_SHAPE = RequestShape(schema=None)
JUDGE_OUTPUT_TOKENS = 150  # a score and one sentence, what the budget reserves per judge request
SECOND_ANSWER_TOKENS = 600


def judge_messages(pair: QAPair, source: str) -> list[dict[str, str]]:
    user = (
        f"{RUBRIC}\n\n[원문]\n{source}\n\n[질문]\n{pair.question}\n\n[답변]\n{pair.answer}\n\n"
        '다음 형식의 JSON 하나로 답하세요: {"score": 1-5, "reason": "..."}'
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def second_teacher_messages(pair: QAPair, source: str, system_prompt: str) -> list[dict[str, str]]:
    user = f"{SECOND_TEACHER_PROMPT}\n\n[자료]\n{source}\n\n[질문]\n{pair.question}"
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def parse_judgement(text: str | None) -> tuple[int, str]:
    """(score, reason) from the judge's reply; ValueError when it is not a 1–5 score."""
    if not text:
        raise ValueError("empty reply")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        match = _JSON_OBJECT.search(text)
        if not match:
            raise ValueError(f"no JSON object in {text[:80]!r}") from None
        data = json.loads(match.group(0))
    score = data.get("score") if isinstance(data, dict) else None
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValueError(f"score {score!r} is not 1-5")
    return score, str(data.get("reason") or "")


def _final_tax(answer: str) -> int | None:
    taxes = [m.won for label, m in labelled_amounts(answer) if label in TAX_LABELS]
    return taxes[-1] if taxes else None


def _articles(text: str) -> set[tuple[str, int, int]]:
    return {(normalize_law_name(c.law), c.article, c.branch or 0) for c in find_citations(text)}


def compare_answers(first: str, second: str) -> str | None:
    """How two answers to one question disagree (final tax amount, cited articles), or None when they agree."""
    problems = []
    tax_a, tax_b = _final_tax(first), _final_tax(second)
    if tax_a is not None and tax_b is not None and abs(tax_a - tax_b) > max(10, 0.001 * max(tax_a, tax_b)):
        problems.append(f"final tax {tax_a:,} won vs {tax_b:,} won")
    arts_a, arts_b = _articles(first), _articles(second)
    if arts_a and arts_b and not arts_a & arts_b:

        def fmt(arts: set[tuple[str, int, int]]) -> str:
            return ", ".join(sorted(f"{law} 제{a}조" + (f"의{b}" if b else "") for law, a, b in arts))

        problems.append(f"no article in common ({fmt(arts_a)} vs {fmt(arts_b)})")
    return "; ".join(problems) or None


def judge_request(pair: QAPair, source: str) -> CheckRequest:
    return CheckRequest(pair.id, judge_messages(pair, source), JUDGE_SHAPE, JUDGE_PROMPT_VERSION, JUDGE_OUTPUT_TOKENS)


def second_teacher_request(pair: QAPair, source: str, cfg: BuildConfig) -> CheckRequest:
    assert cfg.second_teacher is not None
    messages = second_teacher_messages(pair, source, cfg.system_prompt)
    expected = min(cfg.second_teacher.max_tokens, SECOND_ANSWER_TOKENS)
    return CheckRequest(pair.id, messages, FREE_TEXT_SHAPE, SECOND_TEACHER_PROMPT_VERSION, expected)


def run_judge(
    checks: CheckLedger,
    pairs: list[QAPair],
    sources: dict[int, str],
    positions: list[int],
    findings: list[list[Finding]],
    cfg: BuildConfig,
) -> CheckSpend:
    assert cfg.judge is not None
    caller = checks.caller("build.judge", cfg.judge)
    requests = [judge_request(pairs[i], sources[i]) for i in positions]
    replies = caller.run(requests, "build: judging pairs")
    spend = caller.spend
    scores = spend.scores
    for position, reply in zip(positions, replies):
        if reply is None or reply.error:
            continue
        try:
            score, reason = parse_judgement(reply.text)
        except (ValueError, json.JSONDecodeError) as exc:
            spend.fail(f"unreadable judgement: {exc}")
            continue
        scores[score] = scores.get(score, 0) + 1
        if score < cfg.judge_min_score:
            findings[position].append(
                Finding("judge_low_score", f"score {score} < build.judge_min_score {cfg.judge_min_score}: {reason}")
            )
    return spend


def run_second_teacher(
    checks: CheckLedger,
    pairs: list[QAPair],
    sources: dict[int, str],
    positions: list[int],
    findings: list[list[Finding]],
    second_answers: dict[int, str],
    cfg: BuildConfig,
) -> CheckSpend:
    assert cfg.second_teacher is not None
    caller = checks.caller("build.second_teacher", cfg.second_teacher)
    label = f"{cfg.second_teacher.provider}:{cfg.second_teacher.model}"
    requests = [second_teacher_request(pairs[i], sources[i], cfg) for i in positions]
    replies = caller.run(requests, "build: second teacher")
    for position, reply in zip(positions, replies):
        if reply is None or reply.error:
            continue
        if not reply.text or reply.truncated:
            caller.spend.fail("empty or truncated second answer")
            continue
        second_answers[position] = reply.text
        disagreement = compare_answers(pairs[position].answer, reply.text)
        if disagreement:
            findings[position].append(
                Finding(
                    "teacher_disagreement",
                    f"{disagreement}; second teacher {label} answered: {reply.text[:400]}",
                    "review",
                )
            )
    return caller.spend


def _standing_sources(pairs: list[QAPair], by_id: dict[str, Chunk], outcome: Any) -> dict[int, str]:
    return {i: by_id[pairs[i].chunk_id].text for i in outcome.standing() if pairs[i].chunk_id in by_id}


def run_teacher_checks(
    pairs: list[QAPair],
    chunks: list[Chunk],
    outcome: Any,
    cfg: BuildConfig,
    stage_dir: Path,
    prices: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Judge, then second teacher, over the pairs still standing that have a source chunk; updates `outcome`.

    `outcome.judge` gets the run-independent numbers (build_info.json and the card); the returned dict is this run's
    (requests sent, answered from the ledger, dollars paid now), for the manifest and the summary line."""
    by_id = {chunk.id: chunk for chunk in chunks}
    this_run: dict[str, Any] = {}
    checks = CheckLedger.open(stage_dir, cfg.max_cost_usd, "build.max_cost_usd", prices or {})
    try:
        if cfg.judge is not None:
            sources = _standing_sources(pairs, by_id, outcome)
            spend = run_judge(checks, pairs, sources, list(sources), outcome.findings, cfg)
            checks.raise_if_stopped(spend, "pairs judged")
            outcome.judge["judge"] = _judge_summary(spend, cfg)
            this_run["judge"] = spend.this_run()
        if cfg.second_teacher is not None:
            sources = _standing_sources(pairs, by_id, outcome)
            spend = run_second_teacher(
                checks, pairs, sources, list(sources), outcome.findings, outcome.second_answers, cfg
            )
            checks.raise_if_stopped(spend, "second answers")
            outcome.judge["second_teacher"] = spend.summary()
            this_run["second_teacher"] = spend.this_run()
    finally:
        checks.close()
    if outcome.judge:
        outcome.judge["max_cost_usd"] = cfg.max_cost_usd
    return this_run


def _judge_summary(spend: CheckSpend, cfg: BuildConfig) -> dict[str, Any]:
    return spend.summary() | {"min_score": cfg.judge_min_score, "judged": sum(spend.scores.values())}
