"""Which version of an article a search may return on a date.

A statute article can be held in several versions (one per 시행일자: the text before and after an amendment). On a
date `as_of` the version in force is the one with the latest 시행일자 on or before it; older versions are superseded
and never returned. When every version held starts after `as_of` (only the amended text was collected), the earliest
one is returned, marked not yet in force, rather than nothing: the user sees the text and its 시행일. Chunks that
are not statute articles (rulings, decisions) have no versions and are always searchable.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from slm_datagen.taxlaw.citations import Citation, normalize_law_name
from slm_forest.errors import SlmError
from slm_forest.records import Chunk


def article_key(chunk: Chunk) -> str | None:
    """ "소득세법|55|0" for a chunk of 소득세법 제55조; None for a chunk that is not of a numbered statute article."""
    if chunk.kind != "statute_article" or not chunk.law_name or chunk.article_no is None:
        return None
    return _key(chunk.law_name, chunk.article_no, chunk.article_branch)


def citation_key(citation: Citation) -> str:
    return _key(citation.law, citation.article, citation.branch)


def _key(law: str, article: int, branch: int | None) -> str:
    return f"{normalize_law_name(law)}|{article}|{branch or 0}"


def date_number(text: str) -> int:
    """ "2024-01-01" -> 20240101 (ValueError unless it is a real YYYY-MM-DD date)."""
    day = date.fromisoformat(text)
    if len(text) != 10:  # fromisoformat also takes "20240101" and week dates; the records hold YYYY-MM-DD
        raise ValueError(text)
    return day.year * 10000 + day.month * 100 + day.day


def as_of_number(as_of: str | date | None) -> int:
    """The search date as YYYYMMDD: a date, a "YYYY-MM-DD" string, or None for today."""
    if as_of is None:
        as_of = date.today()
    if isinstance(as_of, date):
        return as_of.year * 10000 + as_of.month * 100 + as_of.day
    try:
        return date_number(str(as_of).strip())
    except ValueError:
        raise SlmError(
            f"as_of {as_of!r}: not a YYYY-MM-DD date", "give the date the law should be read on, e.g. 2025-01-01"
        ) from None


def number_to_date(number: int) -> str:
    return f"{number // 10000:04d}-{number // 100 % 100:02d}-{number % 100:02d}"


def searchable(group: np.ndarray, effective: np.ndarray, as_of: int) -> np.ndarray:
    """Per chunk, True when a search on `as_of` may return it (see the module docstring)."""
    allowed = np.ones(len(group), dtype=bool)
    statute = group >= 0
    if not statute.any():
        return allowed
    groups, dates = group[statute], effective[statute].astype(np.int64)
    n_groups = int(groups.max()) + 1
    latest_in_force = np.full(n_groups, -1, dtype=np.int64)
    started = dates <= as_of
    np.maximum.at(latest_in_force, groups[started], dates[started])
    earliest = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, groups, dates)
    chosen = np.where(latest_in_force >= 0, latest_in_force, earliest)
    allowed[statute] = dates == chosen[groups]
    return allowed
