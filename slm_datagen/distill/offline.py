"""The offline teacher: deterministic Korean Q&A built from the chunk's own text, with no network and no cost.

It never invents law. From a statute article it asks what the article provides and answers by restating the
article's 항/호/목 in the polite style, ending with "(근거: 소득세법 제12조)". From an interpretation or ruling it
turns the official 쟁점 into a question and the official 답변요지 into the answer, citing the 관련법령. From a
precedent it asks about the 판시사항 and answers with the 판결요지. The `layperson` variant is asked as the person
concerned would (offline_lay.py), its answer simplifies the legal phrasing, gives an example from the article's own
items and points to the tax office for a concrete case. Calculation pairs come from the calculator (offline_calc.py).
A pair shown with retrieved law (`distill.context`, distill/context.py) gets `offline_with_context`: the same answer,
led by the number and citation of the context article it rests on.

`offline_draft(chunk, audience, style, seed, planted_error_rate)` is a pure function returning the pair and its
meta; it returns None when the chunk has nothing to ask about (an empty or deleted article, a calculation on a
chunk whose tax the calculator does not cover). `offline_pair` is the same without the meta.
"""

from __future__ import annotations

import re
from typing import Any

from slm_datagen.dataset.conclusion import yes_no_lead
from slm_datagen.distill.korean import (
    particle,
    polite_from_nominal,
    polite_from_plain,
    question_from_issue,
    split_sentences,
    topic,
)
from slm_datagen.distill.offline_calc import calculation_pair, offline_calculation_kinds
from slm_datagen.distill.offline_lay import lay_ruling_question, lay_statute_question
from slm_datagen.distill.offline_source import (
    ArticleOutline,
    article_citation,
    article_title,
    basis_line,
    is_part,
    parse_article,
    plain_language,
    related_law_citations,
    sentences_polite,
    span_label,
)
from slm_datagen.distill.schema import CitationDraft, PairDraft
from slm_forest.records import Chunk

OFFLINE_MODEL = "offline-v1"
OFFLINE_VERSION = "offline@2"  # @2: calculation pairs, layperson questions that are not the expert one reworded


# ------------------------------------------------------------------------------------------------------ statutes
def _statute_expert(chunk: Chunk) -> PairDraft | None:
    outline = parse_article(chunk.text)
    if not outline.paragraphs:
        return None
    title = outline.title or article_title(chunk)
    citation = article_citation(chunk)
    span = span_label(outline.paragraphs) if is_part(chunk) else ""
    head = f"{citation}({title})" if title and title != citation else citation
    question = f"{head}{span}에서는 어떤 내용을 규정하고 있으며, 그 요건과 효과는 무엇인가요?"
    lines = [f"{topic(head + span)} 다음과 같이 규정하고 있습니다."]
    for paragraph in outline.paragraphs:
        label = f"제{paragraph.no}항: " if paragraph.no is not None else ""
        if paragraph.text:
            lines.append(f"- {label}{sentences_polite(paragraph.text)}")
        elif label:
            lines.append(f"- {label}")
        for item in paragraph.items:
            lines.append(f"  {item.no}. {sentences_polite(item.text)}")
            for sub_no, sub_text in item.subitems:
                lines.append(f"    {sub_no}. {sentences_polite(sub_text)}")
    if "대통령령" in chunk.text:
        lines.append("세부 기준 중 '대통령령으로 정하는' 부분은 같은 법 시행령에서 구체적으로 정합니다.")
    cite = CitationDraft(
        law=chunk.law_name or citation, article=citation.replace(chunk.law_name or "", "").strip() or citation
    )
    answer = "\n".join(lines) + f"\n\n(근거: {citation})"
    return PairDraft(question=question, answer=answer, audience="expert", citations=[cite])


def _statute_layperson(chunk: Chunk) -> PairDraft | None:
    outline = parse_article(chunk.text)
    if not outline.paragraphs:
        return None
    title = outline.title or article_title(chunk)
    citation = article_citation(chunk)
    law = chunk.law_name or citation
    span = span_label(outline.paragraphs) if is_part(chunk) else ""
    lines = [
        f"쉽게 말해, {citation}{particle(citation, '은', '는')} {title or '이 조문'}에 관한 규정으로, 핵심은 다음과 같습니다."
    ]
    example: str | None = None
    for paragraph in outline.paragraphs:
        if paragraph.text:
            lines.append(f"- {sentences_polite(plain_language(paragraph.text))}")
        shown = paragraph.items[:6]
        for item in shown:
            lines.append(f"  · {sentences_polite(plain_language(item.text))}")
            for _, sub_text in item.subitems[:4]:
                lines.append(f"    - {sentences_polite(plain_language(sub_text))}")
            if len(item.subitems) > 4:
                lines.append(f"    - 그 밖에 {len(item.subitems) - 4}개 세부 항목이 더 있습니다.")
            if example is None and not item.text.endswith("다."):
                example = plain_language(item.subitems[0][1] if item.subitems else item.text)
        if len(paragraph.items) > len(shown):
            lines.append(f"  · 그 밖에 {len(paragraph.items) - len(shown)}개 항목이 더 있습니다.")
    if example:
        example = re.sub(r"[:：].*$", "", example).strip().rstrip(".")
        if example and len(example) <= 160:
            lines.append(f"예를 들어 '{example}'{particle(example, '이', '가')} 이 규정의 항목에 해당합니다.")
    asked = example if example and len(example) <= 80 else None
    question = lay_statute_question(citation, title, span, asked)
    lines.append(
        "실제 적용 여부는 개별 사실관계에 따라 달라질 수 있으니, 구체적인 사안은 관할 세무서나 세무 전문가에게 확인하세요."
    )
    cite = CitationDraft(law=law, article=citation.replace(law, "").strip() or citation)
    answer = "\n".join(lines) + f"\n\n(근거: {citation})"
    return PairDraft(question=question, answer=answer, audience="layperson", citations=[cite])


# ----------------------------------------------------------------------------------------- rulings / precedents
_SECTION_RE = re.compile(
    r"^\s*(?:#+\s*)?(?:\[|【)?\s*(쟁점|질의요지|질의|판시사항|답변요지|회답|회신|판결요지|관련법령|참조조문)\s*(?:\]|】)?\s*[:：]?\s*",
    re.M,
)


def _sections(text: str) -> dict[str, str]:
    """'쟁점: …\n답변요지: …' (or markdown '## 판시사항') -> {'쟁점': …, '답변요지': …}."""
    found: dict[str, str] = {}
    matches = list(_SECTION_RE.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        found.setdefault(match.group(1), text[match.end() : end].strip())
    return found


def _issue_and_answer(chunk: Chunk) -> tuple[str, str] | None:
    sections = _sections(chunk.text)
    issue = (
        chunk.question
        or sections.get("쟁점")
        or sections.get("질의요지")
        or sections.get("질의")
        or sections.get("판시사항")
    )
    answer = (
        chunk.answer
        or sections.get("답변요지")
        or sections.get("회답")
        or sections.get("회신")
        or sections.get("판결요지")
    )
    if not issue or not answer:
        return None
    return re.sub(r"\s+", " ", issue).strip(), answer.strip()


def _answer_sentences(answer: str) -> tuple[str, str]:
    """The official answer in the polite style, and a footnote ('＊ 현행 10년 …') kept apart."""
    main, note = answer, ""
    parts = re.split(r"\s+[＊*※]\s*", answer, maxsplit=1)
    if len(parts) == 2 and parts[0].strip():
        main, note = parts[0], parts[1].strip()
    sentences = [s for s in re.split(r"(?<=[.다임음함])\s*\n+\s*|(?<=다\.)\s+", main.strip()) if s.strip()]
    polite = " ".join(polite_from_nominal(re.sub(r"\s+", " ", s)) for s in sentences)
    return polite, note


def _ruling(chunk: Chunk, audience: str) -> PairDraft | None:
    found = _issue_and_answer(chunk)
    if found is None:
        return None
    issue, official = found
    if "/" in issue and chunk.kind == "precedent":
        # Several 판시사항: ask about the one the court decided yes/no on (marked 소극/적극), else the first.
        issues = [part.strip() for part in issue.split("/") if part.strip()]
        decided = [part for part in issues if re.search(r"\((소극|적극)\)\s*$", part)]
        issue = (decided or issues)[-1 if decided else 0]
    verdict = re.search(r"\((소극|적극)\)\s*$", issue)
    question = question_from_issue(issue)
    polite, note = _answer_sentences(official)
    citations = related_law_citations(chunk.related_laws)
    if not citations:
        citations = related_law_citations([official])
    source = chunk.citation or chunk.title
    date = chunk.meta.get("회신일") or chunk.meta.get("reply_date") or chunk.meta.get("decision_date") or ""
    if verdict:  # the court's own 소극/적극 mark decides, never a guess from the wording
        lead = "아니요. " if verdict.group(1) == "소극" else "네. "
    else:
        # The lead is read from the official answer's conclusion, relative to what the question asks: "…과세되나요?"
        # answered by "…면제되는 것임" is 아니요; an answer that depends on the case or decides nothing gets no lead.
        lead = yes_no_lead(question, official) if chunk.kind != "precedent" else ""
    if chunk.kind == "precedent":
        origin = f"법원은 {source} 판결에서 이렇게 판단하였습니다."
    else:
        origin = f"국세청은 {source}{f'({date})' if date else ''}에서 이렇게 회신하였습니다."
    laws = ", ".join(c.label() for c in citations)
    basis = basis_line(citations, source)
    if audience == "expert":
        body = [f"{lead}{polite}"]
        if note:
            body.append(f"※ 참고: {note}")
        body.append(origin + (f" 관련 법령은 {laws}입니다." if laws else ""))
        return PairDraft(
            question=question, answer="\n\n".join(body) + f"\n\n{basis}", audience="expert", citations=citations
        )
    plain = plain_language(polite)
    lay_question = lay_ruling_question(chunk, question)
    verdict_word = lead.strip(" .")
    body = [f"결론부터 말씀드리면 {verdict_word}. {plain}" if verdict_word else f"결론부터 말씀드리면, {plain}"]
    if note:
        body.append(f"참고: {note}")
    kind = "판례" if chunk.kind == "precedent" else "국세청 해석"
    body.append(
        f"이 내용은 {kind}({source})에 따른 것{('이며, 관련 규정은 ' + laws + '입니다') if laws else '입니다'}. "
        "다만 구체적인 사실관계가 다르면 결론이 달라질 수 있으니, 실제 신고 전에는 관할 세무서나 세무 전문가와 상담하세요."
    )
    return PairDraft(
        question=lay_question, answer="\n\n".join(body) + f"\n\n{basis}", audience="layperson", citations=citations
    )


def _precedent_fallback(chunk: Chunk, audience: str) -> PairDraft | None:
    """A precedent chunk without 판시사항/판결요지 (a later piece of the 판례내용): ask what the court held there."""
    text = re.sub(r"\s+", " ", chunk.text).strip()
    sentences = [s for s in split_sentences(text) if s.endswith("다.")]
    if not sentences:
        return None
    held = " ".join(polite_from_plain(s) for s in sentences[:3])
    citations = related_law_citations(chunk.related_laws)
    source = chunk.citation or chunk.title
    if audience == "expert":
        question = f"{source} 판결에서 법원은 이 부분에 대해 어떻게 판단했나요?"
        answer = f"{source} 판결은 다음과 같이 판단하였습니다. {held}"
    else:
        question = f"{source} 판결의 이 부분을 쉽게 설명해 주세요."
        answer = f"쉽게 말해, 법원은 이렇게 보았습니다. {plain_language(held)}"
    return PairDraft(
        question=question, answer=f"{answer}\n\n{basis_line(citations, source)}", audience=audience, citations=citations
    )  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------- entry
def offline_draft(
    chunk: Chunk, audience: str, style: str = "explain", seed: int = 0, planted_error_rate: float = 0.0
) -> tuple[PairDraft, dict[str, Any]] | None:
    """One grounded Q&A pair for `chunk` and the meta to record with it, or None when the offline teacher has nothing
    truthful to say. Calculation pairs (offline_calc.py) depend on `seed`; explain pairs only on the chunk."""
    if style == "calculation":
        return calculation_pair(chunk, audience, seed, planted_error_rate)
    if style != "explain":
        return None
    if chunk.kind == "statute_article":
        pair = _statute_expert(chunk) if audience == "expert" else _statute_layperson(chunk)
    else:
        pair = _ruling(chunk, audience)
        if pair is None and chunk.kind == "precedent":
            pair = _precedent_fallback(chunk, audience)
    return (pair, {}) if pair is not None else None


def offline_with_context(draft: PairDraft, chunk: Chunk, gold: int) -> PairDraft:
    """The same pair for a question shown with retrieved law (distill.context): the answer first names the context
    article it rests on, by its number in the prompt, then answers as without context. A ruling's lead also names
    the provisions it applies (its 관련법령), which the context shows under the ruling's text."""
    if chunk.kind == "statute_article":
        lead = f"참고 법령 [{gold}] {article_citation(chunk)}에 근거해 답변드립니다."
    else:
        laws = ", ".join(c.label() for c in draft.citations[:3])
        source = chunk.citation or chunk.title
        lead = f"참고 자료 [{gold}] {source}{f'(관련 법령: {laws})' if laws else ''}에 근거해 답변드립니다."
    return draft.model_copy(update={"answer": f"{lead}\n{draft.answer}"})


def offline_pair(
    chunk: Chunk, audience: str, style: str = "explain", seed: int = 0, planted_error_rate: float = 0.0
) -> PairDraft | None:
    found = offline_draft(chunk, audience, style, seed, planted_error_rate)
    return found[0] if found is not None else None


__all__ = [
    "OFFLINE_MODEL",
    "OFFLINE_VERSION",
    "ArticleOutline",
    "article_title",
    "offline_calculation_kinds",
    "offline_draft",
    "offline_pair",
    "offline_with_context",
    "parse_article",
    "plain_language",
    "related_law_citations",
]
