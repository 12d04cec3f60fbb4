"""Search terms: the content morphemes of a text, so that "증여재산공제는" and "증여재산공제를" both give
증여 / 재산 / 공제 and a particle never blocks a match.

    TermAnalyser(["NNG", "SN"]).terms("소득세법 제55조의 세율은?") -> ["소득세법", "55", "세율"]

Each whitespace-separated word (어절) is analysed by Kiwi on its own and the analysis is remembered, so a corpus of
millions of words costs one analysis per distinct word. Digit runs are replaced by "0" before the analysis and put
back after it ("제55조제1항에" and "제12조제3항에" share one analysis), and thousands separators are dropped first
("5,000만원" is "5000만원"), so numbers do not multiply the distinct words. Queries go through the same function, so
the corpus and the questions are cut the same way (analysing a word out of its sentence differs from a whole-sentence
analysis on about one morpheme in ten; for matching, being consistent matters more than being context-perfect).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable

from slm_datagen.dataset.morphemes import Morpheme, morphemes, morphemes_of_many

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DIGITS = re.compile(r"\d+")
# A word without any letter (Hangul, Latin, Hanja…): only its numbers can be terms, Kiwi is not needed.
_HAS_LETTER = re.compile(r"[^\W\d_]")
# Analyses kept between calls (query side); the corpus side keeps its own table for the length of a build.
QUERY_TABLE_LIMIT = 200_000
# Morphemes that make up a compound noun inside one word: 비(XPN)과세(NNG)소득(NNG), 납세(NNG)자(XSN).
_COMPOUND_TAGS = frozenset({"NNG", "NNP", "XPN", "XSN"})


class TermAnalyser:
    """Words -> terms with a table of the words already analysed. One per build; one per loaded index for queries."""

    def __init__(self, tags: Iterable[str], limit: int | None = None) -> None:
        self.tags = frozenset(tags)
        self.limit = limit  # None: remember every word (a build); a number: clear the table when it is full
        self._by_word: dict[str, tuple[str, ...]] = {}  # words without digits -> their terms
        self._by_shape: dict[str, tuple[str, ...]] = {}  # digit-masked words -> terms, "0" standing for each run
        self._lock = threading.Lock()  # a server answers queries from several threads; the tables are shared

    def terms(self, text: str) -> list[str]:
        return self.terms_of_many([text])[0]

    def terms_of_many(self, texts: list[str]) -> list[list[str]]:
        """The terms of each text; the words none of them has seen yet are analysed in one Kiwi call."""
        word_lists = [_words(text) for text in texts]
        with self._lock:
            self._learn(word_lists)
            return [self._terms_of(words) for words in word_lists]

    def _terms_of(self, words: list[str]) -> list[str]:
        terms: list[str] = []
        for word in words:
            known = self._by_word.get(word)
            if known is not None:
                terms.extend(known)
            else:
                terms.extend(_with_digits(self._by_shape[_DIGITS.sub("0", word)], word))
        return terms

    def _learn(self, word_lists: list[list[str]]) -> None:
        if self.limit is not None and len(self._by_word) + len(self._by_shape) > self.limit:
            self._by_word.clear()
            self._by_shape.clear()
        new: dict[str, None] = {}  # digit-masked shapes to analyse, in first-seen order
        for words in word_lists:
            for word in words:
                if word in self._by_word:
                    continue
                shape = _DIGITS.sub("0", word)
                if shape in self._by_shape or shape in new:
                    continue
                if not _HAS_LETTER.search(shape):
                    self._by_shape[shape] = ("0",) * shape.count("0") if "SN" in self.tags else ()
                    continue
                new[shape] = None
        shapes = list(new)
        # A query has a handful of new words: one call per word on this thread answers faster than handing a short
        # list to Kiwi's worker threads (measured 0.5 ms against 1-13 ms for 13 words on a busy 2-core machine).
        analyses = [morphemes(shape) for shape in shapes] if len(shapes) <= 32 else morphemes_of_many(shapes)
        for shape, analysis in zip(shapes, analyses):
            self._by_shape[shape] = self._keep(analysis)
        for words in word_lists:
            for word in words:
                if word not in self._by_word and not _DIGITS.search(word):
                    self._by_word[word] = self._by_shape[word]

    def _keep(self, analysis: tuple[Morpheme, ...]) -> tuple[str, ...]:
        kept = [form.lower() for form, tag in analysis if tag.split("-")[0] in self.tags]
        return (*kept, *_compounds(analysis))


def _compounds(analysis: tuple[Morpheme, ...]) -> list[str]:
    """The word's compound nouns as one more term each: 비/과세/소득 also gives "비과세소득", so a question about
    비과세소득 prefers the text that has the whole compound over texts with 과세 and 소득 apart (the prefix 비 alone is not a
    term). Parts stay terms too, so "증여재산공제액" still matches "증여재산공제" through 증여, 재산, 공제."""
    out: list[str] = []
    run: list[str] = []
    for form, tag in (*analysis, ("", "")):
        if tag in _COMPOUND_TAGS:
            run.append(form)
            continue
        if len(run) >= 2:
            out.append("".join(run).lower())
        run = []
    return out


def _words(text: str) -> list[str]:
    return _THOUSANDS.sub("", unicodedata.normalize("NFC", text)).split()


def _with_digits(shape_terms: tuple[str, ...], word: str) -> list[str]:
    """Put the word's digit runs back, in order, where the analysis of its digit-masked shape has "0"s.

    A term is a number only if it is made of "0"s and separators (e.g. "0", "0.0"); others ("0" inside a Latin code)
    keep their zeros as written, which is the same for every word of that shape."""
    runs = iter(_DIGITS.findall(word))
    out: list[str] = []
    for term in shape_terms:
        if "0" in term and not _HAS_LETTER.search(term):
            out.append(_DIGITS.sub(lambda _: next(runs, "0"), term))
        else:
            out.append(term)
    return out
