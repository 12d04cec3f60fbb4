"""Precedents saved as Markdown (legalize-kr/precedent-kr layout, as in ../shared/corpus/precedents):

    ---
    판례일련번호: '241591'
    사건번호: 2022두64143
    법원명: 대법원
    선고일자: 2024-09-12
    ---
    # 사건명
    ## 판시사항
    …
    ## 판결요지 / ## 참조조문 / ## 참조판례 / ## 판례내용

Front matter gives the metadata, each `##` section one field; then the same builder as the API's PrecService.
"""

from __future__ import annotations

import re

import yaml

from slm_datagen.collect.lawgo_parse import precedent_document
from slm_datagen.collect.problems import InputProblem
from slm_forest.records import Document

_SECTION = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)
_TITLE = re.compile(r"^#\s+(.+?)\s*$", re.MULTILINE)


def parse_precedent_markdown(text: str, *, source: str, where: str = "") -> Document:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise InputProblem("no front matter (the file must start with a '---' line)", "line 1")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise InputProblem("front matter is not closed by a '---' line", "line 1") from None
    try:
        front = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputProblem(
            f"front matter is not valid YAML ({getattr(exc, 'problem', exc)})",
            f"line {mark.line + 2}" if mark else "line 1",
        ) from None
    if not isinstance(front, dict):
        raise InputProblem("front matter is not a mapping", "line 2")
    body = "\n".join(lines[end + 1 :])
    fields = {str(k): v for k, v in front.items()}
    title = _TITLE.search(body)
    if title and not fields.get("사건명"):
        fields["사건명"] = title.group(1)
    matches = list(_SECTION.finditer(body))
    for match, following in zip(matches, [*matches[1:], None]):
        fields[match.group(1)] = body[match.end() : following.start() if following else len(body)].strip()
    return precedent_document(fields, source=source, where=where)
