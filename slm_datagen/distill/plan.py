"""What to ask: requests per (chunk, teacher), each asking for one or several (audience, style) pairs, each with its
content-derived ledger key.

The key is the sha256 of exactly what would be sent: provider, model, prompt version, messages and the parameters
that change the reply (temperature, max_tokens, reply format). So an amended article (new text) gets new keys and
is asked again, an unchanged one keeps its keys and its cached pairs, and editing a template (new version) re-asks
only the requests that used it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from slm_datagen.distill.offline import OFFLINE_VERSION, offline_calculation_kinds
from slm_datagen.distill.prompts import Prompt, build_messages, calculation_kinds, with_context_rule
from slm_datagen.distill.prompts_multi import build_pairs_messages
from slm_datagen.distill.schema import PAIRS_JSON_SCHEMA, PAIRS_SCHEMA_NAME, RequestShape
from slm_forest.config import DistillConfig, TeacherConfig
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.records import Chunk


def teacher_label(teacher: TeacherConfig) -> str:
    return f"{teacher.provider}:{teacher.model}"


def reply_format(teacher: TeacherConfig) -> str:
    """How the reply is constrained: json_schema (OpenAI), tool (Anthropic), json_object / none (compatible)."""
    chosen = getattr(teacher, "response_format", "auto")
    if chosen != "auto":
        return chosen
    return {"openai": "json_schema", "anthropic": "tool", "openai_compatible": "json_object"}.get(
        teacher.provider, "none"
    )


def inline_schema(teacher: TeacherConfig) -> bool:
    """Servers that cannot enforce the schema get it written into the prompt."""
    return reply_format(teacher) in ("json_object", "none")


def request_params(teacher: TeacherConfig) -> dict[str, object]:
    return {"temperature": teacher.temperature, "max_tokens": teacher.max_tokens, "format": reply_format(teacher)}


def request_key(
    teacher: TeacherConfig, prompt_version: str, messages: list[dict[str, str]] | tuple, params: dict
) -> str:
    payload = {
        "provider": teacher.provider,
        "model": teacher.model,
        "prompt_version": prompt_version,
        "messages": list(messages),
        "params": params,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def offline_key(chunk: Chunk, audience: str, style: str, model: str, case_settings: tuple = ()) -> str:
    """`case_settings`: what else a calculation pair depends on (the seed, the planted error rate)."""
    blob = json.dumps(
        [
            "offline",
            model,
            OFFLINE_VERSION,
            chunk.kind,
            chunk.citation,
            chunk.title,
            chunk.text,
            chunk.question,
            chunk.answer,
            chunk.related_laws,
            audience,
            style,
            *case_settings,
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PlannedRequest:
    """A request without its messages (rebuilt from the chunk when sent), small enough to keep 10^6 in memory.

    `items` are the (audience, style) pairs it asks for: one for the single-pair layout (today's requests, whose
    keys an existing ledger still answers), several for the pairs layout (`prompts_multi.py`). `audience` and
    `style` are those of the first item.
    """

    key: str
    chunk_index: int
    chunk_id: str
    teacher_index: int
    audience: str
    style: str
    prompt_version: str
    input_tokens_est: int
    items: tuple[tuple[str, str], ...] = ()
    cacheable_tokens_est: int = 0  # the stable prefix (system prompt + schema) other requests share

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return self.items or ((self.audience, self.style),)

    @property
    def multi(self) -> bool:
        return len(self.items) > 1


def prompt_for(chunk: Chunk, teacher: TeacherConfig, audience: str, style: str, context: str = "none") -> Prompt:
    prompt = build_messages(chunk, audience, style, inline_schema=inline_schema(teacher))
    return with_context_rule(prompt, chunk) if context != "none" else prompt


def cache_key_for(request: PlannedRequest, kinds: tuple[str, ...] = ()) -> str:
    """OpenAI's `prompt_cache_key`: requests with the same key (and first ~256 tokens) go to the same machines, so
    the key names what they share. Pairs layout: the cacheable prefix is the system prompt and the calculation
    rules of the chunk's kinds, so one key per set of kinds; a key per chunk would send each chunk to machines that
    never saw that prefix. Single-pair layout: the requests of one chunk share system prompt and source, so one
    key per chunk."""
    if not request.multi:
        return f"slm-{request.chunk_id}"
    return f"slm-{request.prompt_version}-{'+'.join(kinds) or 'explain'}"


def shape_for(teacher: TeacherConfig, request: PlannedRequest, kinds: tuple[str, ...] = ()) -> RequestShape:
    """Schema and token limit of a request: `max_tokens` is per pair, so several pairs get that many times it.
    `kinds`: the calculation kinds of its prompt (`Prompt.kinds`), which name its cacheable prefix."""
    if not request.multi:
        return RequestShape(cache_key=cache_key_for(request))
    return RequestShape(
        schema=PAIRS_JSON_SCHEMA,
        schema_name=PAIRS_SCHEMA_NAME,
        max_tokens=teacher.max_tokens * len(request.items),
        cache_key=cache_key_for(request, kinds),
    )


def request_prompt(chunk: Chunk, teacher: TeacherConfig, request: PlannedRequest, cfg: DistillConfig) -> Prompt:
    """The messages of a planned request, rebuilt from its chunk exactly as they were when it was planned."""
    if not request.multi:
        return prompt_for(chunk, teacher, request.audience, request.style, cfg.context)
    return _pairs_prompt(chunk, teacher, request.items, cfg)


def _pairs_prompt(chunk: Chunk, teacher: TeacherConfig, items: tuple, cfg: DistillConfig) -> Prompt:
    prompt = build_pairs_messages(
        chunk,
        items,
        inline_schema=inline_schema(teacher),
        source_breakpoint=teacher.provider == "anthropic" and _groups_per_chunk(items_of(chunk, teacher, cfg), cfg) > 1,
    )
    return with_context_rule(prompt, chunk) if cfg.context != "none" else prompt


def items_of(chunk: Chunk, teacher: TeacherConfig, cfg: DistillConfig) -> list[tuple[str, str]]:
    """Every (audience, style) a teacher is asked for on this chunk, in the fixed order audience, style."""
    # the offline teacher computes only what its own calculator cases cover; a teacher LLM whatever the chunk's kinds ask
    offline = teacher.provider == "offline"
    can_calc = bool(offline_calculation_kinds(chunk) if offline else calculation_kinds(chunk))
    return [
        (audience, style)
        for audience in cfg.audiences
        for style in cfg.styles
        if not (style == "calculation" and not can_calc)
    ]


def _group_size(cfg: DistillConfig, n_items: int) -> int:
    return max(1, cfg.pairs_per_request or n_items)


def _groups_per_chunk(items: list[tuple[str, str]], cfg: DistillConfig) -> int:
    size = _group_size(cfg, len(items))
    return -(-len(items) // size) if items else 0


def _request(
    chunk: Chunk, chunk_index: int, teacher_index: int, teacher: TeacherConfig, items: tuple, cfg: DistillConfig
) -> PlannedRequest:
    from slm_datagen.distill.pricing import estimate_prompt_tokens

    if len(items) == 1:
        audience, style = items[0]
        prompt = prompt_for(chunk, teacher, audience, style, cfg.context)
        key = request_key(teacher, prompt.version, prompt.messages, request_params(teacher))
        tokens = estimate_prompt_tokens(prompt.messages)
        return PlannedRequest(key, chunk_index, chunk.id, teacher_index, audience, style, prompt.version, tokens)
    prompt = _pairs_prompt(chunk, teacher, items, cfg)
    params = {**request_params(teacher), "max_tokens": teacher.max_tokens * len(items)}
    key = request_key(teacher, prompt.version, prompt.messages, params)
    schema_tokens = len(json.dumps(PAIRS_JSON_SCHEMA, ensure_ascii=False)) // 4  # mostly ASCII: ~4 characters a token
    # the prefix other requests share: schema + system, and the calculation rules of these kinds when asked
    shared = [m for m in prompt.messages[:2] if m["role"] == "system" or m["content"] != prompt.messages[-2]["content"]]
    stable = estimate_prompt_tokens(shared) + schema_tokens
    tokens = estimate_prompt_tokens(prompt.messages) + schema_tokens
    audience, style = items[0]
    return PlannedRequest(
        key, chunk_index, chunk.id, teacher_index, audience, style, prompt.version, tokens, tuple(items), stable
    )


def _covered(
    chunk: Chunk,
    chunk_index: int,
    teacher_index: int,
    teacher: TeacherConfig,
    items: list,
    cfg: DistillConfig,
    answered,
) -> dict[tuple[str, str], PlannedRequest]:
    """Items an earlier run already asked under another grouping (one per request, all in one, or the configured
    size): their answered requests are reused, so changing `pairs_per_request` re-asks only what it must."""
    covered: dict[tuple[str, str], PlannedRequest] = {}
    for size in sorted({1, len(items), _group_size(cfg, len(items))}):
        for start in range(0, len(items), size):
            group = tuple(items[start : start + size])
            if any(item in covered for item in group):
                continue
            request = _request(chunk, chunk_index, teacher_index, teacher, group, cfg)
            if answered(request.key):
                covered.update({item: request for item in group})
    return covered


def plan_chunk(
    chunk: Chunk,
    chunk_index: int,
    cfg: DistillConfig,
    answered: Callable[[str], bool] | None = None,
    seed: int = 0,
) -> list[PlannedRequest]:
    """Requests for one chunk, in a fixed order: teacher, then its items (audience, style) in groups of
    `distill.pairs_per_request` (default: all of a chunk's items in one request). `answered(key)` (the ledger)
    lets items already answered under another grouping keep their answers; `seed` draws the offline teacher's
    calculation cases."""
    out: list[PlannedRequest] = []
    for teacher_index, teacher in enumerate(cfg.teachers):
        items = items_of(chunk, teacher, cfg)
        if teacher.provider == "offline":  # the offline teacher is pure and free: one "request" per item
            for audience, style in items:
                settings = (seed, cfg.offline.planted_error_rate) if style == "calculation" else ()
                key = offline_key(chunk, audience, style, teacher.model, settings)
                out.append(
                    PlannedRequest(key, chunk_index, chunk.id, teacher_index, audience, style, OFFLINE_VERSION, 0)
                )
            continue
        covered = _covered(chunk, chunk_index, teacher_index, teacher, items, cfg, answered) if answered else {}
        remaining = [item for item in items if item not in covered]
        size = _group_size(cfg, len(items))
        planned = list({r.key: r for r in covered.values()}.values())
        for start in range(0, len(remaining), size):
            planned.append(
                _request(chunk, chunk_index, teacher_index, teacher, tuple(remaining[start : start + size]), cfg)
            )
        out.extend(sorted(planned, key=lambda r: items.index(r.pairs[0])))
    return out


def iter_chunks(path: Path, limit: int | None = None) -> Iterator[Chunk]:
    """Stream Chunk records; a malformed row is an error naming file and line."""
    for index, row in enumerate(read_jsonl(path)):
        if limit is not None and index >= limit:
            return
        try:
            yield Chunk.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SlmError(
                f"{path}: row {index + 1}: not a Chunk ({where}: {first['msg']})",
                "rerun `slm prepare --force` to rewrite chunks.jsonl",
            ) from None
