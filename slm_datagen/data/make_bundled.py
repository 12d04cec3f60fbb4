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

The output is deterministic (sorted keys where order is not meaningful, rows in source order), so rerunning it on
the same ../shared gives byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import shutil
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/corpus directory")
    args = parser.parse_args()
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
