"""The named catalogue of Korean tax laws, so a config can say `laws: tax-all` or list names (or common short names).

Names are the official 법령명한글 as law.go.kr lists them (exact-name matching against search results depends on
it: "소득세법" is a substring of 56 other law names). Each 법률 comes with its 시행령 (대통령령). A name that is not in
the catalogue is an error listing the close matches — a typo would otherwise fetch nothing, or the wrong law;
laws outside the tax catalogue can still be collected by 법령ID (`law_ids`) or MST (`msts`).
"""

from __future__ import annotations

import difflib
import unicodedata

from slm_forest.errors import SlmError

TAX_ALL = "tax-all"

TAX_LAWS: tuple[str, ...] = (
    "국세기본법",
    "국세징수법",
    "소득세법",
    "법인세법",
    "부가가치세법",
    "상속세 및 증여세법",
    "종합부동산세법",
    "조세특례제한법",
    "국제조세조정에 관한 법률",
    "지방세기본법",
    "지방세법",
    "지방세특례제한법",
    "개별소비세법",
    "주세법",
    "교통ㆍ에너지ㆍ환경세법",
    "인지세법",
    "증권거래세법",
    "교육세법",
    "농어촌특별세법",
    "관세법",
    "조세범 처벌법",
)
DECREE_SUFFIX = " 시행령"

# Short names people write, -> the official name.
ALIASES: dict[str, str] = {
    "국기법": "국세기본법",
    "국징법": "국세징수법",
    "소법": "소득세법",
    "법법": "법인세법",
    "부가세법": "부가가치세법",
    "부법": "부가가치세법",
    "상증법": "상속세 및 증여세법",
    "상증세법": "상속세 및 증여세법",
    "종부세법": "종합부동산세법",
    "조특법": "조세특례제한법",
    "국조법": "국제조세조정에 관한 법률",
    "지기법": "지방세기본법",
    "지특법": "지방세특례제한법",
    "개소세법": "개별소비세법",
    "교통세법": "교통ㆍ에너지ㆍ환경세법",
    "교통에너지환경세법": "교통ㆍ에너지ㆍ환경세법",
    "농특세법": "농어촌특별세법",
    "조세범처벌법": "조세범 처벌법",
}


def all_names() -> list[str]:
    """Every catalogue name: each law followed by its 시행령."""
    return [name for law in TAX_LAWS for name in (law, law + DECREE_SUFFIX)]


def _key(name: str) -> str:
    """Spelling-insensitive key: NFC, no spaces, the three middle dots people type made one."""
    text = unicodedata.normalize("NFC", name)
    for dot in ("·", "•", "∙", "・", "ㆍ"):
        text = text.replace(dot, "ㆍ")
    return "".join(text.split())


_BY_KEY = {_key(name): name for name in all_names()}
for _alias, _official in ALIASES.items():
    _BY_KEY.setdefault(_key(_alias), _official)
    _BY_KEY.setdefault(_key(_alias + DECREE_SUFFIX), _official + DECREE_SUFFIX)


def resolve_law(name: str, where: str = "laws") -> str:
    """The official name for a catalogue name, alias or spelling variant; SlmError with close matches otherwise."""
    official = _BY_KEY.get(_key(name))
    if official:
        return official
    close = difflib.get_close_matches(_key(name), list(_BY_KEY), n=3, cutoff=0.6)
    suggestions = [_BY_KEY[c] for c in close]
    hint = (
        f"did you mean {', '.join(repr(s) for s in dict.fromkeys(suggestions))}?"
        if suggestions
        else "use a name from slm_datagen/collect/catalogue.py, `tax-all`, or law_ids/msts for other laws"
    )
    raise SlmError(f"{where}: unknown law {name!r}", hint)


def resolve_laws(spec: str | list[str], where: str = "laws") -> list[str]:
    """`tax-all` or a list of names (which may include `tax-all`) -> official names, without repeats."""
    names = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for index, name in enumerate(names):
        resolved = all_names() if name == TAX_ALL else [resolve_law(name, f"{where}.{index}")]
        out += [n for n in resolved if n not in out]
    return out
