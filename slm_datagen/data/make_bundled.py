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

3. With `--legalize PATH_TO_CLONE` (a clone of legalize-kr/legalize-kr), writes `legalize/kr/<법령명>/법률.md`: the
   rate articles the calculator relies on (LEGALIZE_EXCERPTS), cut out of the clone's files by `trim_law` — front
   matter, title, the 장/절/관 headings above each kept article and the article blocks, all verbatim — plus
   `legalize/SOURCES.json` (repository, commit, MST, 시행일자 of each file). Without `--legalize` those files are
   left as they are. `--legalize-commit FILE=COMMIT` reads a file at a given commit of the clone (`git show`).

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


# The articles the calculator (slm_datagen/taxlaw/) relies on, where legalize-kr/legalize-kr holds the law's file.
LEGALIZE_EXCERPTS: dict[str, tuple[str, ...]] = {
    "kr/소득세법/법률.md": ("제55조", "제95조", "제103조", "제104조"),
    "kr/국세기본법/법률.md": ("제47조의2", "제47조의4"),
}
LEGALIZE_REPOSITORY = "legalize-kr/legalize-kr"
_HEADING = re.compile(r"^(#{2,4})\s+\S")
_ARTICLE = re.compile(r"^#####\s+(제\d+조(?:의\d+)?)")
_ADDENDA = re.compile(r"^##\s+부\s*칙")


def trim_law(text: str, keep: tuple[str, ...]) -> str:
    """A legalize-kr law file cut down to the articles in `keep`, each under the headings above it, all verbatim."""
    lines = text.rstrip("\n").split("\n")
    end = lines.index("---", 1)
    out = lines[: end + 1]
    stack: list[tuple[int, str]] = []  # (depth, heading line) above the current position
    written: list[str] = []  # the heading lines already written, in order
    block: list[str] | None = None
    blocks: list[list[str]] = []
    for line in lines[end + 1 :]:
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
            stack = [(d, h) for d, h in stack if d < depth] + [(depth, line)]
        elif article and article.group(1) in keep:
            block = [h for _, h in stack if h not in written] + [line]
            written += [h for _, h in stack if h not in written]
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


def write_legalize_excerpts(clone: Path, commits: dict[str, str]) -> list[Path]:
    written, sources = [], {}
    for relpath, articles in LEGALIZE_EXCERPTS.items():
        commit = commits.get(relpath)
        if commit:
            text = subprocess.run(
                ["git", "-C", str(clone), "show", f"{commit}:{relpath}"], capture_output=True, check=True
            ).stdout.decode("utf-8")
        else:
            text = (clone / relpath).read_text(encoding="utf-8")
        target = HERE / "legalize" / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(trim_law(text, articles), encoding="utf-8")
        written.append(target)
        sources[relpath] = {
            "repository": LEGALIZE_REPOSITORY,
            "commit": commit or "",
            "법령MST": _front(text, "법령MST"),
            "시행일자": _front(text, "시행일자"),
            "articles": list(articles),
        }
    for name in ("LICENSE", "LICENSE.md", "LICENSE.txt"):
        if (clone / name).is_file():
            shutil.copyfile(clone / name, HERE / "LICENSE.legalize-kr.MIT")
            break
    (HERE / "legalize" / "SOURCES.json").write_text(
        json.dumps(sources, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/corpus directory")
    parser.add_argument("--legalize", type=Path, help="a clone of legalize-kr/legalize-kr: rewrite legalize/")
    parser.add_argument("--legalize-commit", action="append", default=[], help="kr/<법령명>/법률.md=COMMIT")
    args = parser.parse_args()
    if args.legalize:
        commits = dict(item.split("=", 1) for item in args.legalize_commit)
        excerpts = write_legalize_excerpts(args.legalize, commits)
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
