"""The several-pairs-per-request layout: stable part first, so the providers' prompt caches can serve it. Pure.

    build_pairs_messages(chunk, items, calculation=True, ...) -> Prompt
    pairs_repair_messages(prompt, failed, bad_reply) -> the conversation plus one instruction naming the bad pairs

Layout, from the most shared to the least (a provider cache serves the longest prefix it has seen):
1. system: persona, every audience's rules and the reply format. Identical for every request; short on purpose
   (a prefix below the provider's minimum is not cached, and a long one would be paid on every request). With the
   reply schema before it (OpenAI: part of the prompt; Anthropic: the tool, sent first) it is one cacheable prefix
   where the provider's minimum allows (Anthropic: a `cache_control` breakpoint ends it; OpenAI: automatic).
2. user, only when the request has calculation pairs: the calculation rules for the chunk's kinds (the long part:
   the accepted inputs of each kind). Identical for every chunk with the same kinds, so with 1. it is a prefix of
   1,000+ tokens both providers cache (Anthropic: a breakpoint on it).
3. user: the source block of the chunk. When the chunk is asked in more than one request (`pairs_per_request`
   smaller than its pairs), Anthropic gets a breakpoint here too (`cache_breakpoint` on the message; only
   role and content reach OpenAI).
4. user: the source kind's task and the list of pairs to write, each with its id, audience and style: the only
   part that differs between the requests of one chunk.

The version (`PAIRS_VERSION`) is in every request key: editing any text here must bump it.
"""

from __future__ import annotations

import json

from slm_datagen.distill.calcspec import calculation_rule
from slm_datagen.distill.prompts import (
    _CALC_TASK,
    _TASKS,
    AUDIENCE_RULES,
    REPAIR_INSTRUCTIONS,
    SYSTEM_PROMPT,
    Prompt,
    _source_block,
    calculation_kinds,
)
from slm_datagen.distill.schema import PAIRS_JSON_SCHEMA
from slm_forest.records import Chunk

PAIRS_VERSION = "pairs@1"
STYLE_NAMES = {"explain": "설명", "calculation": "세액 계산"}

_FORMAT_RULES = (
    '출력 형식: JSON 객체 하나, {"pairs": [쌍, …]}. 요청한 쌍마다 하나씩, 요청 목록의 순서대로 씁니다.\n'
    "각 쌍의 필드:\n"
    '- id: 요청 목록의 id 그대로 (예: "p1")\n'
    "- question: 질문 (한국어)\n"
    "- answer: 답변 (한국어, 1,500자 이내)\n"
    '- citations: 답변이 근거로 삼은 조문 목록, 각 항목은 {"law": 법령명, "article": "제N조 제M항"}\n'
    "- calculation: 유형이 설명이면 null, 세액 계산이면 세액 계산 규칙에 따른 객체"
)


def pair_id(index: int) -> str:
    return f"p{index + 1}"


def pairs_system_prompt(*, inline_schema: bool = False) -> str:
    """The stable part: the same text for every chunk and every request of a run (kept short: a prefix below the
    provider's minimum is not cached, and then every token of it is paid in full on every request)."""
    audiences = "\n".join(f"[{name}] {rules}" for name, rules in AUDIENCE_RULES.items())
    parts = [
        SYSTEM_PROMPT,
        "한 요청에서 같은 원문으로 여러 질의응답 쌍을 작성합니다. 쌍마다 대상과 유형이 정해져 있으며, 쌍끼리 같은 질문을 "
        "반복하지 말고 원문의 서로 다른 내용을 다루세요.",
        "대상별 규칙:\n" + audiences,
        _FORMAT_RULES,
    ]
    if inline_schema:
        parts.append(
            "다음 JSON Schema를 만족하는 JSON 객체 하나만 출력하세요:\n"
            + json.dumps(PAIRS_JSON_SCHEMA, ensure_ascii=False, separators=(",", ":"))
        )
    return "\n\n".join(parts)


def calculation_rules(kinds: tuple[str, ...]) -> str:
    """The rules of a calculation pair for these kinds: the same text for every chunk with the same kinds."""
    task = _CALC_TASK.format(kinds=", ".join(kinds)).replace("문제 1개와", "문제와")
    return "유형이 세액 계산인 쌍의 규칙:\n" + task + "\n- calculation 필드: " + calculation_rule(kinds)


def pairs_version(inline_schema: bool) -> str:
    return PAIRS_VERSION + ("+inline" if inline_schema else "")


def _request_list(chunk: Chunk, items: list[tuple[str, str]] | tuple[tuple[str, str], ...], ids: list[str]) -> str:
    task = _TASKS[chunk.kind].replace("질문 1개와 답변을 작성하세요", "질문과 답변을 작성합니다")
    lines = [f"위 원문에 근거해 아래 {len(items)}개의 질의응답 쌍을 작성하세요. 유형이 설명인 쌍: {task}"]
    for (audience, style), pid in zip(items, ids):
        lines.append(f"[{pid}] 대상: {audience} / 유형: {STYLE_NAMES[style]}")
    return "\n".join(lines)


def build_pairs_messages(
    chunk: Chunk,
    items: tuple[tuple[str, str], ...],
    *,
    inline_schema: bool = False,
    source_breakpoint: bool = False,
) -> Prompt:
    """The conversation asking for `items` ((audience, style) pairs) of one chunk in one reply."""
    for audience, style in items:
        if audience not in AUDIENCE_RULES:
            raise ValueError(f"unknown audience {audience!r}")
        if style not in STYLE_NAMES:
            raise ValueError(f"unknown style {style!r}")
    ids = [pair_id(i) for i in range(len(items))]
    kinds = calculation_kinds(chunk) if any(style == "calculation" for _, style in items) else ()
    messages: list[dict] = [{"role": "system", "content": pairs_system_prompt(inline_schema=inline_schema)}]
    if kinds:  # shared by every chunk with these kinds: its own cacheable prefix
        messages.append({"role": "user", "content": calculation_rules(kinds), "cache_breakpoint": True})
    source: dict = {"role": "user", "content": _source_block(chunk)}
    if source_breakpoint:
        source["cache_breakpoint"] = True
    messages.append(source)
    messages.append({"role": "user", "content": _request_list(chunk, items, ids)})
    return Prompt(pairs_version(inline_schema), tuple(messages), kinds)


def shown_reply(bad_reply: str, ids: list[str]) -> str:
    """What of a bad reply the repair request shows: only the pairs being asked again when the reply parses (the
    good ones need no second look, and every token shown is paid again, uncached), else the reply as it came."""
    try:
        items = json.loads(bad_reply).get("pairs")
    except (ValueError, AttributeError):
        items = None
    if not isinstance(items, list):
        return bad_reply[:4000]
    failed = [item for item in items if isinstance(item, dict) and item.get("id") in ids]
    if not failed:
        return bad_reply[:4000]
    return json.dumps({"pairs": failed}, ensure_ascii=False)[:4000]


def pairs_repair_messages(
    prompt: Prompt, failed: list[tuple[str, str, str]], bad_reply: str = "", *, show_reply: bool = True
) -> list[dict]:
    """The original conversation, the bad pairs of the reply (when it helps) and one instruction naming each.

    `failed` lists (id, reason, detail). Only those pairs are asked for again: the good ones are kept. The repair
    turn is not part of any ledger key (the key is the first request's), so editing it re-asks nothing.
    """
    messages = prompt.as_list()
    lines = []
    for pid, reason, detail in failed:
        why = REPAIR_INSTRUCTIONS.get(reason, REPAIR_INSTRUCTIONS["schema"]).split(".")[0].format(detail="")
        lines.append(f"- [{pid}] {reason}: {(detail or why)[:200]}")
    ids = [pid for pid, _, _ in failed]
    instruction = (
        "방금 답변에서 다음 쌍이 쓸 수 없었습니다:\n" + "\n".join(lines) + "\n"
        f'이 쌍({", ".join(ids)})만 같은 JSON 형식({{"pairs": [...]}})으로 다시 작성하세요. 한국어로, answer는 800자 이내로 '
        "간결하게, 필드 id, question, answer, citations, calculation을 모두 갖추세요."
    )
    if show_reply and bad_reply.strip():
        messages.append({"role": "assistant", "content": shown_reply(bad_reply, ids)})
    messages.append({"role": "user", "content": instruction})
    return messages
