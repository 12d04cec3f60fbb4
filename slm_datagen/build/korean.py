"""Hangul-aware text measures used by the checks: Hangul share, comparison keys and character n-grams.

Korean spacing is inconsistent (teachers write "증여세 는", PDF extraction gives "폐 기"), so comparison keys drop
all whitespace and punctuation after NFKC (full-width forms and compatibility jamo fold to their usual forms).
"""

from __future__ import annotations

import unicodedata


def is_hangul(ch: str) -> bool:
    code = ord(ch)
    return (
        0xAC00 <= code <= 0xD7A3  # syllables
        or 0x1100 <= code <= 0x11FF  # jamo
        or 0x3130 <= code <= 0x318F  # compatibility jamo
        or 0xA960 <= code <= 0xA97F
        or 0xD7B0 <= code <= 0xD7FF
    )


def hangul_share(text: str) -> float:
    """Hangul characters / all letters (digits, spaces and punctuation do not count). 0.0 for no letters."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if is_hangul(ch)) / len(letters)


def match_key(text: str) -> str:
    """The comparison form of a text: NFKC, lower case, only letters and digits (no spaces, no punctuation)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if ch.isalnum())


def char_ngrams(key: str, n: int) -> set[str]:
    """Character n-grams of an already normalised key; a key shorter than n is its own single gram."""
    if not key:
        return set()
    if len(key) <= n:
        return {key}
    return {key[i : i + n] for i in range(len(key) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def final_syllable_has_mieum(ch: str) -> bool:
    """True for a syllable whose final consonant is ㅁ (음, 함, 임, 됨 …): the nominal ending of 개조식 answers."""
    code = ord(ch) - 0xAC00
    return 0 <= code <= 11171 and code % 28 == 16
