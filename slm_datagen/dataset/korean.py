"""Hangul-aware comparison used by the checks: comparison keys and character n-grams (Hangul share: slm_datagen.hangul).

Korean spacing is inconsistent (teachers write "증여세 는", PDF extraction gives "폐 기"), so comparison keys drop
all whitespace and punctuation after NFKC (full-width forms and compatibility jamo fold to their usual forms).
"""

from __future__ import annotations

import unicodedata


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
