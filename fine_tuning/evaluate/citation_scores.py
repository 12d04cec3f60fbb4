"""Citation correctness of a generated answer: does it cite the articles the reference cites, and do they exist?

"Answers citing an article" rewards a model that always prints the same citation (a base model that learned
"(근거: 국세징수법 제12조)" scores 1.0). What a reader needs instead:

- **precision / recall / F1 by 법령 + 조 + 항** against the reference provisions: the articles the reference answer
  cites plus the pair's own `meta.citations` (the source article or the interpretation's 관련법령). A cited provision
  matches a reference provision with the same law, 조 and 가지번호 when their 항 agree or either names no 항 (an
  article-level citation covers all its paragraphs; "제22조의2 제1항" is right for a reference to "제22조의2").
  Micro-averaged over answers: precision = matched cited provisions / cited provisions, recall = matched reference
  provisions / reference provisions, F1 from those two.
- **hallucinated citations**, their own rate: cited provisions whose article the corpus does not know — neither a
  statute article in `collect/documents.jsonl` nor an article cited by any corpus document — or whose 항 is past the
  last ①②… of an article whose text the corpus holds.

Citations come from `slm_datagen.taxlaw.citations.find_citations`; one whose law cannot be resolved is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ArticleKey = tuple[str, int, int]  # (normalised law name, 조, 가지번호 or 0)
Provision = tuple[str, int, int, int | None]  # ArticleKey + 항 (None: the whole article)

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


def provisions(text: str) -> set[Provision]:
    """The provisions a text cites, at 항 granularity (호/목 are folded into their 항)."""
    from slm_datagen.taxlaw.citations import find_citations, normalize_law_name

    found: set[Provision] = set()
    for citation in find_citations(text, default_law=None):
        if citation.law:
            found.add((normalize_law_name(citation.law), citation.article, citation.branch or 0, citation.paragraph))
    return found


def provision_label(p: Provision) -> str:
    law, article, branch, paragraph = p
    return f"{law} 제{article}조" + (f"의{branch}" if branch else "") + (f" 제{paragraph}항" if paragraph else "")


def matches(a: Provision, b: Provision) -> bool:
    return a[:3] == b[:3] and (a[3] is None or b[3] is None or a[3] == b[3])


@dataclass(frozen=True)
class CorpusIndex:
    """The articles the run's corpus knows: article -> its paragraph count (None: text not in the corpus, or no ①)."""

    articles: dict[ArticleKey, int | None]

    @classmethod
    def empty(cls) -> CorpusIndex:
        return cls({})

    @classmethod
    def from_documents(cls, path: Path) -> CorpusIndex:
        from slm_datagen.taxlaw.citations import normalize_law_name
        from slm_forest.files import read_jsonl

        known: dict[ArticleKey, int | None] = {}
        for row in read_jsonl(path):
            text = str(row.get("text") or "")
            if row.get("kind") == "statute_article" and row.get("law_name") and row.get("article_no") is not None:
                key = (normalize_law_name(row["law_name"]), int(row["article_no"]), int(row.get("article_branch") or 0))
                known[key] = paragraph_count(text)
            for p in provisions(text):
                known.setdefault(p[:3], None)
        return cls(known)

    def hallucinated(self, p: Provision) -> bool:
        if p[:3] not in self.articles:
            return True
        count = self.articles[p[:3]]
        return bool(p[3] and count and p[3] > count)


def paragraph_count(article_text: str) -> int | None:
    """The last circled paragraph number (①…⑳) in an article's text; None when it has no numbered 항."""
    marks = [_CIRCLED.index(ch) + 1 for ch in article_text if ch in _CIRCLED]
    return max(marks) if marks else None


@dataclass(frozen=True)
class CitationScore:
    cited: tuple[str, ...]  # labels of the provisions the answer cites
    reference: tuple[str, ...]  # labels of the reference provisions
    matched_cited: int  # cited provisions that match a reference provision
    matched_reference: int  # reference provisions matched by a cited one
    hallucinated: tuple[str, ...]  # cited provisions the corpus does not know

    def as_dict(self) -> dict[str, Any]:
        return {
            "cited": list(self.cited),
            "reference": list(self.reference),
            "matched_cited": self.matched_cited,
            "matched_reference": self.matched_reference,
            "hallucinated": list(self.hallucinated),
        }


def reference_provisions(reference_answer: str, reference_citations: Iterable[str]) -> set[Provision]:
    found = provisions(reference_answer)
    for text in reference_citations:
        found |= provisions(text)
    # An article-level reference next to a paragraph-level one of the same article adds nothing to match against.
    return {p for p in found if p[3] is not None or not any(q[:3] == p[:3] and q[3] is not None for q in found)}


def score_citations(
    answer: str, reference_answer: str, reference_citations: Iterable[str], corpus: CorpusIndex
) -> CitationScore:
    cited = provisions(answer)
    reference = reference_provisions(reference_answer, reference_citations)
    return CitationScore(
        cited=tuple(sorted(provision_label(p) for p in cited)),
        reference=tuple(sorted(provision_label(p) for p in reference)),
        matched_cited=sum(1 for c in cited if any(matches(c, r) for r in reference)),
        matched_reference=sum(1 for r in reference if any(matches(c, r) for c in cited)),
        hallucinated=tuple(sorted(provision_label(p) for p in cited if corpus.hallucinated(p))),
    )
