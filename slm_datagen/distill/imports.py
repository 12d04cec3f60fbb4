"""`distill.imports`: pairs people already have join the teacher pairs and go through every build rule.

    read_imports(cfg, chunks_path) -> Imported      (pure reading, before any teacher request is sent)
    append_imports(stage_dir, imported) -> counts   (after the teacher pairs are assembled)
    input_signature(cfg) -> [[path, sha256], ...]  (the runner's fingerprint: an edited file reruns distill + build)

Each record of each file (formats: `import_formats.py`) becomes a QAPair:
* teacher `import`, model = the file's format, prompt_version `import-v1`; request_key = sha256 of the content
  (question, answer, audience, style), id = f(request_key), so moving or re-ordering a file keeps its ids;
* meta["import"]: the file as the config names it, the line the record starts on, its format, the system prompt of
  a chat record, and every other field it had (id, type, source …) as written;
* audience from the data (audience, or the seed's type teacher/student), else expert; style calculation when the
  data says so (type/style 계산, calculation …) or the answer states a tax figure for a question that asks for one
  (the labels the build's arithmetic rules read), else explain;
* linked to a source chunk where possible: the first of its `source` field (a document number such as a chunk's
  citation), its citations field, the articles its answer cites, then those its question cites, that names a chunk
  of the corpus; an article maps to its first chunk in chunks.jsonl. A linked pair takes the chunk's ids, kind,
  citation and law, so grounding checks it against that source's version and it shares that article's split.
* unlinked: chunk_id "" (no chunk: the judge, which needs source text, skips it) and doc_id
  "import-<hash of the question's comparison key>", so every unlinked pair is its own split group (the same question
  in two files lands in the same split), deterministically; kind from the data (kind, or the seed's source
  openapi -> statute_article), else interpretation (a question answered by a person, like a 질의회신).

Paths are read relative to the working directory, like every path of the CLI; provenance keeps them as written.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_datagen.dataset.arithmetic import TAX_LABELS
from slm_datagen.dataset.korean import match_key
from slm_datagen.distill.import_formats import RawPair, read_pair_file
from slm_datagen.taxlaw.answer_amounts import labelled_amounts
from slm_datagen.taxlaw.citations import Citation, find_citations, format_citation, normalize_law_name
from slm_forest.config import DistillConfig, RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import atomic_writer, dumps_line, read_jsonl, sha256_file
from slm_forest.records import Chunk, DistillFailure, QAPair, content_id

IMPORT_TEACHER = "import"
IMPORT_PROMPT_VERSION = "import-v1"
_DOCUMENT_KINDS = ("statute_article", "precedent", "interpretation", "ruling")
# The seed project's `source` values: law articles came from the Open API, the rest from its judgment dump.
_SEED_SOURCE_KINDS = {"openapi": "statute_article"}
_CALC_HINT = re.compile(r"calc|계산|산출|세액", re.IGNORECASE)
_EXPLAIN_HINT = re.compile(r"^(?:explain|설명)$", re.IGNORECASE)
# A question that asks for a figure: "얼마", "계산해 주세요", "산출세액은?", "몇 원".
_ASKS_FIGURE = re.compile(r"얼마|계산|산출|몇\s*원|세액은")

ArticleKey = tuple[str, int, int]


@dataclass(frozen=True)
class ChunkRef:
    """What a linked pair takes from its chunk (not the text: the index stays small for a large corpus)."""

    id: str
    doc_id: str
    kind: str
    citation: str
    law_name: str | None


@dataclass
class ChunkIndex:
    articles: dict[ArticleKey, ChunkRef] = field(default_factory=dict)  # first chunk of each article
    citations: dict[str, ChunkRef] = field(default_factory=dict)  # first chunk of each citation string (doc numbers)


@dataclass
class Imported:
    pairs: list[QAPair] = field(default_factory=list)
    failures: list[DistillFailure] = field(default_factory=list)
    linked: int = 0
    by_file: list[dict[str, Any]] = field(default_factory=list)  # per file: path, format, pairs, failures, linked

    def counts(self) -> dict[str, int]:
        return {"imported": len(self.pairs), "import_linked": self.linked, "import_failures": len(self.failures)}


# ------------------------------------------------------------------------------------------------ the corpus
@functools.lru_cache(maxsize=1024)
def _cited(text: str) -> tuple[Citation, ...]:
    """The citations of a text, parsed once per pair although linking, labels and the law name all need them."""
    return tuple(find_citations(text))


def _article_key(law: str, article: int, branch: int | None) -> ArticleKey:
    return normalize_law_name(law), article, branch or 0


def build_chunk_index(chunks_path: Path) -> ChunkIndex:
    index = ChunkIndex()
    for row in read_jsonl(chunks_path):
        chunk = Chunk.model_validate(row)
        ref = ChunkRef(chunk.id, chunk.doc_id, chunk.kind, chunk.citation, chunk.law_name)
        if chunk.kind == "statute_article" and chunk.law_name and chunk.article_no is not None:
            index.articles.setdefault(_article_key(chunk.law_name, chunk.article_no, chunk.article_branch), ref)
        if chunk.citation:
            index.citations.setdefault(chunk.citation.strip(), ref)
    return index


def link_chunk(raw: RawPair, index: ChunkIndex) -> ChunkRef | None:
    """The chunk a pair is about: named by its source field, else by the first article it cites that we hold."""
    source = raw.original.get("source")
    if isinstance(source, str) and source.strip() in index.citations:
        return index.citations[source.strip()]
    for text in (*raw.citations, raw.answer, raw.question):
        for citation in _cited(text):
            ref = index.articles.get(_article_key(citation.law, citation.article, citation.branch))
            if ref is not None:
                return ref
    return None


# ------------------------------------------------------------------------------------------------ one pair
def states_computed_tax(question: str, answer: str) -> bool:
    """An answer that computes a tax: it states a tax figure (the labels the build's arithmetic reads) and the
    question asks for a figure, or the answer shows the arithmetic ("=")."""
    if not (_ASKS_FIGURE.search(question) or "=" in answer):
        return False  # the cheap test first: reading the amounts costs about a millisecond per answer
    return any(label in TAX_LABELS for label, _ in labelled_amounts(answer))


def style_of(raw: RawPair) -> str:
    if any(_CALC_HINT.search(h) for h in raw.hints):
        return "calculation"
    if any(_EXPLAIN_HINT.match(h) for h in raw.hints):
        return "explain"
    return "calculation" if states_computed_tax(raw.question, raw.answer) else "explain"


def _kind_of(raw: RawPair) -> str:
    kind = raw.original.get("kind")
    if isinstance(kind, str) and kind.strip() in _DOCUMENT_KINDS:
        return kind.strip()
    source = raw.original.get("source")
    if isinstance(source, str) and source.strip().lower() in _SEED_SOURCE_KINDS:
        return _SEED_SOURCE_KINDS[source.strip().lower()]
    return "interpretation"


def import_key(question: str, answer: str, audience: str, style: str) -> str:
    blob = "\x1f".join((IMPORT_PROMPT_VERSION, question, answer, audience, style))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _citation_labels(raw: RawPair) -> list[str]:
    if raw.citations:
        return list(raw.citations)
    seen: dict[str, None] = {}
    for citation in _cited(raw.answer):
        seen.setdefault(format_citation(citation), None)
    return list(seen)


def to_import_pair(raw: RawPair, fmt: str, label: str, ref: ChunkRef | None) -> QAPair:
    audience = raw.audience or "expert"
    style = style_of(raw)
    key = import_key(raw.question, raw.answer, audience, style)
    citations = _citation_labels(raw)
    provenance: dict[str, Any] = {"path": label, "line": raw.line, "format": fmt}
    if raw.system:
        provenance["system"] = raw.system
    if raw.original:
        provenance["fields"] = raw.original
    if ref is None:
        cited_laws = [c.law for text in citations for c in _cited(text)]
        law_name = normalize_law_name(cited_laws[0]) if cited_laws else None
        chunk_id, doc_id, kind, source_citation = "", content_id("import", match_key(raw.question)), _kind_of(raw), ""
    else:
        chunk_id, doc_id, kind, source_citation, law_name = ref.id, ref.doc_id, ref.kind, ref.citation, ref.law_name
    return QAPair(
        id=content_id("qa", key),
        chunk_id=chunk_id,
        doc_id=doc_id,
        kind=kind,  # type: ignore[arg-type]
        question=raw.question,
        answer=raw.answer,
        audience=audience,  # type: ignore[arg-type]
        style=style,  # type: ignore[arg-type]
        citations=citations,
        teacher=IMPORT_TEACHER,
        model=fmt,
        prompt_version=IMPORT_PROMPT_VERSION,
        request_key=key,
        source_citation=source_citation,
        law_name=law_name,
        meta={"import": provenance, "linked": ref is not None},
    )


# ------------------------------------------------------------------------------------------------ the stage's calls
def _resolve(path: str, key: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        state = "is a directory, not a file" if resolved.is_dir() else "not found"
        raise SlmError(
            f"{key}: {path}: {state} (paths are relative to the working directory, {Path.cwd()})",
            "fix the path, or remove the entry from distill.imports",
        )
    return resolved


def read_imports(cfg: DistillConfig, chunks_path: Path) -> Imported:
    """Every configured import file as QAPairs (linked where possible) and failures; SlmError on a malformed file."""
    imported = Imported()
    if not cfg.imports:
        return imported
    index = build_chunk_index(chunks_path)
    for number, spec in enumerate(cfg.imports):
        path = _resolve(spec.path, f"distill.imports.{number}.path")
        fmt, raws, skipped = read_pair_file(path, spec.format, spec.path)
        linked = 0
        for raw in raws:
            ref = link_chunk(raw, index)
            linked += ref is not None
            imported.pairs.append(to_import_pair(raw, fmt, spec.path, ref))
        for skip in skipped:
            imported.failures.append(
                DistillFailure(
                    request_key=content_id("import-skip", spec.path, skip.line),
                    chunk_id="",
                    teacher=IMPORT_TEACHER,
                    model=fmt,
                    reason=skip.reason,
                    detail=skip.detail,
                )
            )
        imported.linked += linked
        imported.by_file.append(
            {"path": spec.path, "format": fmt, "pairs": len(raws), "failures": len(skipped), "linked": linked}
        )
    return imported


def _append(path: Path, rows: list[Any]) -> None:
    """Rewrite `path` as its current lines plus `rows`, atomically (a kill leaves the old file whole)."""
    if not rows:
        return
    with atomic_writer(path) as out:
        if path.exists():
            with open(path, encoding="utf-8") as current:
                for line in current:
                    out.write(line)
        for row in rows:
            out.write(dumps_line(row))


def append_imports(stage_dir: Path, imported: Imported, qa_name: str, failures_name: str) -> dict[str, int]:
    """Add the imported pairs after the teacher pairs (so a teacher pair keeps a question both ask) and the import
    failures after the teacher failures; returns the counts for the manifest."""
    _append(stage_dir / qa_name, imported.pairs)
    _append(stage_dir / failures_name, imported.failures)
    return imported.counts() if imported.by_file else {}


def input_signature(cfg: RunConfig) -> list[list[object]]:
    """sha256 of every import file (size and mtime are not enough: an edit may keep both), so an edited import file
    reruns distill and, through qa_pairs.jsonl, build, without --force. A missing file is listed as None."""
    listing: list[list[object]] = []
    for spec in cfg.distill.imports:
        path = Path(spec.path).expanduser()
        listing.append([spec.path, sha256_file(path) if path.is_file() else None])
    return listing
