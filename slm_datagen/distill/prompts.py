"""Versioned prompt templates: one per source kind × audience, plus a `calculation` style. Pure functions only.

A template's version is part of every request key (see `plan.request_key`), so editing a template and bumping its
version re-asks exactly the requests that used it; everything else stays cached in the ledger.

    build_messages(chunk, audience="expert", style="explain") -> Prompt(version, messages)
    repair_messages(prompt, reason, bad_reply) -> the same conversation plus one repair instruction

Messages are plain `{"role", "content"}` dicts; `teachers.py` maps them onto each provider (Anthropic takes the
system message separately). The reply format is the JSON object of `schema.PAIR_JSON_SCHEMA`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from slm_datagen.distill.calcspec import calculation_rule
from slm_datagen.distill.schema import PAIR_JSON_SCHEMA
from slm_forest.records import Chunk

# Bump a version whenever its text changes: cached replies of the old text are then not reused.
SYSTEM_VERSION = "system@1"
TEMPLATE_VERSIONS: dict[tuple[str, str], str] = {
    ("statute_article", "explain"): "statute@2",  # @2: no effective date in the source block
    ("precedent", "explain"): "precedent@1",
    ("interpretation", "explain"): "ruling@1",
    ("ruling", "explain"): "ruling@1",
    ("statute_article", "calculation"): "calc@2",
    ("precedent", "calculation"): "calc@2",
    ("interpretation", "calculation"): "calc@2",
    ("ruling", "calculation"): "calc@2",
}
AUDIENCE_VERSION = "audience@1"

SYSTEM_PROMPT = (
    "당신은 한국 세법 전문가이자, 세법 학습용 질의응답 데이터셋을 만드는 작성자입니다. "
    "주어진 원문(법령 조문, 판례, 국세청 해석)에만 근거해 정확한 질문과 답변을 한국어로 작성합니다. "
    "원문에 없는 사실·금액·세율을 지어내지 말고, 답변에는 근거 법령명과 조·항·호를 밝히세요. "
    "출력은 지정된 JSON 객체 하나뿐이며, 그 밖의 설명이나 코드 블록을 붙이지 않습니다."
)

AUDIENCE_RULES: dict[str, str] = {
    "expert": (
        "대상: 세무사·회계사·세무 공무원 같은 전문가.\n"
        "- 질문은 요건, 효과, 예외(단서), 절차·기한, 계산 방법 중 하나를 구체적으로 묻습니다.\n"
        "- 답변은 결론을 먼저 말하고, 법적 근거(법령명 + 제N조 제M항 제K호)와 요건·절차를 정확한 용어로 설명합니다.\n"
        "- 금액·기간·비율은 원문 그대로 인용합니다."
    ),
    "layperson": (
        "대상: 세법을 잘 모르는 일반 납세자.\n"
        "- 질문은 일상에서 실제로 물을 법한 말투로 씁니다(예: '…하면 세금을 내야 하나요?').\n"
        "- 답변은 쉬운 말로 결론부터 말하고, 어려운 법률 용어는 풀어서 설명하며, 구체적인 예시를 하나 듭니다.\n"
        "- 마지막에 근거 조문을 괄호로 밝힙니다(예: '(근거: 소득세법 제12조)')."
    ),
}

_FIELD_RULES = (
    "JSON 필드:\n"
    "- question: 질문 (한국어)\n"
    "- answer: 답변 (한국어, 1,500자 이내)\n"
    '- audience: "{audience}"\n'
    '- citations: 답변이 근거로 삼은 조문 목록, 각 항목은 {{"law": 법령명, "article": "제N조 제M항"}}\n'
    "- calculation: {calculation_rule}"
)
_CALC_NONE = "null"
# calc@2: the calculation rule is generated from the checker's accepted inputs (calcspec.calculation_rule), so a
# teacher is asked for exactly the names, types and values `slm build` recomputes.

# Laws whose provisions a worked computation can use, and the calculation kinds they allow.
CALCULATION_LAWS: dict[str, tuple[str, ...]] = {
    "상속세 및 증여세법": ("gift_tax", "inheritance_tax"),
    "소득세법": ("income_tax", "capital_gains_tax"),
}


@dataclass(frozen=True)
class Prompt:
    version: str  # e.g. "system@1+statute@1+audience@1"
    messages: tuple[dict[str, str], ...]
    kinds: tuple[str, ...] = ()  # calculation kinds allowed (calculation style only)

    def as_list(self) -> list[dict[str, str]]:
        return [dict(m) for m in self.messages]


def calculation_kinds(chunk: Chunk) -> tuple[str, ...]:
    """The calculation kinds a chunk supports: from its law name, or the laws an interpretation cites."""
    names = [chunk.law_name or ""] + list(chunk.related_laws)
    kinds: list[str] = []
    for name in names:
        for law, allowed in CALCULATION_LAWS.items():
            if re.search(rf"(?<![가-힣]){re.escape(law)}(?!\s*시행)", name or "") or (name or "").startswith(law):
                kinds.extend(k for k in allowed if k not in kinds)
    if "capital_gains_tax" in kinds and not re.search(r"양도", chunk.text + chunk.title):
        kinds.remove("capital_gains_tax")
    return tuple(kinds)


def _source_block(chunk: Chunk) -> str:
    """The source text with the facts a teacher needs to cite it.

    A statute article's effective date is left out on purpose: it is the whole law's 시행일, so a new version of
    the law would change the prompt (and the ledger key) of every unchanged article and pay for all of them again.
    What is sent, and so the key, depends on the article's own text only.
    """
    if chunk.kind == "statute_article":
        return f"[법령 조문] {chunk.citation}\n제목: {chunk.title}\n---\n{chunk.text.strip()}\n---"
    if chunk.kind == "precedent":
        refs = f"\n참조조문: {'; '.join(chunk.related_laws)}" if chunk.related_laws else ""
        return f"[판례] {chunk.citation}\n제목: {chunk.title}{refs}\n---\n{chunk.text.strip()}\n---"
    parts = [f"[국세청 해석] {chunk.citation}", f"제목: {chunk.title}"]
    if chunk.question:
        parts.append(f"쟁점(질의): {chunk.question.strip()}")
    if chunk.answer:
        parts.append(f"답변요지(회신): {chunk.answer.strip()}")
    if chunk.related_laws:
        parts.append(f"관련법령: {'; '.join(chunk.related_laws)}")
    body = chunk.text.strip()
    if body and body not in (chunk.question or "") + (chunk.answer or ""):
        parts.append(f"---\n{body}\n---")
    return "\n".join(parts)


_TASKS: dict[str, str] = {
    "statute_article": (
        "위 조문에 근거한 질문 1개와 답변을 작성하세요. 질문은 이 조문이 정하는 내용(대상, 요건, 효과, 예외, 절차 중 하나)을 "
        "묻고, 답변은 조문의 내용을 정확히 반영해야 합니다."
    ),
    "precedent": (
        "위 판례에 근거한 질문 1개와 답변을 작성하세요. 질문은 판례의 쟁점(판시사항)을 자연스러운 질문으로 바꾼 것이고, "
        "답변은 법원의 판단(판결요지)과 그 이유, 참조조문을 밝힙니다. 사건번호를 답변에 언급하세요."
    ),
    "interpretation": (
        "위 국세청 해석에 근거한 질문 1개와 답변을 작성하세요. 질문은 쟁점을 실제 납세자가 묻는 자연스러운 질문으로 바꾸고, "
        "답변은 답변요지의 결론을 완전한 문장으로 설명하며 관련법령을 인용합니다. 답변요지와 다른 결론을 내지 마세요."
    ),
}
_TASKS["ruling"] = _TASKS["interpretation"]

_CALC_TASK = (
    "위 자료의 규정을 적용하는 세액 계산 문제 1개와 풀이를 작성하세요.\n"
    "- 질문에는 계산에 필요한 사실(금액, 관계, 연도 등)을 모두 제시합니다.\n"
    "- 답변에는 과세표준부터 세액까지 모든 단계의 금액을 원 단위로 보여 줍니다(공제, 세율 구간, 누진공제 포함).\n"
    "- 세율·공제액은 해당 연도의 법령 그대로 사용하고, 각 단계의 근거 조문을 밝힙니다.\n"
    "- calculation 필드에 입력값과 최종 결과(result_won)를 넣습니다. 허용되는 kind: {kinds}."
)


def schema_instructions() -> str:
    """The schema spelled out, for servers that cannot enforce it (openai_compatible)."""
    return "다음 JSON Schema를 만족하는 JSON 객체 하나만 출력하세요:\n" + json.dumps(
        PAIR_JSON_SCHEMA, ensure_ascii=False, separators=(",", ":")
    )


def template_version(chunk_kind: str, style: str) -> str:
    return f"{SYSTEM_VERSION}+{TEMPLATE_VERSIONS[(chunk_kind, style)]}+{AUDIENCE_VERSION}"


def build_messages(chunk: Chunk, audience: str, style: str = "explain", *, inline_schema: bool = False) -> Prompt:
    """The conversation for one (chunk, audience, style). `inline_schema` writes the JSON Schema into the prompt."""
    if audience not in AUDIENCE_RULES:
        raise ValueError(f"unknown audience {audience!r}")
    kinds: tuple[str, ...] = ()
    if style == "calculation":
        kinds = calculation_kinds(chunk)
        task = _CALC_TASK.format(kinds=", ".join(kinds) or "gift_tax, inheritance_tax, income_tax, capital_gains_tax")
        calc_rule = calculation_rule(kinds)
    elif style == "explain":
        task = _TASKS[chunk.kind]
        calc_rule = _CALC_NONE
    else:
        raise ValueError(f"unknown style {style!r}")
    system = SYSTEM_PROMPT + ("\n\n" + schema_instructions() if inline_schema else "")
    user = "\n\n".join(
        [
            _source_block(chunk),
            task,
            AUDIENCE_RULES[audience],
            _FIELD_RULES.format(audience=audience, calculation_rule=calc_rule),
        ]
    )
    version = template_version(chunk.kind, style) + ("+inline" if inline_schema else "")
    return Prompt(version, ({"role": "system", "content": system}, {"role": "user", "content": user}), kinds)


# distill.context (RAFT pairs): the question will be shown with this source among other articles, so its answer must
# name the source it rests on first; distill/context.py attaches the articles after the reply.
CONTEXT_VERSION = "context@1"
CONTEXT_RULE = (
    "- 이 질문은 위 원문을 다른 조문들과 함께 '참고 법령'으로 제시한 상태에서 출제됩니다. 답변의 첫 문장에서 근거가 된 "
    "원문({citation})과 적용 조문을 밝히고, 제시되지 않은 조문을 근거로 삼지 마세요."
)


def with_context_rule(prompt: Prompt, chunk: Chunk) -> Prompt:
    """The same request with the RAFT rule added to its last user message (and to its version, so to its key)."""
    *head, last = prompt.messages
    rule = CONTEXT_RULE.format(citation=chunk.citation or chunk.title)
    extended = {**last, "content": f"{last['content']}\n\n{rule}"}
    return Prompt(f"{prompt.version}+{CONTEXT_VERSION}", (*head, extended), prompt.kinds)


REPAIR_INSTRUCTIONS: dict[str, str] = {
    "not_korean": "방금 답변은 한국어가 아니었습니다. 같은 내용을 반드시 한국어로, 지정된 JSON 객체 하나로만 다시 작성하세요.",
    "truncated": "방금 답변은 길이 제한으로 잘렸습니다. answer를 800자 이내로 더 간결하게 줄여, 완전한 JSON 객체 하나로 다시 작성하세요.",
    "empty": "방금 답변이 비어 있었습니다. 지정된 JSON 객체 하나로 질문과 답변을 작성하세요.",
    "schema": "방금 답변이 지정된 JSON 형식에 맞지 않았습니다({detail}). 필드 question, answer, audience, citations, calculation을 모두 갖춘 JSON 객체 하나만 출력하세요.",
    "refused": "이 요청은 공개된 법령·판례·행정해석을 설명하는 교육용 데이터 작성입니다. 지정된 JSON 객체 하나로 작성해 주세요.",
}


def repair_messages(prompt: Prompt, reason: str, bad_reply: str = "", detail: str = "") -> list[dict[str, str]]:
    """The original conversation, the bad reply (when it helps) and one instruction that names the problem."""
    messages = prompt.as_list()
    instruction = REPAIR_INSTRUCTIONS.get(reason, REPAIR_INSTRUCTIONS["schema"]).format(detail=detail[:200] or reason)
    if bad_reply.strip() and reason in ("not_korean", "schema"):
        messages.append({"role": "assistant", "content": bad_reply[:4000]})
    messages.append({"role": "user", "content": instruction})
    return messages
