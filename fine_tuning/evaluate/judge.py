"""The optional LLM judge (`evaluate.judge`): 1–5 scores for correctness, legal basis and clarity, with reasons."""

from __future__ import annotations

from typing import Any

from fine_tuning.evaluate.examples import MODELS
from slm_forest.progress import progress_bar

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
