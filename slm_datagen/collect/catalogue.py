"""The named catalogue of Korean tax laws, so a config can say `laws: tax-all` or list names (or common short names).

Names are the official 법령명한글 as law.go.kr lists them (exact-name matching against search results depends on
it: "소득세법" is a substring of 56 other law names). Each 법률 comes with its 시행령 (대통령령); `tax-all` is those 42.
The 시행규칙 (부령) of the tax laws that have one are catalogue names too (not part of `tax-all`: they are mostly
forms and procedure; list them by name), so their short names and spacing variants resolve ("소법 시행규칙",
"소득세법시행규칙").

The catalogue is a convenience, not a limit: `laws:` accepts any law name. A name the catalogue does not know is
passed on as written and looked up on law.go.kr, where it must match one listed name exactly (lawgo_source.py);
only when it matches none does the run stop, naming the closest names from the search results and from here
(`suggest`), so a typo ("부가가치새법") still gets a did-you-mean instead of fetching the wrong law.
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
RULE_SUFFIX = " 시행규칙"
# The laws above that have a 시행규칙 (기획재정부령 / 행정안전부령 / 총리령), as named on law.go.kr. Left out where we are
# not sure one exists under that name (교통ㆍ에너지ㆍ환경세법, 인지세법, 교육세법, 농어촌특별세법, 조세범 처벌법):
# those are still collected by name, through the search.
_RULE_NAME_UNCONFIRMED = {"교통ㆍ에너지ㆍ환경세법", "인지세법", "교육세법", "농어촌특별세법", "조세범 처벌법"}
WITH_RULES: tuple[str, ...] = tuple(law for law in TAX_LAWS if law not in _RULE_NAME_UNCONFIRMED)

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
    """The `tax-all` names: each law followed by its 시행령."""
    return [name for law in TAX_LAWS for name in (law, law + DECREE_SUFFIX)]


def catalogue_names() -> list[str]:
    """Every name the catalogue knows: `tax-all` plus the 시행규칙."""
    return all_names() + [law + RULE_SUFFIX for law in WITH_RULES]


def name_key(name: object) -> str:
    """Spelling-insensitive key: NFC, no spaces, the middle dots people type made one (ㆍ, as law.go.kr writes)."""
    text = unicodedata.normalize("NFC", str(name or ""))
    for dot in ("·", "•", "∙", "・", "ㆍ"):
        text = text.replace(dot, "ㆍ")
    return "".join(text.split())


_BY_KEY = {name_key(name): name for name in catalogue_names()}
for _alias, _official in ALIASES.items():
    _BY_KEY.setdefault(name_key(_alias), _official)
    _BY_KEY.setdefault(name_key(_alias + DECREE_SUFFIX), _official + DECREE_SUFFIX)
    if _official in WITH_RULES:
        _BY_KEY.setdefault(name_key(_alias + RULE_SUFFIX), _official + RULE_SUFFIX)


def in_catalogue(name: str) -> bool:
    return name_key(name) in _BY_KEY


def resolve_law(name: str, where: str = "laws") -> str:
    """The official name for a catalogue name, alias or spelling variant; any other name as written (NFC, single
    spaces), to be looked up on law.go.kr."""
    official = _BY_KEY.get(name_key(name))
    if official:
        return official
    written = " ".join(unicodedata.normalize("NFC", str(name)).split())
    if not written:
        raise SlmError(f"{where}: an empty law name", "write the law's name as law.go.kr lists it, or `tax-all`")
    return written


def suggest(name: str, n: int = 3) -> list[str]:
    """Catalogue names close to `name` (for a did-you-mean)."""
    close = difflib.get_close_matches(name_key(name), list(_BY_KEY), n=n, cutoff=0.6)
    return list(dict.fromkeys(_BY_KEY[c] for c in close))


def resolve_laws(spec: str | list[str], where: str = "laws") -> list[str]:
    """`tax-all` or a list of names (which may include `tax-all`) -> official names, without repeats."""
    names = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for index, name in enumerate(names):
        resolved = all_names() if name == TAX_ALL else [resolve_law(name, f"{where}.{index}")]
        out += [n for n in resolved if n not in out]
    return out
