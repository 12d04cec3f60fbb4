"""Korean morphemes from kiwipiepy (Kiwi), loaded once and only when a check needs them.

Kiwi's model ships as the `kiwipiepy_model` package (no download at run time). Loading takes about a second, so the
analyser is created lazily: `slm --help` and stages that never compare Korean text do not pay for it.

    morphemes("증여세를 내야 하나요?") -> (("증여세", "NNG"), ("를", "JKO"), ("내", "VV"), ("어야", "EC"), …)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from slm_forest.errors import SlmError

Morpheme = tuple[str, str]  # (form, Sejong-style tag: NNG, VV, JKS, EF …)


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    try:
        from kiwipiepy import Kiwi  # noqa: PLC0415 - a second of start-up, only when Korean text is compared
    except ImportError:
        raise SlmError(
            "kiwipiepy is not installed: build's paraphrase and conclusion checks and the retrieval index need the "
            "Korean morpheme analyser",
            "pip install kiwipiepy (its model comes as the kiwipiepy_model package), or reinstall slm-forest",
        ) from None
    return Kiwi()


@lru_cache(maxsize=65536)
def morphemes(text: str) -> tuple[Morpheme, ...]:
    """The morphemes of `text` in order (one analysis, the best one Kiwi finds)."""
    if not text.strip():
        return ()
    return tuple((token.form, token.tag) for token in _kiwi().tokenize(text))


def morphemes_of_many(texts: list[str]) -> list[tuple[Morpheme, ...]]:
    """The morphemes of each text, in order, analysed in one call: Kiwi spreads a list over its worker threads (one
    per core). Not cached: callers that see the same texts again keep their own table (slm_datagen.index.terms)."""
    if not texts:
        return []
    analyses = _kiwi().tokenize(texts)
    return [tuple((token.form, token.tag) for token in tokens) for tokens in analyses]
