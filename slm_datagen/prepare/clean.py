"""Text cleaning: Unicode NFC, whitespace and leftover HTML, keeping the line structure (항/호/목, sections).

law.go.kr text carries `<br/>`, HTML entities, full-width spaces (U+3000) and NBSPs; casebooks and scraped pages add
zero-width characters and tabs. Lines matter downstream (the chunker cuts at 항/호 lines and section headers), so
line breaks survive and only the spaces *within* a line are normalised.

Korean amendment tags such as `<개정 2020.12.29>` look like markup but are content: the tag pattern only matches
tags whose name starts with an ASCII letter, so they are left for the collect stage's own handling.
"""

from __future__ import annotations

import html
import re
import unicodedata

from slm_forest.records import Document

# Tags that end a line in the rendered page: they become newlines so 항/호 stay on their own lines.
_BREAK_TAG = re.compile(r"<\s*/?\s*(?:br|p|div|li|tr|h[1-6])\b[^<>]*>", re.IGNORECASE)
# Any other HTML tag (ASCII tag name) or comment is dropped. `<개정 …>` is not matched: its name is Hangul.
_OTHER_TAG = re.compile(r"<!--.*?-->|<\s*/?\s*[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?\s*>", re.DOTALL)
# Horizontal whitespace of every width, including NBSP (U+00A0) and the ideographic space (U+3000): any run that
# holds a special space, or two or more plain spaces, becomes one space. A lone plain space (the common case) is
# not matched at all, which makes the pass ~2.5× faster than substituting every space.
_WIDE = "\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_SPACES = re.compile(rf"[{_WIDE}][ {_WIDE}]*| [ {_WIDE}]+")
# Invisible characters that split words for search and n-grams but carry no meaning.
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad\x00-\x08\x0e-\x1f\x7f]")
_LINE_EDGES = re.compile(r" +\n *|\n +")
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise one text; idempotent (cleaning a cleaned text changes nothing)."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0b", "\n").replace("\x0c", "\n")
    if "<" in text:
        text = _BREAK_TAG.sub("\n", text)
        text = _OTHER_TAG.sub("", text)
    if "&" in text:
        # After the tags, so an escaped `&lt;b&gt;` in the source stays visible text instead of being re-parsed.
        text = html.unescape(text)
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _LINE_EDGES.sub("\n", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    # NFC last: entities and the source's own text may hold decomposed Hangul (NFD jamo from macOS files), and the
    # n-gram de-duplication counts one syllable as one character only in NFC.
    return unicodedata.normalize("NFC", text.strip())


def clean_document(doc: Document) -> Document:
    """Clean every text field that later stages read (the text, its title and the official question/answer)."""
    update: dict[str, object] = {"text": clean_text(doc.text), "title": clean_text(doc.title)}
    for name in ("question", "answer", "article_title", "holdings", "summary", "reasoning"):
        value = getattr(doc, name)
        if value:
            update[name] = clean_text(value)
    if doc.related_laws:
        update["related_laws"] = [cleaned for law in doc.related_laws if (cleaned := clean_text(law))]
    return doc.model_copy(update=update)
