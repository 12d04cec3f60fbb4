"""Shared helpers for the distill tests (real statute and casebook rows turned into Chunk records), and their checks.

Other test_distill_* modules import from here; the chunks are built the way `slm prepare` writes them: a statute
article opens with its '제N조(제목)' heading and keeps 항/호/목 on their own lines; an interpretation carries its
쟁점/답변요지 in `question`/`answer` and its 관련법령 in `related_laws`.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path

from slm_forest.config import RunConfig
from slm_forest.files import write_jsonl
from slm_forest.pipeline import StageContext
from slm_forest.records import Chunk, content_id

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def statute_chunks(shared: Path = SHARED) -> list[Chunk]:
    rows = [json.loads(line) for line in open(shared / "statutes" / "statute_units_real_text.jsonl", encoding="utf-8")]
    articles: OrderedDict[tuple[str, str], list[dict]] = OrderedDict()
    for row in rows:
        articles.setdefault((row["법령명"], row["조"]), []).append(row)
    out = []
    for (law, jo), units in articles.items():
        text = "\n".join(re.sub(r"\s*<(?:개정|신설)[^>]*>", "", u["text"]) for u in units)
        match = re.match(r"제(\d+)조(?:의(\d+))?", jo)
        assert match
        citation = f"{law} {jo}"
        out.append(
            Chunk(
                id=content_id("chunk", citation, text),
                doc_id=content_id("doc", citation),
                kind="statute_article",
                title=units[0]["text"].split(")")[0] + ")",
                text=text,
                citation=citation,
                law_name=law,
                article_no=int(match.group(1)),
                article_branch=int(match.group(2)) if match.group(2) else None,
                effective_date="2024-01-01",
            )
        )
    return out


def ruling_chunks(shared: Path = SHARED) -> list[Chunk]:
    records = json.loads((shared / "rulings" / "nts_casebook_2025.json").read_text(encoding="utf-8"))
    out = []
    for record in records:
        text = f"쟁점\n{record['쟁점']}\n답변요지\n{record['답변요지']}\n관련법령\n{record['관련법령']}"
        out.append(
            Chunk(
                id=content_id("chunk", record["문서번호"], text),
                doc_id=content_id("doc", record["문서번호"]),
                kind="interpretation",
                title=record["쟁점"],
                text=text,
                citation=record["문서번호"],
                question=record["쟁점"],
                answer=record["답변요지"],
                related_laws=[record["관련법령"]],
                meta={"decision_date": record["회신일"]},
            )
        )
    return out


def make_ctx(tmp_path: Path, chunks: list[Chunk], distill: dict | None = None, **options) -> StageContext:
    """A run directory with prepare/chunks.jsonl and a StageContext for the distill stage."""
    run = tmp_path / "run"
    (run / "prepare").mkdir(parents=True, exist_ok=True)
    (run / "distill").mkdir(parents=True, exist_ok=True)
    write_jsonl(run / "prepare" / "chunks.jsonl", chunks)
    cfg = RunConfig.model_validate({"distill": distill or {}})
    return StageContext(cfg, "distill", run, run / "distill", {}, dict(options))


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_real_rows_become_chunks(shared_dir):
    statutes, rulings = statute_chunks(shared_dir / "corpus"), ruling_chunks(shared_dir / "corpus")
    assert len(statutes) == 21 and len(rulings) == 96
    first = statutes[0]
    assert first.text.startswith("제112조(사업에 관한 허가등의 제한)") and "\n①" in first.text
    assert rulings[0].question and rulings[0].answer and rulings[0].related_laws
