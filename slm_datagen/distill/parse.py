"""Reply checking and parsing: text from any teacher -> a `PairDraft`, or a `ReplyProblem` with a reason. Pure.

Reasons (the `DistillFailure.reason` vocabulary): `truncated` (finish_reason == "length" / stop_reason ==
"max_tokens"), `empty`, `refused`, `schema` (no JSON object, invalid JSON, missing or wrong fields, no calculation
where one was asked for, or a calculation whose inputs `slm build` could not recompute: see `calcspec.py`),
`not_korean` (question or answer mostly not Hangul). Each problem gets one repair retry
(`prompts.repair_messages`), then becomes a failure row.

JSON is taken from the reply leniently, as local servers (vLLM, Ollama) often wrap it: code fences, text around
the object, trailing commas and smart quotes around keys are repaired before giving up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from slm_datagen.distill.calcspec import payload_problem
from slm_datagen.distill.schema import PairDraft
from slm_datagen.hangul import hangul_share

MIN_HANGUL_SHARE = 0.5


@dataclass(frozen=True)
class ReplyProblem:
    reason: str
    detail: str = ""


def _balanced_object(text: str) -> str | None:
    """The first top-level {...} in `text`, respecting strings."""
    start = text.find("{")
    while start != -1:
        depth, in_string, escaped = 0, False, False
        for index in range(start, len(text)):
            ch = text[index]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start : index + 1]
        start = text.find("{", start + 1)
    return None


def _repair_json(candidate: str) -> str:
    candidate = re.sub(r",\s*([}\]])", r"\1", candidate)  # trailing commas
    candidate = re.sub(r"[“”](\w+)[“”]\s*:", r'"\1":', candidate)  # smart quotes around keys
    return candidate


def extract_json(text: str, *, keep_pairs: bool = False) -> tuple[dict[str, Any] | None, str]:
    """(object, "") or (None, why). Accepts fenced blocks and surrounding prose.

    A single-pair reply wrapped as {"pairs": [pair]} is unwrapped unless `keep_pairs` (several-pairs replies)."""
    stripped = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.S)
    if fenced:
        stripped = fenced.group(1).strip()
    candidates = [stripped]
    inner = _balanced_object(stripped)
    if inner and inner != stripped:
        candidates.append(inner)
    last_error = "no JSON object in the reply"
    for candidate in candidates:
        for attempt in (candidate, _repair_json(candidate)):
            try:
                value = json.loads(attempt)
            except json.JSONDecodeError as exc:
                last_error = f"invalid JSON: {exc.msg} at column {exc.colno}"
                continue
            if isinstance(value, dict):
                if not keep_pairs and isinstance(value.get("pairs"), list) and value["pairs"]:
                    value = value["pairs"][0]  # some models wrap a single pair
                if isinstance(value, dict):
                    return value, ""
            last_error = f"expected a JSON object, got {type(value).__name__}"
    return None, last_error


def _normalise(data: dict[str, Any], audience: str, style: str) -> dict[str, Any]:
    out = dict(data)
    # The requested audience is ours to record; a teacher echoing another value is not worth a retry.
    out["audience"] = audience
    citations = out.get("citations")
    if citations is None:
        out["citations"] = []
    elif isinstance(citations, list):
        fixed = []
        for item in citations:
            if isinstance(item, str):
                match = re.match(r"^\s*(.+?)\s+(제\s*\d+\s*조.*)$", item)
                fixed.append(
                    {"law": match.group(1), "article": match.group(2)} if match else {"law": item, "article": ""}
                )
            else:
                fixed.append(item)
        out["citations"] = [c for c in fixed if isinstance(c, dict) and str(c.get("law", "")).strip()]
        for c in out["citations"]:
            if not str(c.get("article", "")).strip():
                c["article"] = "-"
    if style != "calculation":
        out["calculation"] = None
    elif isinstance(out.get("calculation"), dict):
        calc = dict(out["calculation"])
        if isinstance(calc.get("inputs"), dict):  # {"name": value} is a fine way to say the same thing
            calc["inputs"] = [{"name": k, "value": v} for k, v in calc["inputs"].items()]
        out["calculation"] = calc
    return out


def parse_reply(
    text: str | None,
    *,
    audience: str,
    style: str = "explain",
    truncated: bool = False,
    refusal: str | None = None,
    allowed_kinds: tuple[str, ...] = (),
) -> PairDraft | ReplyProblem:
    """Check one reply. `truncated` is the provider's own signal (finish_reason/stop_reason)."""
    if refusal:
        return ReplyProblem("refused", refusal[:300])
    if truncated:
        return ReplyProblem("truncated", f"reply cut at the token limit after {len(text or '')} characters")
    if text is None or not text.strip():
        return ReplyProblem("empty", "the reply had no text")
    data, why = extract_json(text)
    if data is None:
        # A reply that is plain prose in another language is a language problem, not a format one.
        if "{" not in text and hangul_share(text) < MIN_HANGUL_SHARE and len(text.strip()) > 20:
            return ReplyProblem("not_korean", f"Hangul share {hangul_share(text):.2f}; {why}")
        return ReplyProblem("schema", why)
    return check_pair(data, audience=audience, style=style, allowed_kinds=allowed_kinds)


def check_pair(
    data: dict[str, Any], *, audience: str, style: str = "explain", allowed_kinds: tuple[str, ...] = ()
) -> PairDraft | ReplyProblem:
    """One pair's JSON object -> a PairDraft, or the problem that makes it unusable."""
    try:
        draft = PairDraft.model_validate(_normalise(data, audience, style))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        return ReplyProblem("schema", f"{where}: {first['msg']}")
    if not draft.question.strip() or not draft.answer.strip():
        return ReplyProblem("empty", "question or answer is blank")
    for field_name in ("question", "answer"):
        share = hangul_share(getattr(draft, field_name))
        if share < MIN_HANGUL_SHARE:
            return ReplyProblem("not_korean", f"{field_name}: Hangul share {share:.2f}")
    if style == "calculation":
        if draft.calculation is None:
            return ReplyProblem("schema", "calculation: required for a calculation question")
        if allowed_kinds and draft.calculation.kind not in allowed_kinds:
            return ReplyProblem(
                "schema", f"calculation.kind: {draft.calculation.kind} is not one of {', '.join(allowed_kinds)}"
            )
        # A payload the checker cannot read would only be flagged (or dropped) at build time: ask for a repair now,
        # naming the accepted inputs. Wrong arithmetic is not judged here; `slm build` rejects it with the details.
        problem = payload_problem(draft.calculation.to_record().model_dump(mode="json"))
        if problem:
            return ReplyProblem("schema", problem)
    return draft


# ------------------------------------------------------------------------------------ several pairs per request
def _pair_objects(text: str) -> tuple[list[Any] | None, str]:
    """The items of the reply's `pairs` array; from a reply cut off mid-array, the items that are complete."""
    data, why = extract_json(text, keep_pairs=True)
    if isinstance(data, dict) and isinstance(data.get("pairs"), list):
        return data["pairs"], ""
    if isinstance(data, dict) and "question" in data:
        return [data], ""  # one bare pair
    if data is not None:
        return None, "no pairs array in the reply"
    start = text.find("[", text.find('"pairs"') + 1) if '"pairs"' in text else text.find("[")
    if start == -1:
        return None, why
    found: list[Any] = []
    rest = text[start + 1 :]
    while True:
        obj = _balanced_object(rest)
        if obj is None:
            break
        try:
            found.append(json.loads(_repair_json(obj)))
        except json.JSONDecodeError:
            pass
        rest = rest[rest.find(obj) + len(obj) :]
    return (found or None), why


def parse_pairs(
    text: str | None,
    items: list[tuple[str, str, str]],
    *,
    truncated: bool = False,
    refusal: str | None = None,
    allowed_kinds: tuple[str, ...] = (),
) -> list[PairDraft | ReplyProblem]:
    """Check a several-pairs reply: one verdict per asked item (id, audience, style), each judged on its own.

    Items are matched by id, then, for objects without a known id, by position. A reply cut off at the token limit
    keeps its complete pairs; the missing ones are `truncated`. One bad pair never discards the others.
    """
    if refusal:
        return [ReplyProblem("refused", refusal[:300]) for _ in items]
    if (text is None or not text.strip()) and truncated:
        return [ReplyProblem("truncated", "reply cut at the token limit before any pair") for _ in items]
    if text is None or not text.strip():
        return [ReplyProblem("empty", "the reply had no text") for _ in items]
    objects, why = _pair_objects(text)
    if objects is None:
        if truncated:
            return [ReplyProblem("truncated", f"reply cut at the token limit after {len(text)} characters")] * len(
                items
            )
        if "{" not in text and hangul_share(text) < MIN_HANGUL_SHARE and len(text.strip()) > 20:
            return [ReplyProblem("not_korean", f"Hangul share {hangul_share(text):.2f}; {why}")] * len(items)
        return [ReplyProblem("schema", why) for _ in items]
    by_id: dict[str, Any] = {}
    loose: list[Any] = []
    wanted = {pid for pid, _, _ in items}
    for obj in objects:
        pid = str(obj.get("id", "")).strip() if isinstance(obj, dict) else ""
        if pid in wanted and pid not in by_id:
            by_id[pid] = obj
        else:
            loose.append(obj)
    out: list[PairDraft | ReplyProblem] = []
    for pid, audience, style in items:
        obj = by_id.get(pid)
        if obj is None and loose:
            obj = loose.pop(0)
        if obj is None:
            reason = "truncated" if truncated else "schema"
            out.append(ReplyProblem(reason, f"pair {pid} is missing from the reply"))
        elif not isinstance(obj, dict):
            out.append(ReplyProblem("schema", f"pair {pid}: expected a JSON object, got {type(obj).__name__}"))
        else:
            data = {k: v for k, v in obj.items() if k != "id"}
            out.append(check_pair(data, audience=audience, style=style, allowed_kinds=allowed_kinds))
    return out
