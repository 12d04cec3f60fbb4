"""Rebuild the bundled demo corpus in this directory from ../shared/corpus (run once, by a maintainer).

    python slm_datagen/data/make_bundled.py [--shared PATH_TO/shared/corpus]

What it does, and why:
1. Copies the files ../shared/corpus/README.md marks "may ship" (with their MIT notice):
   `lawgo/eflaw_JO_소득세법_제12조.json`, `lawgo/eflaw_JO_부가가치세법_제46조.json` (raw lawService.do responses),
   `rulings/nts_casebook_2025.json` (96 국세청 interpretations), `statutes/statute_units_real_text.jsonl`,
   `LICENSE.korean-tax-mcp.MIT`.
2. Converts the flat statute units (one row per 조/항/호: 법령명, 시행본, 조, 항, 호, text) into law.go.kr
   `lawService.do` JSON — one `{"법령": {"기본정보": …, "조문": {"조문단위": […]}}}` file per (law, 시행본) under
   `statutes/` — so the bundled corpus goes through the same parser as real API responses. The conversion is
   `slm_datagen.collect.statute_units.law_response` (see its docstring: only fields the rows really give are filled;
   법령ID, MST, 공포일자 are left out rather than invented).
   Units copied from the two raw responses shipped in step 1 (korean-tax-mcp's ita_12.json / vat_46.json) are left
   out: the raw responses are the better copy of the same articles.

3. With `--legalize OWNER/NAME=PATH_TO_CLONE` (repeatable; a clone of a repository LEGALIZE_EXCERPTS names), writes
   `legalize/kr/<법령명>/법률.md`: the rate articles the calculator relies on, read at the pinned commit
   (`git show COMMIT:PATH`) and cut by `trim_law` — front matter, title, the 장/절/관 headings above each kept article
   and the article blocks, all verbatim — plus `legalize/SOURCES.json` (repository, commit, MST, 시행일자, articles
   of each file). Files of a repository without a clone are left as they are (checked to hold exactly their
   articles). The MIT notice `LICENSE.legalize-kr.MIT` is kept by hand: neither copy has a LICENSE file.

The output is deterministic (sorted keys where order is not meaningful, rows in source order), so rerunning it on
the same ../shared gives byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

from slm_datagen.collect.statute_units import law_response

HERE = Path(__file__).resolve().parent
DEFAULT_SHARED = HERE.parents[2] / "shared" / "corpus"

COPIES = [
    "LICENSE.korean-tax-mcp.MIT",
    "lawgo/eflaw_JO_소득세법_제12조.json",
    "lawgo/eflaw_JO_부가가치세법_제46조.json",
    "rulings/nts_casebook_2025.json",
    "statutes/statute_units_real_text.jsonl",
]
# Units whose source is a raw response already shipped under lawgo/ (same articles, same 시행일자).
SHIPPED_RAW_SOURCES = ("tests/fixtures/ita_12.json", "tests/fixtures/vat_46.json")


def convert_units(units_path: Path, out_dir: Path) -> list[Path]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for line in units_path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if any(src in row.get("source", "") for src in SHIPPED_RAW_SOURCES):
            continue
        groups.setdefault((row["법령명"], row["시행본"]), []).append(row)
    written = []
    for (law_name, version), rows in sorted(groups.items()):
        response = law_response(law_name, version, rows)
        path = out_dir / f"lawService_{law_name.replace(' ', '')}_{version}.json"
        path.write_text(json.dumps(response, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written


# The articles the calculator (slm_datagen/taxlaw/) relies on, each law from the newest version in force on
# 2026-12-04 that a readable legalize-kr copy holds. legalize-kr/legalize-kr's own files of 소득세법 and 지방세법 are
# the 2027-09-09 version (not yet in force) and it has no 상속세및증여세법 file here, so those come from the mirror
# xxyy89890-wq/legalize-kr (a full-history copy of legalize-kr; commit = the one that wrote that version of the file).
UPSTREAM = "legalize-kr/legalize-kr"
MIRROR = "xxyy89890-wq/legalize-kr"


class LegalizeExcerpt(NamedTuple):  # a NamedTuple: the tests load this script by path, outside sys.modules
    repository: str
    commit: str
    articles: tuple[str, ...]


LEGALIZE_EXCERPTS: dict[str, LegalizeExcerpt] = {
    # 시행 2026-10-02, MST 289999
    "kr/국세기본법/법률.md": LegalizeExcerpt(
        UPSTREAM, "993371b496c5403d5021f5e7834d26a2c446a003", ("제47조의2", "제47조의4", "제48조")
    ),
    # 시행 2026-04-21, MST 285523
    "kr/소득세법/법률.md": LegalizeExcerpt(
        MIRROR,
        "1d3460ad77b5d4b13ce9730f225696ed6fefcd19",
        ("제14조", "제55조", "제89조", "제92조", "제95조", "제103조", "제104조"),
    ),
    # 시행 2026-01-01, MST 282559
    "kr/지방세법/법률.md": LegalizeExcerpt(
        MIRROR, "f1b4dbdbc5dd63844b8f1a2a10c64f39841a9430", ("제92조", "제103조의3")
    ),
    # 시행 2026-01-01, MST 280353
    "kr/상속세및증여세법/법률.md": LegalizeExcerpt(
        MIRROR,
        "fa4087c5ba0a671fff8abdc1f60b4e703518ed28",
        (
            "제13조",
            "제18조",
            "제19조",
            "제20조",
            "제21조",
            "제22조",
            "제24조",
            "제25조",
            "제26조",
            "제27조",
            "제47조",
            "제53조",
            "제53조의2",
            "제55조",
            "제56조",
            "제57조",
            "제58조",
            "제69조",
            "제70조",
        ),
    ),
    # 시행 2026-01-01, MST 280349
    "kr/법인세법/법률.md": LegalizeExcerpt(MIRROR, "2af8cc8d119eea24ae4285b32fe3435f41b1f024", ("제13조", "제55조")),
    # 시행 2026-01-01, MST 280351
    "kr/부가가치세법/법률.md": LegalizeExcerpt(
        MIRROR,
        "c34e2b7d40752935f0257426c9c801e79c193496",
        ("제29조", "제30조", "제37조", "제38조", "제63조", "제69조"),
    ),
}
_HEADING = re.compile(r"^(#{2,4})\s+\S")
_ARTICLE = re.compile(r"^#####\s+(제\d+조(?:의\d+)?)")
_ADDENDA = re.compile(r"^##\s+부\s*칙")


def trim_law(text: str, keep: tuple[str, ...]) -> str:
    """A legalize-kr law file cut down to the articles in `keep`, each under the headings above it, all verbatim."""
    lines = text.rstrip("\n").split("\n")
    end = lines.index("---", 1)
    out = lines[: end + 1]
    # (depth, line number, heading line) above the current position; headings are told apart by line number, since
    # two chapters may each have a "### 제6절 과세표준과 세율 <개정 2010.1.1>"
    stack: list[tuple[int, int, str]] = []
    written: set[int] = set()  # line numbers of the headings already written
    block: list[str] | None = None
    blocks: list[list[str]] = []
    for number, line in enumerate(lines[end + 1 :], start=end + 1):
        if _ADDENDA.match(line):
            break
        if line.startswith("# "):
            out += ["", line]
            continue
        heading, article = _HEADING.match(line), _ARTICLE.match(line)
        if heading or article:
            block = None
        if heading:
            depth = len(heading.group(1))
            stack = [entry for entry in stack if entry[0] < depth] + [(depth, number, line)]
        elif article and article.group(1) in keep:
            block = [h for _, n, h in stack if n not in written] + [line]
            written.update(n for _, n, _ in stack)
            blocks.append(block)
        elif block is not None:
            block.append(line)
    found = {match.group(1) for block_lines in blocks for match in map(_ARTICLE.match, block_lines) if match}
    missing = [label for label in keep if label not in found]
    if missing:
        raise SystemExit(f"articles not found: {', '.join(missing)}")
    for block_lines in blocks:
        for line in block_lines:
            if _HEADING.match(line) or _ARTICLE.match(line):
                while out and out[-1] == "":
                    out.pop()
                out += ["", line, ""]
            elif line or (out and out[-1] != ""):
                out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def _front(text: str, key: str) -> str:
    match = re.search(rf"^{key}: '?([^'\n]*)'?$", text, re.MULTILINE)
    return match.group(1) if match else ""


def write_legalize_excerpts(clones: dict[str, Path]) -> list[Path]:
    """Rewrite the excerpts whose repository has a clone in `clones` (owner/name -> path); leave the others as they
    are (they must already hold exactly their articles). SOURCES.json is rewritten for every file."""
    written, sources = [], {}
    for relpath, excerpt in LEGALIZE_EXCERPTS.items():
        target = HERE / "legalize" / relpath
        clone = clones.get(excerpt.repository)
        if clone is None:
            if not target.is_file():
                raise SystemExit(f"{relpath}: not shipped yet; pass --legalize {excerpt.repository}=PATH_TO_CLONE")
            text = target.read_text(encoding="utf-8")
            if trim_law(text, excerpt.articles) != text:
                raise SystemExit(
                    f"{relpath}: the shipped excerpt is not {excerpt.articles}; pass --legalize {excerpt.repository}=PATH"
                )
        else:
            text = subprocess.run(
                ["git", "-C", str(clone), "show", f"{excerpt.commit}:{relpath}"], capture_output=True, check=True
            ).stdout.decode("utf-8")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(trim_law(text, excerpt.articles), encoding="utf-8")
            written.append(target)
        sources[relpath] = {
            "repository": excerpt.repository,
            "commit": excerpt.commit,
            "법령MST": _front(text, "법령MST"),
            "시행일자": _front(text, "시행일자"),
            "articles": list(excerpt.articles),
        }
    (HERE / "legalize" / "SOURCES.json").write_text(
        json.dumps(sources, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/corpus directory")
    parser.add_argument(
        "--legalize",
        action="append",
        default=[],
        metavar="OWNER/NAME=PATH",
        help="a clone of a legalize-kr repository named in LEGALIZE_EXCERPTS: rewrite its excerpts under legalize/",
    )
    args = parser.parse_args()
    if args.legalize:
        clones = {}
        for item in args.legalize:
            repository, sep, path = item.partition("=")
            if not sep or repository not in {e.repository for e in LEGALIZE_EXCERPTS.values()}:
                raise SystemExit(f"--legalize {item}: give OWNER/NAME=PATH, OWNER/NAME one of {UPSTREAM}, {MIRROR}")
            clones[repository] = Path(path)
        excerpts = write_legalize_excerpts(clones)
        print(f"wrote {len(excerpts)} legalize excerpts into {HERE / 'legalize'}")
    if not args.shared.is_dir():
        raise SystemExit(f"{args.shared}: not a directory; pass --shared PATH_TO/shared/corpus")
    for name in COPIES:
        target = HERE / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.shared / name, target)
    statutes = HERE / "statutes"
    for old in statutes.glob("lawService_*.json"):
        old.unlink()
    written = convert_units(HERE / "statutes" / "statute_units_real_text.jsonl", statutes)
    print(f"copied {len(COPIES)} files, wrote {len(written)} lawService files into {HERE}")


if __name__ == "__main__":
    main()
