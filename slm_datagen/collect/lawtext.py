"""Cleaning of law.go.kr text fields: what is markup goes, what is metadata moves out, the words stay.

law.go.kr text carries HTML (`<br/>`, `<img src=…flDownload.do…>` for tables), amendment tags
(`<개정 2010.12.27, 2011.7.25>`, `<신설 2013.1.1>`, `삭제 <2013.1.1>`, `[전문개정 2009.12.31]`, `[본조신설 …]`),
full-width and no-break spaces, and padding. A model trained on the tags learns to emit them, so they move to
`Document.amendments`; tables drawn as images cannot be read, so they become a visible "[표]" placeholder and the
count goes into `meta` (a reader then knows the article is incomplete).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

TABLE_PLACEHOLDER = "[표]"

_DATE = r"\d{4}\s*\.\s*\d{1,2}\s*\.\s*\d{1,2}\s*\.?"
# <개정 2010.12.27, 2011.7.25>, <신설 2013.1.1>, and the bare <2013.1.1> that follows "삭제".
_ANGLE_TAG = re.compile(
    r"<\s*(?P<kind>개정|신설|전문개정|본조신설|제목개정|타법개정|삭제)?\s*"
    rf"(?P<dates>{_DATE}(?:\s*,\s*{_DATE})*)\s*>"
)
# [전문개정 2009.12.31], [본조신설 2010.1.1], [종전 제5조는 제6조로 이동 <2010.1.1>], [제목개정 …], [시행일 …].
# Only these known openers: statute text itself uses square brackets ("세액[제37조제2항에 따른 …]").
_BRACKET_TAG = re.compile(
    r"\[\s*(?:전문개정|본조신설|제목개정|본조제목개정|시행일|종전|헌법불합치|단순위헌|한정위헌"
    r"|제\d+조(?:의\d+)?(?:에서|로)\s*이동)[^\[\]]*\]"
)
_BR = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_IMG = re.compile(r"<\s*img\b[^>]*>", re.IGNORECASE)
# Any remaining HTML element (<p>, </a>, <span class=…>); ASCII names only, so Korean tags are never touched here.
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_SPACES = re.compile(r"[ \t\u00a0\u3000\u2002\u2003\u2009\u200b\ufeff]+")
# Box-drawing tables (the text law.go.kr sends beside a table image) often arrive with their line breaks lost:
# "┐│ A : … ││ B : … │└". A row boundary is a closing border char directly followed by an opening one.
_BOX_CHARS = "┌┐└┘├┤┬┴┼─│"
_BOX_ROW_BREAK = re.compile(r"(?<=[│┐┤┘])(?=[│├└┌])")
_BOX_START = re.compile(r"(?=┌)")
_DELETED = re.compile(r"^제\s*\d+\s*조(?:\s*의\s*\d+)?(?:\s*\([^)]*\))?\s*삭제\s*$")


@dataclass
class CleanText:
    """Cleaned lines of one field, plus what was lifted out of them."""

    lines: list[str]
    amendments: list[str] = field(default_factory=list)
    tables: int = 0

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _squash(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def clean_field(raw: object) -> CleanText:
    """Clean one text field (a string, or the list / list of lists law.go.kr sometimes sends) into lines."""
    if raw is None:
        return CleanText([])
    if isinstance(raw, list):
        parts = [clean_field(item) for item in raw]
        return CleanText(
            [line for p in parts for line in p.lines],
            _unique([a for p in parts for a in p.amendments]),
            sum(p.tables for p in parts),
        )
    text = unicodedata.normalize("NFC", html.unescape(str(raw)))
    amendments: list[str] = []

    def lift_bracket(match: re.Match[str]) -> str:
        amendments.append(_squash(_ANGLE_TAG.sub(lambda m: m.group(0)[1:-1], match.group(0)[1:-1])))
        return ""

    def lift_angle(match: re.Match[str]) -> str:
        kind = match.group("kind")
        if kind is None:
            # A bare date tag belongs to the word before it: "삭제 <2013.1.1>".
            kind = "삭제" if match.string[: match.start()].rstrip().endswith("삭제") else ""
        amendments.append(_squash(f"{kind} {match.group('dates')}"))
        return ""

    text = _BRACKET_TAG.sub(lift_bracket, text)
    text = _ANGLE_TAG.sub(lift_angle, text)
    tables = len(_IMG.findall(text))
    text = _IMG.sub(f"\n{TABLE_PLACEHOLDER}\n", text)
    if "┌" in text or "│" in text:
        text = _BOX_START.sub("\n", _BOX_ROW_BREAK.sub("\n", text))
    text = _BR.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Table rows keep their inner spacing (it is the alignment); everything else is squashed.
    lines = [
        line.strip() if line.lstrip()[:1] in _BOX_CHARS and line.strip() else _squash(line) for line in text.split("\n")
    ]
    return CleanText([line for line in lines if line], _unique(amendments), tables)


def clean_inline(raw: object) -> str:
    """A field cleaned to one line (titles, names, numbers)."""
    return " ".join(clean_field(raw).lines)


def is_deleted_article(heading_line: str) -> bool:
    """'제5조 삭제' / '제5조(목적) 삭제' once the date tag is gone."""
    return bool(_DELETED.match(heading_line))


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out
