"""Chunking: cut a document into pieces within a budget, along the structure of its text.

The budget is in characters: `prepare.max_chunk_chars`, or `prepare.max_chunk_tokens` × `prepare.chars_per_token`
when a token budget is set (PrepareConfig.chunk_budget_chars); each chunk's `n_tokens_est` uses the same ratio.

Statute articles are cut at 항 lines (①, ②, …), then 호 lines (1., 2., …), then 목 lines (가., 나., …); decisions,
rulings and interpretations at section headers (【이 유】, `## 판결요지`, 질의요지 …), then numbered headings, then
lines (paragraphs). Only a line longer than the budget is cut at sentence ends, and only a sentence longer than
the budget is cut inside (at a space when there is one).

Every piece must make sense alone, because the teacher sees one chunk at a time:
- each chunk of a statute starts with the article heading line `제12조(비과세소득)`;
- a piece cut out of a 항 or 호 repeats that 항/호's opening line ("③ 다음 각 호의 소득에 대해서는 …") when the
  opening line is short (at most a third of the room, amendment tags dropped), and so does the text that
  introduces a list ("다음 각 호의 …").
Pieces are then packed greedily, in order, into chunks up to the budget.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from slm_forest.records import Chunk, Document, content_id

CHARS_PER_TOKEN = 1.5  # the default of prepare.chars_per_token (see PrepareConfig)

# ①..⑳ (U+2460–2473), ㉑..㉟ (U+3251–325F), ㊱..㊿ (U+32B1–32BF): the 항 numbers law.go.kr uses.
_HANG = re.compile(r"[\u2460-\u2473\u3251-\u325f\u32b1-\u32bf]")
_HO = re.compile(r"\d{1,3}(?:의\d{1,2})?\.(?:\s|$)")
# 목 run 가. … 하. and go on 거. 너. … in long articles (소득세법 제12조 제3호), so any one syllable is a 목 label.
_MOK = re.compile(r"[가-힣]\.(?:\s|$)")
# Below 목: 1) 2) … or 가) 나) … or (1) (2) …
_SUBITEM = re.compile(r"(?:\d{1,2}|[가-힣])\)\s|\(\d{1,2}\)\s")
_SECTION = re.compile(
    r"【[^】\n]*】|#{1,6}\s|\[[^\]\n]{1,30}\]\s*$|"
    r"(?:판시사항|판결요지|참조조문|참조판례|판례내용|주\s?문|이\s?유|결\s?론|질의요지|질의내용|질의|회신|회신내용|회답|"
    r"답변요지|답변|쟁점|사실관계|관련법령|검토의견|처분개요|청구인\s?주장|처분청\s?의견|심리\s?및\s?판단)\s*[:：]?\s*$"
)
_ARTICLE_HEADING = re.compile(r"제\d+조(?:의\d+)?(?:\s*\([^)\n]*\))?")
_DELETED_BODY = re.compile(r"삭제\s*(?:<[^>\n]*>|\[[^\]\n]*\])?\s*$")
_INTRODUCES_LIST = re.compile(r"(?:다음|아래)\s?각\s?[호목]|(?:다음|아래)(?:의|과 같)|[:：]\s*$")
# Amendment tags are dropped from repeated context lines: they are history, not the rule the piece depends on.
_AMENDMENT_TAG = re.compile(
    r"\s*(?:<(?:개정|신설|전문개정|타법개정|본조신설)[^>\n]*>|\[(?:본조신설|전문개정|제목개정|종전)[^\]\n]*\])"
)
# A sentence ends at . ? ! after a non-digit (so "2016. 7. 14." and "1." stay whole) followed by whitespace.
_SENTENCE_BREAK = re.compile(r"(?<=[^\d\s][.?!])\s+")

STATUTE_LEVELS = (_HANG, _HO, _MOK, _SUBITEM)
TEXT_LEVELS = (_SECTION, _HO, _MOK, _SUBITEM)


@dataclass(frozen=True)
class _Piece:
    text: str
    context: str = ""  # lines repeated before this piece when it opens a chunk
    joiner: str = "\n"  # what goes between this piece and the previous one in the same chunk


def _join(*parts: str) -> str:
    return "\n".join(part for part in parts if part)


def _context_line(line: str) -> str:
    return _AMENDMENT_TAG.sub("", line).strip()


def _with_context(text: str, context: str) -> int:
    return len(text) + (len(context) + 1 if context else 0)


def _group(lines: list[str], level: re.Pattern[str]) -> list[list[str]]:
    """Split lines where `level` starts a line; blank lines at a group's edges are dropped."""
    groups: list[list[str]] = []
    for line in lines:
        if not groups or level.match(line):
            groups.append([line])
        else:
            groups[-1].append(line)
    trimmed = []
    for group in groups:
        while group and not group[-1].strip():
            group.pop()
        while group and not group[0].strip():
            group.pop(0)
        if group:
            trimmed.append(group)
    return trimmed


def _hard_cut(text: str, room: int) -> list[_Piece]:
    """Cut one over-long sentence, at the last space in the second half of the room when there is one."""
    pieces: list[_Piece] = []
    joiner = "\n"
    while len(text) > room:
        space = text.rfind(" ", room // 2, room + 1)
        if space > 0:
            pieces.append(_Piece(text[:space], joiner=joiner))
            text, joiner = text[space + 1 :], " "
        else:
            pieces.append(_Piece(text[:room], joiner=joiner))
            text, joiner = text[room:], ""
    if text:
        pieces.append(_Piece(text, joiner=joiner))
    return pieces


def _cut_line(line: str, room: int, context: str) -> list[_Piece]:
    """A line longer than the room: its sentences, each kept whole unless it alone exceeds the room."""
    if _with_context(line, context) <= room:
        return [_Piece(line, context)]
    if len(context) + 1 > room // 2:
        context = ""  # no room to repeat it
    avail = room - (len(context) + 1 if context else 0)
    pieces: list[_Piece] = []
    for index, sentence in enumerate(_SENTENCE_BREAK.split(line)):
        joiner = "\n" if index == 0 else " "
        if len(sentence) <= avail:
            pieces.append(_Piece(sentence, context, joiner))
            continue
        for cut_index, part in enumerate(_hard_cut(sentence, avail)):
            pieces.append(_Piece(part.text, context, joiner if cut_index == 0 else part.joiner))
    return pieces


def _cut(lines: list[str], room: int, levels: tuple[re.Pattern[str], ...], context: str) -> list[_Piece]:
    """Cut lines into pieces that each fit `room` together with their context, at the coarsest level possible."""
    text = "\n".join(lines)
    if _with_context(text, context) <= room:
        return [_Piece(text, context)]
    for depth, level in enumerate(levels):
        groups = _group(lines, level)
        if len(groups) < 2 and not (groups and level.match(groups[0][0]) and len(groups[0]) > 1):
            continue
        deeper = levels[depth + 1 :]
        unit_context = context
        pieces: list[_Piece] = []
        for group in groups:
            if level.match(group[0]):
                pieces += _cut_unit(group, room, deeper, unit_context)
                continue
            # Text before the first unit. When it introduces the list ("다음 각 호의 …"), repeat it.
            pieces += _cut(group, room, deeper, context)
            intro = _join(context, *(_context_line(line) for line in group))
            if _INTRODUCES_LIST.search(group[-1]) and len(intro) <= room // 3:
                unit_context = intro
        return pieces
    pieces = []
    for line in lines:
        if line.strip():
            pieces += _cut_line(line, room, context)
        else:
            pieces.append(_Piece(""))  # a paragraph break, kept when it falls inside a chunk
    return pieces


def _cut_unit(group: list[str], room: int, levels: tuple[re.Pattern[str], ...], context: str) -> list[_Piece]:
    """A unit that opens with its own line (a 항, a 호, a section header) followed by its sub-units."""
    if _with_context("\n".join(group), context) <= room:
        return [_Piece("\n".join(group), context)]
    lead, rest = group[0], group[1:]
    inner = _join(context, _context_line(lead))
    if len(inner) > room // 3:
        inner = context  # a long opening line is not worth repeating
    pieces = _cut_line(lead, room, context)
    if rest:
        pieces += _cut(rest, room, levels, inner)
    return pieces


def _pack(pieces: list[_Piece], budget: int, prefix: str) -> list[str]:
    """Greedily pack pieces in order into chunks of at most `budget` characters, each opening with `prefix`."""
    chunks: list[str] = []
    current = ""
    pending_break = False
    for piece in pieces:
        if not piece.text:
            pending_break = bool(current)
            continue
        joiner = "\n\n" if pending_break else piece.joiner
        pending_break = False
        if current and len(current) + len(joiner) + len(piece.text) <= budget:
            current += joiner + piece.text
            continue
        if current:
            chunks.append(current)
        current = _join(prefix, piece.context, piece.text)
    if current:
        chunks.append(current)
    return chunks


def article_heading(doc: Document) -> str:
    """`제12조의2(비과세소득)` from the document's fields (used when the text does not open with it)."""
    if doc.article_no is None:
        return ""
    branch = f"의{doc.article_branch}" if doc.article_branch else ""
    title = f"({doc.article_title})" if doc.article_title else ""
    return f"제{doc.article_no}조{branch}{title}"


def _split_heading(doc: Document) -> tuple[str, list[str], bool]:
    """(heading line, body lines, whether the text itself opens with the heading)."""
    lines = doc.text.split("\n")
    match = _ARTICLE_HEADING.match(lines[0]) if lines else None
    if match is None:
        return article_heading(doc), lines, False
    rest = lines[0][match.end() :].strip()
    return match.group(0).strip(), ([rest] if rest else []) + lines[1:], True


def is_deleted(doc: Document) -> bool:
    """A 삭제 article: flagged by collect, or a body that reads just "삭제 <2010.12.27>"."""
    if doc.kind != "statute_article":
        return False
    if doc.deleted:
        return True
    _, body, _ = _split_heading(doc)
    return bool(_DELETED_BODY.match("\n".join(body).strip()))


def split_text(doc: Document, max_chars: int) -> list[str]:
    """The chunk texts of one document, each at most `max_chars` characters."""
    if doc.kind == "statute_article":
        heading, body, opens_with_heading = _split_heading(doc)
        if len(doc.text) <= max_chars and (opens_with_heading or not heading):
            return [doc.text] if doc.text.strip() else []
        room = max_chars - (len(heading) + 1 if heading else 0)
        return _pack(_cut(body, room, STATUTE_LEVELS, ""), max_chars, heading)
    if len(doc.text) <= max_chars:
        return [doc.text] if doc.text.strip() else []
    return _pack(_cut(doc.text.split("\n"), max_chars, TEXT_LEVELS, ""), max_chars, "")


_META_FIELDS = ("case_no", "court", "decision_date", "doc_no", "field_of_law", "law_id", "mst")


@dataclass(frozen=True)
class ChunkedDocument:
    chunks: list[Chunk]
    too_short: int  # pieces dropped for being shorter than min_chunk_chars


def estimate_tokens(text: str, chars_per_token: float = CHARS_PER_TOKEN) -> int:
    return math.ceil(len(text) / chars_per_token)


def chunk_document(
    doc: Document, max_chars: int, min_chars: int, chars_per_token: float = CHARS_PER_TOKEN
) -> ChunkedDocument:
    """Chunk records for one (cleaned, de-duplicated, scrubbed) document."""
    texts = split_text(doc, max_chars)
    kept = [text for text in texts if len(text) >= min_chars]
    citation = doc.citation()
    meta = {"source": doc.source, "chunks_in_doc": len(kept)}
    meta.update({name: value for name in _META_FIELDS if (value := getattr(doc, name)) is not None})
    carries_qa = doc.kind != "statute_article"
    chunks = [
        Chunk(
            id=content_id("chunk", doc.id, position, text),
            doc_id=doc.id,
            kind=doc.kind,
            title=doc.title,
            text=text,
            citation=citation,
            law_name=doc.law_name,
            article_no=doc.article_no,
            article_branch=doc.article_branch,
            effective_date=doc.effective_date,
            position=position,
            n_chars=len(text),
            n_tokens_est=estimate_tokens(text, chars_per_token),
            question=doc.question if carries_qa else None,
            answer=doc.answer if carries_qa else None,
            related_laws=list(doc.related_laws),
            meta=dict(meta),
        )
        for position, text in enumerate(kept)
    ]
    return ChunkedDocument(chunks, len(texts) - len(kept))
