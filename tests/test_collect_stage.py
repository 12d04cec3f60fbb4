"""`run_collect` through the real stage runner: bundled corpus, dumps with bad files, law.go.kr with its cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.pipeline import run_stage
from slm_forest.records import Document
from tests.lawgo_replay_server import ReplayServer, Reply

FIXTURES = Path(__file__).parent / "fixtures" / "collect"
OC = "stage-oc-7730"


def config(tmp_path: Path, collect: dict, name: str = "t"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"run_name": name, "collect": collect}, allow_unicode=True), encoding="utf-8")
    return load_config(path)


def documents(run: str = "t") -> list[Document]:
    return [Document.model_validate(row) for row in read_jsonl(Path("runs") / run / "collect" / "documents.jsonl")]


def test_bundled_corpus():
    report = run_stage(load_config(None, ["run_name=t"]), "collect")
    docs = documents()
    statutes = [d for d in docs if d.kind == "statute_article"]
    rulings = [d for d in docs if d.kind == "interpretation"]
    # 21 from law.go.kr JSON + 39 rate articles from the legalize-kr excerpts (상속세 및 증여세법 19, 소득세법 7,
    # 부가가치세법 6, 국세기본법 3, 법인세법 2, 지방세법 2)
    assert (len(statutes), len(rulings), len(docs)) == (60, 96, 156)
    assert report.counts["statute_article"] == 60 and report.counts["interpretation"] == 96
    assert report.counts["skipped"] == 0 and report.counts["duplicates"] == 0
    assert all(d.law_name and d.article_no and d.effective_date for d in statutes)
    assert {d.law_name for d in statutes} == {
        "국세기본법",
        "국세징수법",
        "법인세법",
        "법인세법 시행령",
        "소득세법",
        "부가가치세법",
        "조세범 처벌법",
        "상속세 및 증여세법",
        "지방세법",
    }
    assert all(d.question and d.answer and d.doc_no for d in rulings)
    assert len({d.id for d in docs}) == len(docs)
    assert "60 statute_article" in report.summary and "96 interpretation" in report.summary
    # deterministic: a forced rerun writes the same bytes
    first = (Path("runs/t/collect/documents.jsonl")).read_bytes()
    run_stage(load_config(None, ["run_name=t"]), "collect", force=True)
    assert Path("runs/t/collect/documents.jsonl").read_bytes() == first
    manifest = json.loads(Path("runs/t/collect/manifest.json").read_text(encoding="utf-8"))
    assert any(entry["path"].endswith("nts_casebook_2025.json") for entry in manifest["inputs"])


def _dump_dir(tmp_path: Path) -> Path:
    dump = tmp_path / "dump"
    (dump / "laws").mkdir(parents=True)
    shutil.copy(FIXTURES / "lawgo/law_quirks.json", dump / "laws/a_quirks.json")
    shutil.copy(FIXTURES / "lawgo/law_pair.xml", dump / "laws/b_pair.xml")
    shutil.copy(FIXTURES / "lawgo/law_pair.json", dump / "laws/c_pair_again.json")  # same articles: duplicates
    (dump / "laws/d_cp949.json").write_bytes(
        (FIXTURES / "lawgo/law_single_dict.json").read_text("utf-8").encode("cp949")
    )
    (dump / "bad").mkdir()
    (dump / "bad/truncated.json").write_text('{"법령": {"기본정보": {"법령명_한글": "소득', encoding="utf-8")
    (dump / "bad/empty.json").write_bytes(b"")
    return dump


def test_dump_skips_bad_files_and_drops_duplicates(tmp_path):
    dump = _dump_dir(tmp_path)
    report = run_stage(config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump)}]}), "collect")
    counts = report.counts
    assert counts["skipped"] == 2 and counts["duplicates"] == 2
    assert counts["documents"] == 4 + 2 + 1 and counts["from_dump"] == 7
    skipped = list(read_jsonl(Path("runs/t/collect/skipped.jsonl")))
    assert [Path(s["input"]).name for s in skipped] == ["empty.json", "truncated.json"]
    assert skipped[1]["where"] == "line 1, column 28" and "truncated JSON" in skipped[1]["reason"]
    assert report.manifest.stats["encodings"] == {"utf-8": 3, "cp949": 1}
    assert len(report.manifest.inputs) == 6  # every dump file read is hashed into the manifest


def test_on_error_fail_names_the_file_and_keeps_the_previous_output(tmp_path):
    dump = _dump_dir(tmp_path)
    good = config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump / "laws")}]})
    run_stage(good, "collect")
    before = Path("runs/t/collect/documents.jsonl").read_bytes()
    failing = config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump)}], "on_error": "fail"})
    with pytest.raises(SlmError) as info:
        run_stage(failing, "collect")
    assert info.value.message.startswith(f"{dump / 'bad/empty.json'}: empty file")
    assert "on_error: skip" in info.value.hint
    assert Path("runs/t/collect/documents.jsonl").read_bytes() == before
    # The failed run is not marked done: the manifest is still the good run's, which stays valid for its config.
    assert run_stage(good, "collect").skipped
    assert not list(Path("runs/t/collect").glob(".documents.jsonl.*.tmp"))


def test_missing_dump_path_is_a_config_error(tmp_path):
    with pytest.raises(SlmError, match=r"collect.sources.0.path: .*does not exist"):
        run_stage(config(tmp_path, {"sources": [{"kind": "dump", "path": "nowhere"}]}), "collect")


def test_sources_are_combined_in_config_order(tmp_path):
    cfg = config(
        tmp_path,
        {
            "sources": [
                {"kind": "dump", "path": str(FIXTURES / "lawgo/expc_detail.json")},
                {"kind": "bundled", "include": ["rulings"]},
            ]
        },
    )
    report = run_stage(cfg, "collect")
    docs = documents()
    assert docs[0].doc_no == "20-0512" and len(docs) == 97
    assert report.counts["from_dump"] == 1 and report.counts["from_bundled"] == 96


def test_lawgo_source_end_to_end_with_cache(tmp_path, monkeypatch, shared_dir):
    monkeypatch.setenv("LAWGO_OC", OC)
    with ReplayServer() as server:
        server.route(
            "lawSearch.do",
            {"query": "부가가치세법"},
            Reply.json(
                {
                    "LawSearch": {
                        "totalCnt": "1",
                        "law": {
                            "법령일련번호": "276000",
                            "법령명한글": "부가가치세법",
                            "시행일자": "20260102",
                            "현행연혁코드": "현행",
                        },
                    }
                }
            ),
        )
        server.route(
            "lawService.do",
            {"MST": "276000"},
            Reply.file(shared_dir / "corpus/lawgo/eflaw_JO_부가가치세법_제46조.json"),
        )
        server.route("lawService.do", {"target": "prec", "ID": "1"}, Reply.file(FIXTURES / "lawgo/prec_detail.xml"))
        server.route("lawService.do", {"target": "prec", "ID": "2"}, Reply.file(FIXTURES / "lawgo/errors/no_prec.json"))
        sources = [
            {"kind": "lawgo", "laws": ["부가세법"], "base_url": server.base_url, "backoff_s": 0.01},
            {"kind": "lawgo", "target": "prec", "ids": ["1", "2"], "base_url": server.base_url, "backoff_s": 0.01},
        ]
        cfg = config(tmp_path, {"sources": sources})
        first = run_stage(cfg, "collect")
        sent = len(server.requests)
        again = run_stage(cfg, "collect", force=True)
    assert sent == 4 and len(server.requests) == sent  # the second collect made no request at all
    assert first.counts["lawgo_requests"] == 4 and again.counts["lawgo_requests"] == 0
    assert again.counts["lawgo_cache_hits"] == 4  # the "일치하는 판례가 없습니다" answer is cached too
    assert first.counts["documents"] == 2 and first.counts["skipped"] == 1
    docs = documents()
    assert [d.kind for d in docs] == ["statute_article", "precedent"] and docs[0].mst == "276000"
    for path in Path("runs/t/collect").rglob("*"):
        if path.is_file():
            assert OC not in path.read_text(encoding="utf-8", errors="replace"), path
        assert OC not in str(path)
    skipped = list(read_jsonl(Path("runs/t/collect/skipped.jsonl")))
    assert "일치하는 판례가 없습니다" in skipped[0]["reason"] and "OC=***" in skipped[0]["reason"]


def test_edited_or_added_dump_file_reruns_collect_without_force(tmp_path):
    dump = _dump_dir(tmp_path)
    cfg = config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump / "laws")}]})
    first = run_stage(cfg, "collect")
    assert run_stage(cfg, "collect").skipped
    # A new file in the dump directory changes the stage's input signature.
    extra = dump / "laws" / "copy.json"
    shutil.copy(FIXTURES / "lawgo/expc_detail.json", extra)
    second = run_stage(cfg, "collect")
    assert not second.skipped and second.counts["documents"] == first.counts["documents"] + 1
    assert run_stage(cfg, "collect").skipped


def test_the_oc_never_reaches_skipped_manifest_cache_or_documents(tmp_path, monkeypatch):
    """law.go.kr pages that echo the OC: a 'no such case' HTML page (skipped), a detail that quotes it (cached),
    and finally a 미신청 page that stops the run."""
    monkeypatch.setenv("LAWGO_OC", OC)
    not_found_page = (
        f"<html><head><title>국가법령정보 OC={OC}</title></head><body>일치하는 판례가 없습니다. "
        f"요청: lawService.do?OC={OC}&amp;target=prec&amp;ID=1</body></html>"
    )
    detail = json.loads((FIXTURES / "lawgo/prec_detail.json").read_text(encoding="utf-8"))
    detail["PrecService"]["참조판례"] = f"대법원 2019두1 (조회 OC={OC})"
    with ReplayServer() as server:
        server.route("lawService.do", {"target": "prec", "ID": "1"}, Reply.text(not_found_page))
        server.route("lawService.do", {"target": "prec", "ID": "2"}, Reply.json(detail))
        source = {"kind": "lawgo", "target": "prec", "ids": ["1", "2"], "base_url": server.base_url, "backoff_s": 0.01}
        report = run_stage(config(tmp_path, {"sources": [source]}), "collect")
        assert report.counts["skipped"] == 1 and report.counts["documents"] == 1
        skipped = list(read_jsonl(Path("runs/t/collect/skipped.jsonl")))
        assert "일치하는 판례가 없습니다" in skipped[0]["reason"] and "OC=***" in skipped[0]["reason"]
        files = [p for p in Path("runs/t/collect").rglob("*") if p.is_file()]
        assert {"skipped.jsonl", "manifest.json", "documents.jsonl"} <= {p.name for p in files}
        assert any(p.parent.name == "lawService-prec" for p in files)  # the detail is cached
        for path in files:
            assert OC not in path.read_text(encoding="utf-8", errors="replace") and OC not in str(path), path

        server.route(
            "lawService.do",
            {"target": "prec", "ID": "3"},
            Reply.text(not_found_page.replace("일치하는 판례가 없습니다", "미신청된 목록/본문에 대한 접근입니다")),
        )
        source["ids"] = ["3"]
        with pytest.raises(SlmError) as info:
            run_stage(config(tmp_path, {"sources": [source]}), "collect")
    assert "미신청된 목록/본문" in info.value.message and OC not in info.value.message + info.value.hint


def test_a_streamed_file_that_breaks_half_way_contributes_nothing(tmp_path):
    """Records are written as they are read; a file that breaks after some of them is rolled back entirely."""
    records = json.loads((FIXTURES / "seed/data_main.json").read_text(encoding="utf-8"))
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "a_broken.json").write_text(json.dumps(records + ["not a record"], ensure_ascii=False), encoding="utf-8")
    (dump / "b_truncated.json").write_bytes(json.dumps(records, ensure_ascii=False).encode()[:-40])
    (dump / "c_good.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    report = run_stage(config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump)}]}), "collect")
    assert (report.counts["documents"], report.counts["skipped"], report.counts["duplicates"]) == (3, 2, 0)
    skipped = {Path(s["input"]).name: s for s in read_jsonl(Path("runs/t/collect/skipped.jsonl"))}
    assert skipped["a_broken.json"]["reason"] == "record 3 is a str, expected an object"
    assert skipped["b_truncated.json"]["reason"].startswith("truncated JSON")
    assert [d.meta["index"] for d in documents()] == [0, 1, 2]
    assert {d.source for d in documents()} == {f"dump:{(dump / 'c_good.json').as_posix()}"}
    assert report.manifest.stats["encodings"] == {"utf-8": 1}
