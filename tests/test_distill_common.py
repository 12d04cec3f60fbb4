"""Shared helpers for the distill tests (real statute and casebook rows turned into Chunk records), and their checks.

Other test_distill_* modules import from here; the chunks are built the way `slm prepare` writes them: a statute
article opens with its '제N조(제목)' heading and keeps 항/호/목 on their own lines; an interpretation carries its
쟁점/답변요지 in `question`/`answer` and its 관련법령 in `related_laws`.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path

from slm_forest.config import RunConfig
from slm_forest.files import write_jsonl
from slm_forest.manifest import Manifest, describe_files, write_manifest
from slm_forest.pipeline import StageContext
from slm_forest.records import Chunk, content_id

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
REPO = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    """The environment for a child process that must run THIS checkout's code (not an editable install elsewhere)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


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


_LAWS = ["소득세법", "법인세법", "부가가치세법", "국세기본법", "상속세 및 증여세법"]
_PHRASES = [
    "관할 세무서장은 납세자가 신고한 과세표준을 확인하여야 한다.",
    "다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다.",
    "거주자의 소득세 납세지는 그 주소지로 한다.",
    "법정신고기한까지 신고하지 아니한 경우에는 가산세를 부과한다.",
    "사업자는 과세기간이 끝난 후 25일 이내에 신고하여야 한다.",
]


def synthetic_chunks(n: int, seed: int = 7) -> list[Chunk]:
    """Statute-like chunks needing no ../shared corpus (each with a unique article number to match prompts on)."""
    rng = random.Random(seed)
    out = []
    for index in range(n):
        law, article = rng.choice(_LAWS), 101 + index
        body = "\n".join(f"{'①②③'[p]} {rng.choice(_PHRASES)} ({index}-{p})" for p in range(rng.randint(1, 3)))
        citation = f"{law} 제{article}조"
        out.append(
            Chunk(
                id=content_id("chunk", citation, body),
                doc_id=content_id("doc", citation),
                kind="statute_article",
                title=f"제{article}조(신고기한)",
                text=f"제{article}조(신고기한)\n{body}",
                citation=citation,
                law_name=law,
                article_no=article,
            )
        )
    return out


def cli_config(tmp_path: Path, chunks: list[Chunk], distill: dict, run_name: str = "faults") -> Path:
    """A config file and a finished prepare stage, so `slm distill CONFIG` (the real CLI, the real runner) runs."""
    runs = tmp_path / "runs"
    prepare = runs / run_name / "prepare"
    prepare.mkdir(parents=True, exist_ok=True)
    write_jsonl(prepare / "chunks.jsonl", chunks)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest = Manifest(
        stage="prepare",
        run_name=run_name,
        fingerprint="test",
        config={},
        outputs=describe_files([prepare / "chunks.jsonl"], runs / run_name),
        started_at=now,
        finished_at=now,
        seconds=0.0,
    )
    write_manifest(prepare, manifest)
    config = tmp_path / "faults.yaml"
    config.write_text(json.dumps({"run_name": run_name, "runs_dir": str(runs), "distill": distill}), encoding="utf-8")
    return config


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
