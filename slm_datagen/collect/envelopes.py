"""law.go.kr's HTTP-200 error bodies, recognised and turned into the API's own message.

The API answers many failures with status 200 (../shared/corpus/lawgo/observed_error_envelopes.json):
- `{"result": "사용자 정보 검증에 실패하였습니다.", "msg": "…IP주소 및 도메인주소를 등록해 주세요."}` (or the XML
  `<Response><result>…</result><msg>…</msg></Response>`): bad OC, unregistered IP, or a missing Referer;
- `{"result": "필수입력요소 검증에 실패하였습니다."}`: OC or a required parameter empty;
- `{"Law": "일치하는 법령이 없습니다. …"}` / `<Law>일치하는 판례가 없습니다…</Law>`: no such document;
- `{}` or 0 bytes: eflawjosub and some targets for an unknown id, or a transient hiccup;
- an HTML page: maintenance, an anti-bot JavaScript page from cloud IPs, or "미신청된 목록/본문" when the OC has not
  applied for that dataset.
"""

from __future__ import annotations

import re
from typing import Any

_HTML = re.compile(r"^\s*(?:<!DOCTYPE\s+html|<html\b|<head\b|<body\b|<script\b)", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_HTML_PHRASES = ("미신청된 목록/본문", "사용자 정보 검증에 실패", "필수입력요소 검증에 실패", "일치하는")

# Kinds, so callers can decide what to retry: a transient page is retried, an auth failure is not.
AUTH = "auth"
NOT_FOUND = "not_found"
EMPTY = "empty"
HTML = "html"
NOT_APPROVED = "not_approved"


def is_html(text: str) -> bool:
    return bool(_HTML.match(text))


def html_error(text: str) -> tuple[str, str]:
    """(kind, message) for an HTML page where data was expected."""
    plain = re.sub(r"\s+", " ", _TAGS.sub(" ", text))
    for phrase in _HTML_PHRASES:
        index = plain.find(phrase)
        if index >= 0:
            snippet = plain[max(0, index - 20) : index + 80].strip()
            kind = NOT_APPROVED if phrase.startswith("미신청") else AUTH if "검증" in phrase else NOT_FOUND
            return kind, f"HTML page: {snippet}"
    if "location.assign" in text or "location.replace" in text:
        return HTML, "HTML page with a JavaScript redirect (law.go.kr's anti-bot page; seen from cloud IPs)"
    title = _TITLE.search(text)
    label = re.sub(r"\s+", " ", title.group(1)).strip() if title else plain[:80].strip()
    return HTML, f"HTML page instead of data ({label or 'no title'})"


def envelope_error(parsed: Any) -> tuple[str, str] | None:
    """(kind, the API's message) when a decoded JSON/XML body is an error envelope; None for data."""
    if parsed == {} or parsed is None:
        return EMPTY, "empty response body {}"
    if not isinstance(parsed, dict):
        return None
    root = parsed.get("Response", parsed)
    if isinstance(root, dict) and "result" in root and len(parsed) <= 2:
        result = str(root.get("result") or "").strip()
        message = str(root.get("msg") or "").strip()
        if "success" not in result.lower():
            kind = AUTH if "검증" in result else NOT_FOUND
            return kind, " ".join(p for p in (result, message) if p)
    law = parsed.get("Law")
    if len(parsed) == 1 and isinstance(law, str):
        return NOT_FOUND, re.sub(r"\s+", " ", law).strip()
    if len(parsed) == 1:
        (inner,) = parsed.values()
        if inner == {} or inner == "" or inner is None:
            return EMPTY, f"empty {next(iter(parsed))} object"
    return None
