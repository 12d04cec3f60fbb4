"""참조조문 / 관련법령 strings -> the list as written (`related_laws`) and parsed `ArticleRef`s (`references`).

The strings come in a few shapes:
- precedents: "형의 실효 등에 관한 법률 제7조 제1항, 형법 제35조 / [2] 소득세법 제94조", with "[n]" issue markers,
  " / " and ", " separators, "구 상속세 및 증여세법(2016. 12. 20. 법률 제14388호로 개정되기 전의 것) 제3조의2";
- the 국세청 casebook: "국세기본법 제26조의2 【국세의 부과제척기간】 국세기본법 시행령 제12조의3 【…】";
- the seed's `related_laws` lists.
A citation without a law name ("같은 법 제3조", "제5조 제2항") takes the law of the citation before it.
"""

from __future__ import annotations

import re

from slm_datagen.taxlaw.citations import find_citations
from slm_forest.records import ArticleRef

_SECTION_TITLE = re.compile(r"【[^】]*】")
_ISSUE_MARK = re.compile(r"\[\d+\]")


def parse_references(text: str | None, default_law: str | None = None) -> list[ArticleRef]:
    """Every article citation in `text`, in order, without duplicates.

    The project's one citation parser (`slm_datagen.taxlaw.citations`) does the reading, so the references stored
    here are the ones the build stage later checks answers against.
    """
    if not text:
        return []
    refs: list[ArticleRef] = []
    for citation in find_citations(_SECTION_TITLE.sub(" ", text), default_law=default_law):
        ref = ArticleRef(
            law=citation.law,
            article=citation.article,
            branch=citation.branch,
            paragraph=citation.paragraph,
            item=citation.item,
            subitem=citation.subitem,
        )
        if ref not in refs:
            refs.append(ref)
    return refs


def split_related_laws(text: str | None) -> list[str]:
    """A 참조조문 / 관련법령 string -> its entries as written, without issue markers and section titles."""
    if not text:
        return []
    if "【" in text:
        # Casebook style: each entry ends with its 【title】.
        entries = re.findall(r"[^【】]+?【[^】]*】", text)
        rest = _SECTION_TITLE.sub("", text[sum(len(e) for e in entries) :])
        parts = [_SECTION_TITLE.sub("", e) for e in entries] + ([rest] if rest.strip() else [])
    else:
        parts = re.split(r"\s/\s|\n|(?=\[\d+\])", text)
    out = []
    for part in parts:
        part = re.sub(r"\s+", " ", _ISSUE_MARK.sub("", part)).strip(" ,;/")
        if part and part not in out:
            out.append(part)
    return out
