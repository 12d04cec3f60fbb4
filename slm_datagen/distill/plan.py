"""What to ask: one request per (chunk, teacher, audience, style), each with its content-derived ledger key.

The key is the sha256 of exactly what would be sent: provider, model, prompt version, messages and the parameters
that change the reply (temperature, max_tokens, reply format). So an amended article (new text) gets new keys and
is asked again, an unchanged one keeps its keys and its cached pairs, and editing a template (new version) re-asks
only the requests that used it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from slm_datagen.distill.offline import OFFLINE_VERSION, offline_calculation_kinds
from slm_datagen.distill.prompts import Prompt, build_messages, calculation_kinds
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
    """A request without its messages (rebuilt from the chunk when sent), small enough to keep 10^6 in memory."""

    key: str
    chunk_index: int
    chunk_id: str
    teacher_index: int
    audience: str
    style: str
    prompt_version: str
    input_tokens_est: int


def prompt_for(chunk: Chunk, teacher: TeacherConfig, audience: str, style: str) -> Prompt:
    return build_messages(chunk, audience, style, inline_schema=inline_schema(teacher))


def plan_chunk(chunk: Chunk, chunk_index: int, cfg: DistillConfig, seed: int = 0) -> list[PlannedRequest]:
    """Requests for one chunk, in a fixed order: teacher, audience, style. `seed` draws the offline calculation cases."""
    from slm_datagen.distill.pricing import estimate_prompt_tokens

    out: list[PlannedRequest] = []
    has_calc = bool(calculation_kinds(chunk))
    offline_calc = bool(offline_calculation_kinds(chunk))
    calc_settings = (seed, cfg.offline.planted_error_rate)
    for teacher_index, teacher in enumerate(cfg.teachers):
        for audience in cfg.audiences:
            for style in cfg.styles:
                if style == "calculation" and not (offline_calc if teacher.provider == "offline" else has_calc):
                    continue  # nothing to compute from this chunk (the offline teacher: only what it can compute)
                if teacher.provider == "offline":
                    settings = calc_settings if style == "calculation" else ()
                    key = offline_key(chunk, audience, style, teacher.model, settings)
                    out.append(
                        PlannedRequest(key, chunk_index, chunk.id, teacher_index, audience, style, OFFLINE_VERSION, 0)
                    )
                    continue
                prompt = prompt_for(chunk, teacher, audience, style)
                key = request_key(teacher, prompt.version, prompt.messages, request_params(teacher))
                tokens = estimate_prompt_tokens(prompt.messages)
                out.append(
                    PlannedRequest(key, chunk_index, chunk.id, teacher_index, audience, style, prompt.version, tokens)
                )
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
