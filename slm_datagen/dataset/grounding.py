"""Citation grounding: every article a pair cites must exist in the collected corpus, in the right version.

The corpus is the collect stage's documents.jsonl. Its statute articles are indexed by (law, article, branch), with
every version (시행일자) kept. The index also knows which laws it holds *in full*: a version of a law is whole when its
articles came from one whole-law response (not a JO= single-article request) and run from 제1조 to the last article
without a gap (law.go.kr lists a repealed article as "제N조 삭제", so a whole law has every number). The bundled
corpus is a sample of articles, so none of its laws is whole.

For each citation in the answer and in the pair's `citations` field (the outcome names are the card's counts):

* in the corpus                              -> checked against the version in force (below)        verified
* not in the corpus, but the source document itself cites it (a cross-reference in the article text, a ruling's
  관련법령, a decision's 참조조문)              -> grounded in the source; accepted unchecked           grounded_in_source
* article missing from a law held in full    -> citation_not_in_corpus, rejected ("소득세법 제999조") not_in_full_law
* article missing from a law collected only in part, or a law of the tax-law catalogue (or one that tax texts cite,
  or one a collected document names) that was not collected
                                             -> citation_unverified, held for review with the hint to collect the
                                                whole law                     unverified_partial_law / unverified_not_collected
* a law name known nowhere                   -> citation_unresolvable (rejected or flagged: build.unresolved_citations)
                                                                                                      unknown_law
* the article is 삭제 in the version in force on the source's date, or it was created ([본조신설 …]) after that
  date                                       -> citation_wrong_version                                wrong_version
  (an article merely missing from an older snapshot of a partly collected law is not evidence of anything: it is
  then checked against the oldest version the corpus has)
* a 항 the article's text does not have      -> citation_paragraph_missing                            paragraph_missing
A pair generated from a statute article must also cite that article (source_not_cited).

A law is held in full *on a date* when a whole version of it starts on or after that date: an article that existed
then is still listed in the later whole text (if only as 삭제). A source newer than every whole version may cite an
article added since, so there a missing article is only unverified.

The "source's date" is the 시행일자 of the statute the pair came from, or the decision date of a precedent/ruling;
without one, the latest version is used and no version finding is made.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from slm_datagen.collect.catalogue import in_catalogue
from slm_datagen.dataset.rules import Finding
from slm_datagen.taxlaw.citations import Citation, find_citations, format_citation, is_known_law, normalize_law_name
from slm_forest.records import Chunk, Document, QAPair

ArticleKey = tuple[str, int, int]  # (normalised law, article, branch or 0)

_CIRCLED_AT_LINE_START = re.compile(r"(?m)^[ \t]*([\u2460-\u2473\u3251-\u325f])")
_CIRCLED_ANYWHERE = re.compile(r"[\u2460-\u2473\u3251-\u325f]")


def _circled_number(ch: str) -> int:
    code = ord(ch)
    return code - 0x2460 + 1 if code <= 0x2473 else code - 0x3251 + 21


def paragraphs_of(text: str) -> set[int]:
    """The 항 numbers of an article's text (①, ②, … at line starts). An article with one 항 has no number: {1}."""
    marks = _CIRCLED_AT_LINE_START.findall(text) or _CIRCLED_ANYWHERE.findall(text)
    return {_circled_number(ch) for ch in marks} or {1}


_CREATED_RE = re.compile(r"본조\s*신설\s*(\d{4})\s*\.\s*(\d{1,2})\s*\.\s*(\d{1,2})")


def created_on(amendments: list[str]) -> str | None:
    """The date of a [본조신설 YYYY.M.D] tag (the whole article was added then), as YYYY-MM-DD."""
    for tag in amendments:
        match = _CREATED_RE.search(tag)
        if match:
            year, month, day = match.groups()
            return f"{year}-{int(month):02d}-{int(day):02d}"
    return None


@dataclass(frozen=True)
class ArticleVersion:
    doc_id: str
    effective_date: str | None  # YYYY-MM-DD
    deleted: bool
    paragraphs: frozenset[int]
    created: str | None = None  # YYYY-MM-DD of a [본조신설 …] tag: the article did not exist before


@dataclass
class StatuteIndex:
    """The statute articles of the corpus, every version of each."""

    articles: dict[ArticleKey, list[ArticleVersion]] = field(default_factory=dict)
    article_counts: dict[str, int] = field(default_factory=dict)  # law -> distinct articles collected
    whole_versions: dict[str, list[str]] = field(default_factory=dict)  # law -> 시행일자 of its versions held in full
    named_laws: set[str] = field(default_factory=set)  # laws the collected documents name (관련법령, 참조조문)

    @property
    def laws(self) -> set[str]:
        return set(self.article_counts)

    def held_in_full(self, law: str, on: str | None) -> bool:
        """Whether every article of `law` in force on `on` is in the corpus (see the module docstring)."""
        dates = self.whole_versions.get(law, [])
        return bool(dates) and (on is None or any(date >= on for date in dates))

    def known_law(self, law: str) -> bool:
        return law in self.named_laws or in_catalogue(law) or is_known_law(law)


def build_statute_index(documents: list[Document]) -> StatuteIndex:
    index = StatuteIndex()
    for doc in documents:
        if doc.kind != "statute_article" or not doc.law_name or doc.article_no is None:
            continue
        law = normalize_law_name(doc.law_name)
        key = (law, doc.article_no, doc.article_branch or 0)
        version = ArticleVersion(
            doc.id, doc.effective_date, doc.deleted, frozenset(paragraphs_of(doc.text)), created_on(doc.amendments)
        )
        index.articles.setdefault(key, []).append(version)
    for versions in index.articles.values():
        versions.sort(key=lambda v: v.effective_date or "")
    for law, _, _ in index.articles:
        index.article_counts[law] = index.article_counts.get(law, 0) + 1
    index.whole_versions = whole_law_versions(documents)
    index.named_laws = named_laws(documents)
    return index


_ARTICLE_REQUEST_RE = re.compile(r"[?&]JO=|_JO_")


def whole_law_versions(documents: list[Document]) -> dict[str, list[str]]:
    """law -> the 시행일자 of each version whose articles came from one whole-law response, 제1조 to the last."""
    numbers: dict[tuple[str, str, str], set[int]] = {}
    for doc in documents:
        if doc.kind == "statute_article" and doc.law_name and doc.article_no is not None:
            version = (normalize_law_name(doc.law_name), doc.effective_date or "", doc.source)
            numbers.setdefault(version, set()).add(doc.article_no)
    whole: dict[str, list[str]] = {}
    for (law, date, source), found in numbers.items():
        if date and not _ARTICLE_REQUEST_RE.search(source) and found == set(range(1, max(found) + 1)):
            whole.setdefault(law, []).append(date)
    return {law: sorted(dates) for law, dates in whole.items()}


def named_laws(documents: list[Document]) -> set[str]:
    """Laws that collected documents name in their 관련법령 / 참조조문 or parsed references: they exist."""
    names: set[str] = set()
    for doc in documents:
        names |= {normalize_law_name(ref.law) for ref in doc.references}
        for entry in doc.related_laws:
            names |= {normalize_law_name(c.law) for c in find_citations(entry, default_law=doc.law_name)}
    return names


def reference_date(pair: QAPair, documents: dict[str, Document], chunks: dict[str, Chunk]) -> str | None:
    """The date whose law the pair should follow: the source statute's 시행일자 or the decision's date."""
    doc = documents.get(pair.doc_id)
    if doc is not None:
        return doc.effective_date or doc.decision_date
    chunk = chunks.get(pair.chunk_id)
    return chunk.effective_date if chunk is not None else None


def source_article(pair: QAPair, documents: dict[str, Document], chunks: dict[str, Chunk]) -> ArticleKey | None:
    """(law, article, branch) of the statute article a pair was generated from; None for other sources."""
    if pair.kind != "statute_article":
        return None
    doc = documents.get(pair.doc_id)
    if doc is not None and doc.law_name and doc.article_no is not None:
        return normalize_law_name(doc.law_name), doc.article_no, doc.article_branch or 0
    chunk = chunks.get(pair.chunk_id)
    if chunk is not None and chunk.law_name and chunk.article_no is not None:
        return normalize_law_name(chunk.law_name), chunk.article_no, chunk.article_branch or 0
    parsed = find_citations(pair.source_citation)
    if parsed:
        return parsed[0].law, parsed[0].article, parsed[0].branch or 0
    return None


def pair_citations(pair: QAPair, default_law: str | None) -> list[Citation]:
    """Citations in the answer and in the `citations` field, without repeats (first occurrence kept)."""
    found = list(find_citations(pair.answer, default_law=default_law))
    for entry in pair.citations:
        found += find_citations(entry, default_law=default_law)
    seen: set[tuple] = set()
    unique = []
    for citation in found:
        key = (citation.law, citation.article, citation.branch, citation.paragraph, citation.item, citation.subitem)
        if key not in seen:
            seen.add(key)
            unique.append(citation)
    return unique


def source_cited_articles(pair: QAPair, documents: dict[str, Document], chunks: dict[str, Chunk]) -> set[ArticleKey]:
    """Articles the pair's source document cites itself: its text, 관련법령/참조조문 and parsed references."""
    doc = documents.get(pair.doc_id)
    chunk = chunks.get(pair.chunk_id)
    texts: list[str] = []
    default_law = article = branch = None
    if doc is not None:
        texts += [doc.text, doc.answer or "", doc.reasoning or "", doc.summary or "", *doc.related_laws]
        default_law, article, branch = doc.law_name, doc.article_no, doc.article_branch
    elif chunk is not None:
        texts += [chunk.text, chunk.answer or "", *chunk.related_laws]
        default_law, article, branch = chunk.law_name, chunk.article_no, chunk.article_branch
    keys: set[ArticleKey] = set()
    for text in texts:
        if text:
            for c in find_citations(text, default_law=default_law, default_article=article, default_branch=branch):
                keys.add((normalize_law_name(c.law), c.article, c.branch or 0))
    if doc is not None:
        keys |= {(normalize_law_name(r.law), r.article, r.branch or 0) for r in doc.references}
    return keys


def _applicable(versions: list[ArticleVersion], on: str | None) -> ArticleVersion | None:
    """The version in force on `on` (the last one starting on or before it); the latest when `on` is None."""
    if on is None:
        return versions[-1]
    chosen = None
    for version in versions:
        if version.effective_date is None or version.effective_date <= on:
            chosen = version
    return chosen


def classify_citation(
    citation: Citation,
    index: StatuteIndex,
    on: str | None,
    unresolved_action: str,
    source_cites: set[ArticleKey] | frozenset[ArticleKey] = frozenset(),
) -> tuple[str, Finding | None]:
    """(outcome, finding) for one citation; the outcomes are listed in the module docstring."""
    law = normalize_law_name(citation.law)
    label = format_citation(citation)
    key = (law, citation.article, citation.branch or 0)
    versions = index.articles.get(key)
    if not versions and key in source_cites:
        return "grounded_in_source", None  # quoted from the source document's own cross-references, not invented
    if not versions:
        return _missing_article(label, law, index, on, unresolved_action)
    version = _applicable(versions, on)
    if version is None:
        created = next((v.created for v in versions if v.created), None)
        if on is not None and created is not None and created > on:
            finding = Finding(
                "citation_wrong_version", f"{label}: the article was added on {created} (본조신설), after {on}"
            )
            return "wrong_version", finding
        version = versions[0]  # the corpus has no version that old: check against the oldest one it has
    if version.deleted:
        when = f" in the version in force on {on}" if on else ""
        finding = Finding("citation_wrong_version", f"{label}: the article is deleted (삭제){when} ({version.doc_id})")
        return "wrong_version", finding
    if citation.paragraph is not None and citation.paragraph not in version.paragraphs:
        have = ", ".join(f"제{n}항" for n in sorted(version.paragraphs))
        finding = Finding("citation_paragraph_missing", f"{label}: the article has {have} ({version.doc_id})")
        return "paragraph_missing", finding
    return "verified", None


def _missing_article(
    label: str, law: str, index: StatuteIndex, on: str | None, unresolved_action: str
) -> tuple[str, Finding]:
    hint = f"add {law} to collect (a whole-law source: collect.sources[].laws) so the citation can be checked"
    if law in index.laws and index.held_in_full(law, on):
        detail = f"{label}: {law} is collected in full and has no such article"
        return "not_in_full_law", Finding("citation_not_in_corpus", detail)
    if law in index.laws:
        detail = f"{label}: only {index.article_counts[law]} articles of {law} were collected, not this one; {hint}"
        return "unverified_partial_law", Finding("citation_unverified", detail, "review")
    if index.known_law(law):
        return "unverified_not_collected", Finding(
            "citation_unverified", f"{label}: {law} was not collected; {hint}", "review"
        )
    action = "reject" if unresolved_action == "reject" else "flag"
    detail = f"{label}: no law named {law} is collected, in the tax-law catalogue or named by a collected document"
    return "unknown_law", Finding("citation_unresolvable", detail, action)  # type: ignore[arg-type]


def check_citation(
    citation: Citation,
    index: StatuteIndex,
    on: str | None,
    unresolved_action: str,
    source_cites: set[ArticleKey] | frozenset[ArticleKey] = frozenset(),
) -> Finding | None:
    return classify_citation(citation, index, on, unresolved_action, source_cites)[1]


def check_grounding(
    pair: QAPair,
    index: StatuteIndex,
    documents: dict[str, Document],
    chunks: dict[str, Chunk],
    unresolved_action: str,
    tally: Counter[str] | None = None,
) -> list[Finding]:
    """The citation findings of one pair; `tally` (when given) counts each citation's outcome for the card."""
    source = source_article(pair, documents, chunks)
    default_law = source[0] if source else (normalize_law_name(pair.law_name) if pair.law_name else None)
    citations = pair_citations(pair, default_law)
    on = reference_date(pair, documents, chunks)
    cited_by_source = source_cited_articles(pair, documents, chunks)
    findings: list[Finding] = []
    for citation in citations:
        outcome, finding = classify_citation(citation, index, on, unresolved_action, cited_by_source)
        if tally is not None:
            tally[outcome] += 1
        if finding is not None:
            findings.append(finding)
    if source is not None:
        cited = {(normalize_law_name(c.law), c.article, c.branch or 0) for c in citations}
        if source not in cited:
            law, article, branch = source
            label = f"{law} 제{article}조" + (f"의{branch}" if branch else "")
            findings.append(Finding("source_not_cited", f"generated from {label} but does not cite it"))
    return findings
