"""The optional LLM judge (`evaluate.judge`): 1–5 scores for correctness, legal basis and clarity, with reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fine_tuning.evaluate.examples import MODELS

JUDGE_CRITERIA = ("correctness", "legal_basis", "clarity")
# Part of every request's ledger key: a new rubric is a new version (and new requests).
JUDGE_PROMPT_VERSION = "evaluate-judge-1"
JUDGE_OUTPUT_TOKENS = 200  # three scores and a sentence or two: what the budget reserves per request


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


def run_judge(
    judge_cfg: Any,
    rows: list[dict[str, Any]],
    stage_dir: Path,
    *,
    max_cost_usd: float | None = None,
    prices: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Score every base and tuned answer through evaluate/judge_ledger.jsonl (see slm_datagen.dataset.teacher_calls):
    an answer judged before (same question, reference and answer) is read from the ledger and costs nothing.
    Failures are counted and kept on the row with their reason, never dropped silently; `evaluate.max_cost_usd`
    reached stops the stage with one line (the verdicts paid for stay in the ledger)."""
    from slm_datagen.dataset.teacher_calls import CheckLedger, CheckRequest
    from slm_datagen.distill.schema import RequestShape

    shape = RequestShape(schema=JUDGE_SCHEMA, schema_name="record_scores", tool_description="Record the scores.")
    jobs = [(i, which) for i in range(len(rows)) for which in MODELS]
    requests = [
        CheckRequest(
            f"{rows[i]['id']}:{which}",
            judge_messages(rows[i]["question"], rows[i]["reference"], rows[i][which]["answer"]),
            shape,
            JUDGE_PROMPT_VERSION,
            JUDGE_OUTPUT_TOKENS,
        )
        for i, which in jobs
    ]
    checks = CheckLedger.open(stage_dir, max_cost_usd, "evaluate.max_cost_usd", prices or {})
    try:
        caller = checks.caller("evaluate.judge", judge_cfg)
        replies = caller.run(requests, "evaluate: judge")
        checks.raise_if_stopped(caller.spend, "answers judged")
    finally:
        checks.close()
    spend = caller.spend
    for (index, which), reply in zip(jobs, replies):
        scores = rows[index][which]["scores"]
        if reply is None or reply.error:
            scores["judge"] = {"error": reply.error[:200] if reply else "not sent"}
            continue
        try:
            scores["judge"] = parse_judge_reply(reply.text)
        except (ValueError, TypeError) as exc:
            spend.fail(f"unreadable judgement: {exc}")
            scores["judge"] = {"error": f"unreadable judgement: {exc}"}
    return spend.summary() | spend.this_run() | {"max_cost_usd": max_cost_usd}
