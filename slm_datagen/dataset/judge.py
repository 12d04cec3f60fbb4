"""Optional teacher-based checks, run last because they cost money: an LLM judge and a second teacher.

* `build.judge`: a teacher scores each remaining pair's faithfulness to its source chunk on a 1–5 rubric; a score
  below `build.judge_min_score` rejects the pair (judge_low_score).
* `build.second_teacher`: another teacher answers the same question from the same chunk; when the two answers
  disagree on the final tax amount or cite no article in common, the pair is held out of the splits and written to
  review.jsonl (teacher_disagreement) for a person to decide.

Both are off by default. They call the official SDKs (synchronous clients, a thread pool of the teacher's
`max_concurrency`, the SDK's own retries up to `max_retries`) and reuse the distill stage's reply normalisers and
prices. Keys come from the environment variable the teacher config names (`api_key_env`, else the provider's
default); they are never written anywhere. A key that is refused (401/403) or an unknown model (404) stops the
build with an SlmError; any other failure leaves that pair unjudged and is counted.
"""

from __future__ import annotations

import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from slm_datagen.dataset.arithmetic import TAX_LABELS
from slm_datagen.dataset.rules import Finding
from slm_datagen.distill.pricing import find_price
from slm_datagen.distill.teachers import (
    DEFAULT_KEY_ENV,
    TeacherReply,
    anthropic_params,
    anthropic_reply,
    openai_body,
    openai_reply,
    redact,
)
from slm_datagen.taxlaw.answer_amounts import labelled_amounts
from slm_datagen.taxlaw.citations import find_citations, normalize_law_name
from slm_forest.config import BuildConfig, TeacherConfig
from slm_forest.errors import SlmError
from slm_forest.progress import progress_bar
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
_FATAL_STATUS = (401, 403, 404)


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


class SdkTeacher:
    """A synchronous client for one configured teacher; `role` ("build.judge") names it in errors."""

    def __init__(self, cfg: TeacherConfig, role: str) -> None:
        if cfg.provider == "offline":
            raise SlmError(
                f"{role}.provider is 'offline': the offline teacher cannot judge or answer freely",
                f"set {role}.provider to openai, anthropic or openai_compatible (or {role}: null)",
            )
        self.cfg = cfg
        self.role = role
        env = cfg.api_key_env or DEFAULT_KEY_ENV.get(cfg.provider, "OPENAI_API_KEY")
        key = os.environ.get(env, "").strip()
        if not key and cfg.provider == "openai_compatible" and cfg.api_key_env is None:
            key = "not-needed"  # local servers accept any key
        if not key:
            raise SlmError(
                f"{role} ({cfg.provider}:{cfg.model}) needs an API key in the environment variable {env}, which is not set",
                f"export {env}=... (or set {role}.api_key_env to the variable that holds it)",
            )
        self._secrets = [key]
        kwargs: dict[str, Any] = {"api_key": key, "max_retries": cfg.max_retries, "timeout": cfg.timeout_s}
        if cfg.base_url:
            kwargs["base_url"] = cfg.base_url
        if cfg.provider == "anthropic":
            import anthropic  # noqa: PLC0415

            self._client: Any = anthropic.Anthropic(**kwargs)
            self._errors: tuple[type[BaseException], ...] = (anthropic.APIError,)
        else:
            import openai  # noqa: PLC0415

            self._client = openai.OpenAI(**kwargs)
            self._errors = (openai.APIError,)
        self.price = find_price(cfg.model, cfg.provider)

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> TeacherReply:
        """One request; `schema` constrains the reply (json_schema / forced tool / json_object) when given."""
        try:
            if self.cfg.provider == "anthropic":
                params = anthropic_params(
                    self.cfg, messages, schema=schema, schema_name=JUDGE_TOOL, tool_description="Record the score."
                )
                return anthropic_reply(self._client.messages.create(**params))
            body = openai_body(self.cfg, messages, schema=schema, schema_name=JUDGE_TOOL, temperature=0.0)
            return openai_reply(self._client.chat.completions.create(**body))
        except self._errors as exc:
            status = getattr(exc, "status_code", None)
            message = redact(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}", self._secrets)[:300]
            if status in _FATAL_STATUS:
                raise SlmError(
                    f"{self.role} ({self.cfg.provider}:{self.cfg.model}) was refused: HTTP {status} {message}",
                    f"check the key in {self.cfg.api_key_env or DEFAULT_KEY_ENV.get(self.cfg.provider)} and "
                    f"{self.role}.model / base_url",
                ) from None
            raise RuntimeError(message) from None

    def cost(self, reply: TeacherReply) -> float:
        return self.price.cost(reply.input_tokens, reply.output_tokens) if self.price else 0.0

    def close(self) -> None:
        self._client.close()


@dataclass
class Spend:
    """What one teacher check used, for the card and the manifest."""

    provider: str
    model: str
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    price_known: bool = True
    scores: dict[int, int] = field(default_factory=dict)
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, teacher: SdkTeacher, reply: TeacherReply) -> None:
        with self._lock:
            self.requests += 1
            self.input_tokens += reply.input_tokens
            self.output_tokens += reply.output_tokens
            self.cost_usd += teacher.cost(reply)

    def fail(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = message

    def summary(self) -> dict[str, Any]:
        out = {
            "provider": self.provider,
            "model": self.model,
            "requests": self.requests,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }
        if not self.price_known:
            out["cost_note"] = "no price known for this model: cost not counted"
        if self.scores:
            out["scores"] = {str(k): v for k, v in sorted(self.scores.items())}
        if self.last_error:
            out["last_error"] = self.last_error
        return out


def _run_parallel(description: str, positions: list[int], teacher: SdkTeacher, work: Any) -> None:
    workers = max(1, min(teacher.cfg.max_concurrency, 32, len(positions) or 1))
    with progress_bar(description, len(positions), show_cost=True) as bar, ThreadPoolExecutor(workers) as pool:
        spent = 0.0
        for cost in pool.map(work, positions):
            spent += cost
            bar.advance(cost_usd=spent)


def run_judge(
    pairs: list[QAPair], sources: dict[int, str], positions: list[int], findings: list[list[Finding]], cfg: BuildConfig
) -> dict[str, Any]:
    assert cfg.judge is not None
    teacher = SdkTeacher(cfg.judge, "build.judge")
    spend = Spend(cfg.judge.provider, cfg.judge.model, price_known=teacher.price is not None)
    lock = threading.Lock()

    def judge_one(position: int) -> float:
        pair = pairs[position]
        try:
            reply = teacher.complete(judge_messages(pair, sources[position]), JUDGE_SCHEMA)
        except RuntimeError as exc:
            spend.fail(str(exc))
            return 0.0
        spend.add(teacher, reply)
        try:
            score, reason = parse_judgement(reply.text)
        except (ValueError, json.JSONDecodeError) as exc:
            spend.fail(f"unreadable judgement: {exc}")
            return teacher.cost(reply)
        with lock:
            spend.scores[score] = spend.scores.get(score, 0) + 1
            if score < cfg.judge_min_score:
                findings[position].append(
                    Finding("judge_low_score", f"score {score} < build.judge_min_score {cfg.judge_min_score}: {reason}")
                )
        return teacher.cost(reply)

    try:
        _run_parallel("judging pairs", positions, teacher, judge_one)
    finally:
        teacher.close()
    return spend.summary() | {"min_score": cfg.judge_min_score, "judged": sum(spend.scores.values())}


def run_second_teacher(
    pairs: list[QAPair],
    sources: dict[int, str],
    positions: list[int],
    findings: list[list[Finding]],
    second_answers: dict[int, str],
    cfg: BuildConfig,
) -> dict[str, Any]:
    assert cfg.second_teacher is not None
    teacher = SdkTeacher(cfg.second_teacher, "build.second_teacher")
    spend = Spend(cfg.second_teacher.provider, cfg.second_teacher.model, price_known=teacher.price is not None)
    lock = threading.Lock()
    label = f"{cfg.second_teacher.provider}:{cfg.second_teacher.model}"

    def answer_one(position: int) -> float:
        pair = pairs[position]
        try:
            reply = teacher.complete(second_teacher_messages(pair, sources[position], cfg.system_prompt), None)
        except RuntimeError as exc:
            spend.fail(str(exc))
            return 0.0
        spend.add(teacher, reply)
        if not reply.text or reply.truncated:
            spend.fail("empty or truncated second answer")
            return teacher.cost(reply)
        disagreement = compare_answers(pair.answer, reply.text)
        with lock:
            second_answers[position] = reply.text
            if disagreement:
                findings[position].append(
                    Finding(
                        "teacher_disagreement",
                        f"{disagreement}; second teacher {label} answered: {reply.text[:400]}",
                        "review",
                    )
                )
        return teacher.cost(reply)

    try:
        _run_parallel("second teacher", positions, teacher, answer_one)
    finally:
        teacher.close()
    return spend.summary()


def run_teacher_checks(pairs: list[QAPair], chunks: list[Chunk], outcome: Any, cfg: BuildConfig) -> None:
    """Judge, then second teacher, over the pairs still standing that have a source chunk; updates `outcome`."""
    by_id = {chunk.id: chunk for chunk in chunks}
    if cfg.judge is not None:
        standing = [i for i in outcome.standing() if pairs[i].chunk_id in by_id]
        sources = {i: by_id[pairs[i].chunk_id].text for i in standing}
        outcome.judge["judge"] = run_judge(pairs, sources, standing, outcome.findings, cfg)
    if cfg.second_teacher is not None:
        standing = [i for i in outcome.standing() if pairs[i].chunk_id in by_id]
        sources = {i: by_id[pairs[i].chunk_id].text for i in standing}
        outcome.judge["second_teacher"] = run_second_teacher(
            pairs, sources, standing, outcome.findings, outcome.second_answers, cfg
        )
