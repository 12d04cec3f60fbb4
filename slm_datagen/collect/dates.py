"""Dates as law.go.kr and its copies spell them -> ISO `YYYY-MM-DD`.

Seen in the data: `20240912` (API fields), `2024.09.12` (list rows), `2024.9.22.` (국세청 casebook 회신일),
`2024-09-12` (precedent front matter, which YAML may already have turned into a `date`), `2024. 9. 12.` (decision
text). Anything else gives None rather than a guess: a wrong date would silently mis-version a statute.
"""

from __future__ import annotations

import datetime as _dt
import re

_SEPARATED = re.compile(r"^\s*(\d{4})\s*[.\-/]\s*(\d{1,2})\s*[.\-/]\s*(\d{1,2})\s*\.?\s*$")
_DANGI_OFFSET = 2333
_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")


def iso_date(value: object) -> str | None:
    """Return `YYYY-MM-DD` for the known spellings, None for empty or unparseable values."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    text = str(value).strip()
    if not text:
        return None
    match = _COMPACT.match(text) or _SEPARATED.match(text)
    if not match:
        return None
    year, month, day = (int(g) for g in match.groups())
    if 4200 <= year <= 4400:
        # 단기 (檀紀) years in old decisions (legalize-kr: 선고일자 42890525): 단기 = 서기 + 2333.
        year -= _DANGI_OFFSET
    if not 1800 <= year <= 2200:
        return None
    try:
        return _dt.date(year, month, day).isoformat()
    except ValueError:  # 20240230 and the like
        return None
