"""`run_prepare` through the real stage runner: after the real collect stage, and after a hand-made one."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, write_jsonl
from slm_forest.manifest import Manifest, describe_files, write_manifest
from slm_forest.pipeline import run_stage
from slm_forest.records import Chunk, Document

PREPARE = Path("runs") / "t" / "prepare"


def _chunks() -> list[Chunk]:
    return [Chunk.model_validate(row) for row in read_jsonl(PREPARE / "chunks.jsonl")]


def test_prepare_after_the_real_collect_stage():
    cfg = load_config(None, ["run_name=t"])
    collected = run_stage(cfg, "collect")
    report = run_stage(cfg, "prepare")
    assert report.complete and not report.skipped
    assert report.counts["documents_in"] == collected.counts["documents"]
    chunks = _chunks()
    assert report.counts["chunks"] == len(chunks) > 0
    assert {entry.path for entry in report.manifest.outputs} == {
        "prepare/chunks.jsonl",
        "prepare/duplicates.jsonl",
        "prepare/dedup_report.json",
    }
    assert not list(PREPARE.glob(".*"))  # no spool or temporary file left behind
    statutes = [c for c in chunks if c.kind == "statute_article"]
    assert statutes and all(
        c.text.startswith(f"제{c.article_no}조" + (f"의{c.article_branch}" if c.article_branch else ""))
        for c in statutes
    )
    assert all(c.n_chars <= cfg.prepare.max_chunk_chars for c in chunks)
    assert all(c.question and c.answer for c in chunks if c.kind == "interpretation")
    # A second run with the same config and inputs is skipped.
    assert run_stage(cfg, "prepare").skipped


def _hand_made_collect(docs: list[Document]) -> None:
    """documents.jsonl plus a complete manifest, as if `slm collect` had written them."""
    collect = Path("runs") / "t" / "collect"
    write_jsonl(collect / "documents.jsonl", docs)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_manifest(
        collect,
        Manifest(
            stage="collect",
            run_name="t",
            fingerprint="hand-made",
            config={},
            outputs=describe_files([collect / "documents.jsonl"], Path("runs") / "t"),
            started_at=now,
            finished_at=now,
            seconds=0.0,
        ),
    )


HANGS = [
    f"{mark} 거주자가 제{n}호의 요건을 갖춘 경우에는 해당 과세기간의 종합소득금액에서 대통령령으로 정하는 금액을 공제한다."
    for n, mark in enumerate("①②③④⑤⑥⑦⑧", start=1)
]
RULING = (
    "【질의요지】\n질의인 홍길동(010-2345-6789)은 2023. 5. 1. 주택을 양도하고 양도가액 1,500,000,000원을 계좌 "
    "110-123-456789로 받았다. 1세대 1주택 비과세 요건을 판단할 때 보유기간과 거주기간을 어떻게 계산하는지 질의한다.\n"
    "【회신】\n보유기간은 해당 주택의 취득일부터 양도일까지로 하며, 거주기간은 주민등록표 등본에 따른 전입일부터 전출일까지의 "
    "기간으로 한다(서면-2023-법규재산-1234 참조)."
)


def _docs() -> list[Document]:
    article = "제89조(비과세 양도소득)\n" + "\n".join(HANGS)
    statute = dict(kind="statute_article", source="t", law_name="소득세법", article_no=89, title="소득세법 제89조")
    return [
        Document(id="law-2020", text=article, effective_date="2020-01-01", **statute),
        Document(id="ruling-1", kind="ruling", title="1세대 1주택", text=RULING, source="t", doc_no="서면-2023-1"),
        Document(id="ruling-copy", kind="ruling", title="1세대 1주택", text=RULING.replace(" ", "  "), source="t"),
        Document(
            id="ruling-near",
            kind="ruling",
            title="1세대 1주택",
            text=RULING.replace("질의한다", "질의하다"),
            source="t",
        ),
        Document(
            id="law-2024",
            text=article.replace("공제한다.", "공제할 수 있다.", 1),
            effective_date="2024-01-01",
            **statute,
        ),
        Document(
            id="law-deleted",
            kind="statute_article",
            source="t",
            law_name="소득세법",
            article_no=90,
            title="제90조",
            text="제90조 삭제 <2010.12.27>",
        ),
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_prepare_on_a_hand_made_collect_dedups_scrubs_and_reports(workers):
    _hand_made_collect(_docs())
    cfg = load_config(None, ["run_name=t", "prepare.max_chunk_chars=200", f"prepare.workers={workers}"])
    report = run_stage(cfg, "prepare")
    counts = report.counts
    assert (counts["documents_in"], counts["documents_kept"], counts["deleted_skipped"]) == (6, 2, 1)
    assert (counts["exact_duplicates"], counts["near_duplicates"]) == (1, 2)  # the copy; the near ruling, law-2020

    chunks = _chunks()
    assert {c.doc_id for c in chunks} == {"ruling-1", "law-2024"}  # the newest statute version replaced the old
    statute_chunks = [c for c in chunks if c.kind == "statute_article"]
    assert len(statute_chunks) > 1 and all(c.text.startswith("제89조(비과세 양도소득)\n") for c in statute_chunks)
    assert all(c.n_chars <= 200 for c in chunks)
    ruling_text = "\n".join(c.text for c in chunks if c.kind == "ruling")
    assert "홍길동" not in ruling_text and "010-2345-6789" not in ruling_text and "110-123-456789" not in ruling_text
    assert (
        "1,500,000,000원" in ruling_text and "2023. 5. 1." in ruling_text and "서면-2023-법규재산-1234" in ruling_text
    )
    assert counts["pii_masked"] == 3

    duplicates = list(read_jsonl(PREPARE / "duplicates.jsonl"))
    assert {(d["dropped"], d["kept"], d["method"], d["reason"]) for d in duplicates} == {
        ("ruling-copy", "ruling-1", "exact", "later_copy"),
        ("ruling-near", "ruling-1", "near", "later_copy"),
        ("law-2020", "law-2024", "near", "newer_version"),
    }
    dedup_report = json.loads((PREPARE / "dedup_report.json").read_text(encoding="utf-8"))
    assert dedup_report["by_kind"]["ruling"]["exact_duplicates"] == 1
    assert dedup_report["by_kind"]["statute_article"]["replaced_by_newer"] == 1
    assert dedup_report["by_kind"]["statute_article"]["deleted_skipped"] == 1
    assert dedup_report["pii"] == {"account": 1, "name": 1, "phone": 1}
    assert report.manifest.stats["by_kind"] == dedup_report["by_kind"]


def test_workers_do_not_change_the_output():
    _hand_made_collect(_docs() * 1 + [d.model_copy(update={"id": d.id + "-again"}) for d in _docs()])
    outputs = []
    for workers in (1, 2):
        run_stage(load_config(None, ["run_name=t", f"prepare.workers={workers}"]), "prepare", force=True)
        outputs.append(((PREPARE / "chunks.jsonl").read_bytes(), (PREPARE / "duplicates.jsonl").read_bytes()))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_malformed_document_is_an_error_naming_file_and_line(workers):
    _hand_made_collect(_docs()[:2])
    path = Path("runs") / "t" / "collect" / "documents.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"kind":"ruling"', '"kind":"opinion"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _hand_made_collect_manifest_only()
    with pytest.raises(SlmError, match=re.escape(f"{path}:2: not a Document record (kind:")) as caught:
        run_stage(load_config(None, ["run_name=t", f"prepare.workers={workers}"]), "prepare")
    assert "slm collect" in caught.value.hint  # the hint survives the trip back from a worker process
    assert not (PREPARE / "chunks.jsonl").exists() and not list(PREPARE.glob(".*"))


def _hand_made_collect_manifest_only() -> None:
    collect = Path("runs") / "t" / "collect"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    outputs = describe_files([collect / "documents.jsonl"], Path("runs") / "t")
    write_manifest(
        collect,
        Manifest(
            stage="collect",
            run_name="t",
            fingerprint="edited",
            config={},
            outputs=outputs,
            started_at=now,
            finished_at=now,
            seconds=0.0,
        ),
    )


def _sourced_docs() -> list[Document]:
    article = "제89조(비과세 양도소득)\n" + "\n".join(HANGS)
    statute = dict(kind="statute_article", law_name="소득세법", article_no=89, title="소득세법 제89조")
    other = RULING.replace("1세대 1주택", "공동사업자").replace("보유기간", "출자지분")
    return [
        Document(
            id="b1", kind="interpretation", title="t", text=RULING, source="bundled:rulings/nts_casebook_2025.json"
        ),
        Document(id="a1", kind="ruling", title="t", text=RULING, source="dump:/data/a/laws/f1.json"),
        Document(id="a2", kind="ruling", title="t", text=other, source="dump:/data/a/f2.json"),
        Document(
            id="x1", kind="ruling", title="t", text=other.replace("질의한다", "질의하다"), source="dump:/data/b.json"
        ),
        Document(
            id="l1", text=article, effective_date="2020-01-01", source="lawgo:eflaw?MST=1&efYd=20200101", **statute
        ),
        Document(
            id="x2",
            text=article.replace("공제한다.", "공제할 수 있다.", 1),
            effective_date="2024-01-01",
            source="dump:/data/b.json",
            **statute,
        ),
        Document(id="l2", kind="precedent", title="t", text=other, source="lawgo:prec?ID=7"),
    ]


def test_duplicates_are_counted_per_source(tmp_path):
    from slm_datagen.prepare.process import prepare_documents

    write_jsonl(tmp_path / "documents.jsonl", _sourced_docs())
    cfg = load_config(None, ["run_name=t"]).prepare
    prepare_documents(tmp_path / "documents.jsonl", tmp_path / "out", cfg, 1, dump_roots=["/data/a", "/data/b.json"])
    report = json.loads((tmp_path / "out" / "dedup_report.json").read_text(encoding="utf-8"))["by_source"]
    assert list(report) == ["bundled", "dump:/data/a", "dump:/data/b.json", "lawgo:eflaw", "lawgo:prec"]
    assert report["bundled"] | {"duplicate_of": None} == {
        "documents_in": 1,
        "deleted_skipped": 0,
        "exact_duplicates": 0,
        "near_duplicates": 0,
        "replaced_by_newer": 0,
        "documents_kept": 1,
        "duplicate_of": None,
    }
    assert (report["dump:/data/a"]["documents_in"], report["dump:/data/a"]["documents_kept"]) == (2, 1)
    assert report["dump:/data/a"]["exact_duplicates"] == 1 and report["dump:/data/a"]["duplicate_of"] == {"bundled": 1}
    assert report["dump:/data/b.json"]["near_duplicates"] == 1 and report["dump:/data/b.json"]["documents_kept"] == 1
    assert report["dump:/data/b.json"]["duplicate_of"] == {"dump:/data/a": 1}
    # the 2020 version from law.go.kr was kept first, then replaced by the dump's 2024 version
    assert report["lawgo:eflaw"]["replaced_by_newer"] == 1 and report["lawgo:eflaw"]["documents_kept"] == 0
    assert report["lawgo:eflaw"]["duplicate_of"] == {"dump:/data/b.json": 1}
    assert report["lawgo:prec"]["duplicate_of"] == {"dump:/data/a": 1} and report["lawgo:prec"]["exact_duplicates"] == 1
    duplicates = {row["dropped"]: row for row in read_jsonl(tmp_path / "out" / "duplicates.jsonl")}
    assert (duplicates["l1"]["dropped_source"], duplicates["l1"]["kept_source"]) == ("lawgo:eflaw", "dump:/data/b.json")
    assert (duplicates["a1"]["dropped_source"], duplicates["a1"]["kept_source"]) == ("dump:/data/a", "bundled")
    # without the configured dump paths, a dump document is labelled with its folder
    prepare_documents(tmp_path / "documents.jsonl", tmp_path / "out", cfg, 1)
    report = json.loads((tmp_path / "out" / "dedup_report.json").read_text(encoding="utf-8"))["by_source"]
    assert {"dump:/data/a/laws", "dump:/data/a", "dump:/data"} <= set(report)


def test_the_stage_labels_dump_sources_by_their_configured_path(tmp_path):
    _hand_made_collect(
        [
            d.model_copy(update={"source": d.source.replace("/data/", f"{tmp_path.as_posix()}/")})
            for d in _sourced_docs()
        ]
    )
    config = tmp_path / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "run_name": "t",
                "collect": {"sources": [{"kind": "dump", "path": f"{tmp_path.as_posix()}/a"}, {"kind": "bundled"}]},
            }
        ),
        encoding="utf-8",
    )
    report = run_stage(load_config(config), "prepare")
    assert report.manifest.stats["by_source"][f"dump:{tmp_path.as_posix()}/a"]["duplicate_of"] == {"bundled": 1}
    assert f"dump:{tmp_path.as_posix()}" in report.manifest.stats["by_source"]  # b.json: not under a configured path


def test_the_stage_chunks_to_a_token_budget():
    _hand_made_collect(_docs())
    overrides = ["prepare.max_chunk_chars=150", "prepare.max_chunk_tokens=100", "prepare.chars_per_token=3"]
    report = run_stage(load_config(None, ["run_name=t", *overrides]), "prepare")
    chunks = _chunks()
    assert len(chunks) > 2 and all(c.n_chars <= 300 and c.n_tokens_est == -(-c.n_chars // 3) for c in chunks)
    assert any(c.n_chars > 200 for c in chunks)  # 100 tokens × 3 = 300 characters, not max_chunk_chars
    assert report.manifest.stats["chunk_budget_chars"] == 300
    budget = json.loads((PREPARE / "dedup_report.json").read_text(encoding="utf-8"))["chunk_budget"]
    assert budget == {"max_chunk_chars": 300, "max_chunk_tokens": 100, "chars_per_token": 3.0}


def test_stale_temporary_files_of_a_killed_run_are_swept():
    _hand_made_collect(_docs())
    PREPARE.mkdir(parents=True)
    stale = [
        ".duplicates.jsonl.k3x_9a1b.tmp",
        ".chunks.jsonl.abcdefgh.tmp",
        ".dedup_report.json.0a1b2c3d.tmp",
        ".manifest.json.zz99yy88.tmp",
        ".chunks.q1w2e3r4.spool",
    ]
    kept = ["notes.tmp", ".duplicates.jsonl.tmp", ".hidden", "duplicates.jsonl.abcdefgh.tmp", ".x.abc.tmp"]
    for name in stale + kept:
        (PREPARE / name).write_text("x", encoding="utf-8")
    run_stage(load_config(None, ["run_name=t"]), "prepare")
    left = {p.name for p in PREPARE.iterdir()}
    assert not left & set(stale) and set(kept) <= left
