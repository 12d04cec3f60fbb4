"""Typed records that flow between stages, each written as one JSONL line (UTF-8, NFC text).

collect  -> Document  (documents.jsonl)
prepare  -> Chunk     (chunks.jsonl)
distill  -> QAPair    (qa_pairs.jsonl; failures go to failures.jsonl as DistillFailure)
build    -> SFTExample (train/val/test.jsonl; rejects go to rejected.jsonl as RejectedPair)

IDs are content-derived (see `content_id`), so an amended article gets a new id instead of overwriting the old one,
and re-running a stage on the same input gives the same ids.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DocumentKind = Literal["statute_article", "precedent", "interpretation", "ruling"]
Audience = Literal["expert", "layperson"]
QAStyle = Literal["explain", "calculation"]


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def content_id(prefix: str, *parts: object) -> str:
    """A stable id from content: `prefix-<16 hex>`; the same parts always give the same id."""
    digest = hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8"))
    return f"{prefix}-{digest.hexdigest()[:16]}"


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArticleRef(Record):
    """A reference to a statute provision: 소득세법 제12조의2 제3항 제1호 가목."""

    law: str
    article: int
    branch: int | None = None  # 가지번호: 제12조의2 -> 2
    paragraph: int | None = None  # 항
    item: int | None = None  # 호
    subitem: str | None = None  # 목 (가, 나, ...)
    former: bool = False  # 구법: cites the text before an amendment ("구 소득세법(…) 제3조", "구법 제41조")

    def label(self) -> str:
        out = f"{self.law} 제{self.article}조" + (f"의{self.branch}" if self.branch else "")
        if self.paragraph:
            out += f" 제{self.paragraph}항"
        if self.item:
            out += f" 제{self.item}호"
        if self.subitem:
            out += f" {self.subitem}목"
        return out


class Document(Record):
    """One source unit: a statute article, a court decision, or an interpretation/ruling.

    Fields not relevant to a kind stay None/empty. `text` is the full cleaned text with its structure
    (항/호/목 on their own lines); amendment tags such as <개정 2020.12.29> are moved to `amendments`.
    """

    id: str
    kind: DocumentKind
    title: str
    text: str
    source: str  # where it came from: "bundled:<file>", "lawgo:eflaw?MST=..", "dump:<path>"
    # statutes
    law_name: str | None = None  # 법령명 (한글)
    law_id: str | None = None  # 법령ID (stable per law)
    mst: str | None = None  # 법령일련번호 (one per version)
    effective_date: str | None = None  # 시행일자 as YYYY-MM-DD
    promulgation_date: str | None = None  # 공포일자 as YYYY-MM-DD
    article_no: int | None = None  # 조문번호
    article_branch: int | None = None  # 조문가지번호 (제N조의M -> M)
    article_title: str | None = None  # 조문제목
    headings: list[str] = Field(default_factory=list)  # 편/장/절/관 headings above the article (전문 rows)
    amendments: list[str] = Field(default_factory=list)  # <개정 …>, <신설 …>, [전문개정 …] tags, kept as metadata
    deleted: bool = False  # "삭제" articles
    # precedents
    case_no: str | None = None  # 사건번호
    court: str | None = None  # 법원명
    decision_date: str | None = None  # 선고일자 as YYYY-MM-DD
    holdings: str | None = None  # 판시사항
    summary: str | None = None  # 판결요지
    # interpretations / rulings (국세청 질의회신, 법령해석례)
    doc_no: str | None = None  # 문서번호 / 안건번호
    question: str | None = None  # 쟁점 / 질의요지
    answer: str | None = None  # 답변요지 / 회답
    reasoning: str | None = None  # 이유
    field_of_law: str | None = None  # 분야 (국기, 소득, 법인, 부가 …)
    # shared
    related_laws: list[str] = Field(default_factory=list)  # 관련법령 / 참조조문 as written
    references: list[ArticleRef] = Field(default_factory=list)  # parsed article references
    meta: dict[str, Any] = Field(default_factory=dict)

    def citation(self) -> str:
        """How an answer should cite this document: '소득세법 제12조' or the case/document number."""
        if self.kind == "statute_article" and self.law_name and self.article_no is not None:
            branch = f"의{self.article_branch}" if self.article_branch else ""
            return f"{self.law_name} 제{self.article_no}조{branch}"
        if self.kind == "precedent" and self.case_no:
            return f"{self.court or ''} {self.case_no}".strip()
        return self.doc_no or self.title


class Chunk(Record):
    """A piece of one document sized for a teacher prompt, cut along 조/항 boundaries."""

    id: str
    doc_id: str
    kind: DocumentKind
    title: str
    text: str
    citation: str  # Document.citation() of the parent
    law_name: str | None = None
    article_no: int | None = None
    article_branch: int | None = None
    effective_date: str | None = None
    position: int = 0  # index of this chunk within its document
    n_chars: int = 0
    n_tokens_est: int = 0  # rough estimate used for budgeting prompts and costs
    question: str | None = None  # carried over for interpretations (the official question)
    answer: str | None = None  # carried over for interpretations (the official answer)
    related_laws: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


class Calculation(Record):
    """A worked tax computation attached to a calculation pair; `slm build` recomputes it."""

    # the calculator's input kinds (slm_datagen/taxlaw/kinds.py REQUIRED_INPUTS; a test keeps the two lists equal)
    kind: Literal[
        "gift_tax",
        "inheritance_tax",
        "inheritance_tax_estate",
        "income_tax",
        "capital_gains_tax",
        "capital_gains_sale",
        "corporate_tax",
        "vat",
        "simplified_vat",
    ]
    year: int
    inputs: dict[str, Any]
    result_won: int
    result_field: str = "computed_tax"


class Usage(Record):
    input_tokens: int = 0  # every input token, cached ones included
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached_input_tokens: int = 0  # served from the provider's prompt cache (cheaper)
    cache_write_tokens: int = 0  # written into it (Anthropic: dearer than plain input)


class QAPair(Record):
    """One distilled question/answer with its provenance."""

    id: str
    chunk_id: str
    doc_id: str
    kind: DocumentKind
    question: str
    answer: str
    audience: Audience
    style: QAStyle = "explain"
    citations: list[str] = Field(default_factory=list)  # as the teacher gave them: "소득세법 제12조 제3호"
    calculation: Calculation | None = None
    teacher: str  # provider name: offline / openai / anthropic / openai_compatible
    model: str
    prompt_version: str
    request_key: str  # ledger key of the request that produced it
    usage: Usage = Field(default_factory=Usage)
    source_citation: str = ""  # Chunk.citation of the source
    law_name: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class DistillFailure(Record):
    """A request that did not give a usable pair after retries; kept, never silently dropped."""

    request_key: str
    chunk_id: str
    teacher: str
    model: str
    reason: str  # truncated / not_korean / schema / empty / http_error / refused ...
    detail: str = ""
    usage: Usage = Field(default_factory=Usage)
    audience: str | None = None  # which pair of a several-pairs request failed (None: a one-pair request)
    style: str | None = None


class ChatMessage(Record):
    role: Literal["system", "user", "assistant"]
    content: str


class SFTExample(Record):
    """A training example in chat form; `meta` keeps the provenance for splits, stats and evaluation."""

    id: str
    messages: list[ChatMessage]
    meta: dict[str, Any] = Field(default_factory=dict)  # pair_id, doc_id, kind, law_name, audience, style, citations


class RejectedPair(Record):
    pair: QAPair
    rule: str  # the named check that rejected it
    details: str = ""
