"""Which characters are Hangul, and how Korean a text is: shared by the teachers' reply checks and build's rules."""

from __future__ import annotations

SYLLABLE_FIRST, SYLLABLE_LAST = 0xAC00, 0xD7A3


def is_hangul_syllable(ch: str) -> bool:
    """A composed syllable (가–힣): the characters that carry a final consonant (받침)."""
    return len(ch) == 1 and SYLLABLE_FIRST <= ord(ch) <= SYLLABLE_LAST


def is_hangul(ch: str) -> bool:
    """Any Hangul letter: syllables and (compatibility) jamo."""
    code = ord(ch)
    return (
        SYLLABLE_FIRST <= code <= SYLLABLE_LAST
        or 0x1100 <= code <= 0x11FF  # jamo
        or 0x3130 <= code <= 0x318F  # compatibility jamo
        or 0xA960 <= code <= 0xA97F
        or 0xD7B0 <= code <= 0xD7FF
    )


def hangul_share(text: str) -> float:
    """Hangul letters / all letters (digits, spaces and punctuation do not count). 0.0 for no letters."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if is_hangul(ch)) / len(letters)
