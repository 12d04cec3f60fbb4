"""`slm index` and `search`: cited articles first, the version in force on a date, Korean morphemes (particles never
block a match), the index reused by the runner, and one-line errors for bad input. Recall on the bundled corpus is
in tests/test_index_recall.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slm_datagen.index import load_index, search
from slm_datagen.index.build import build_index
from slm_datagen.index.terms import TermAnalyser
from slm_forest.cli import app
from slm_forest.config import IndexConfig, load_config
from slm_forest.errors import SlmError
from slm_forest.files import write_jsonl
from slm_forest.manifest import Manifest, describe_files, write_manifest
from slm_forest.pipeline import run_stage
from slm_forest.records import Chunk

_N = iter(range(10_000))


def statute(law: str, article: int, title: str, text: str, effective: str, position: int = 0) -> Chunk:
    n = next(_N)
    return Chunk(
        id=f"chunk-{n:04d}",
        doc_id=f"law-{law}-{article}-{effective}",
        kind="statute_article",
        title=f"{law} 제{article}조({title})",
        text=f"제{article}조({title})\n{text}",
        citation=f"{law} 제{article}조",
        law_name=law,
        article_no=article,
        effective_date=effective,
        position=position,
    )


def ruling(doc_no: str, question: str, answer: str) -> Chunk:
    return Chunk(
        id=f"chunk-r{next(_N):04d}",
        doc_id=f"intp-{doc_no}",
        kind="interpretation",
        title=question,
        text=f"【질의요지】\n{question}\n\n【회답】\n{answer}",
        citation=doc_no,
        question=question,
        answer=answer,
    )


CHUNKS = [
    statute(
        "소득세법",
        55,
        "세율",
        "① 거주자의 종합소득에 대한 소득세는 종합소득 과세표준에 다음의 세율을 적용하여 계산한 금액으로 한다.\n"
        "1. 1,400만원 이하: 과세표준의 6퍼센트",
        "2023-01-01",
    ),
    statute(
        "소득세법",
        55,
        "세율",
        "② 거주자의 퇴직소득에 대한 소득세는 퇴직소득 과세표준에 제1항의 세율을 적용하여 계산한 금액으로 한다.",
        "2023-01-01",
        position=1,
    ),
    statute(
        "소득세법",
        55,
        "세율",
        "① 거주자의 종합소득에 대한 소득세는 종합소득 과세표준에 다음의 세율을 적용하여 계산한 금액으로 한다.\n"
        "1. 1,400만원 이하: 과세표준의 6퍼센트 (개정 후 문안: 기본세율 인하)",
        "2025-01-01",
    ),
    statute(
        "상속세 및 증여세법",
        53,
        "증여재산 공제",
        "거주자가 다음 각 호의 어느 하나에 해당하는 사람으로부터 증여를 받은 경우에는 증여재산공제를 증여세 "
        "과세가액에서 공제한다.\n1. 배우자로부터 증여를 받은 경우: 6억원",
        "2024-01-01",
    ),
    statute(
        "국세기본법",
        22,
        "수정신고의 효력",
        "① 국세의 수정신고는 당초의 신고에 따라 확정된 과세표준과 세액을 증액하여 확정하는 효력을 가진다.",
        "2024-01-01",
    ),
    statute("조세특례제한법", 99, "과세특례", "① 특례는 2030년 1월 1일부터 적용한다.", "2030-01-01"),
    ruling(
        "서면-2024-법규소득-0001",
        "퇴직소득에 대한 소득세 계산 방법",
        "퇴직소득에 대한 소득세는 소득세법 제55조제2항에 따라 계산하는 것임",
    ),
]


def build(tmp_path: Path, chunks: list[Chunk] = CHUNKS, **settings: object) -> Path:
    source = tmp_path / "chunks.jsonl"
    write_jsonl(source, chunks)
    out = tmp_path / "index"
    build_index(source, out, IndexConfig(**settings))
    return out


@pytest.fixture
def index(tmp_path):
    loaded = load_index(build(tmp_path))
    yield loaded
    loaded.close()


# -------------------------------------------------------------------------------------------- exact look-up
def test_a_cited_article_comes_first_even_when_other_texts_share_more_words(index):
    result = search(index, "퇴직소득에 대한 소득세 계산 방법과 국세기본법 제22조", k=3, as_of="2025-06-01")
    first = result.hits[0]
    assert (first.citation, first.match, first.cited_as) == ("국세기본법 제22조", "citation", "국세기본법 제22조")
    assert result.cited == ["국세기본법 제22조"] and result.missing == []
    assert first.effective_date == "2024-01-01" and first.in_force is True
    assert "수정신고" in first.text and first.rank == 1
    assert [hit.rank for hit in result.hits] == [1, 2, 3]


def test_a_cited_paragraph_picks_the_chunk_that_holds_it(index):
    second = search(index, "소득세법 제55조 제2항", k=1, as_of="2024-06-01").hits[0]
    assert second.cited_as == "소득세법 제55조 제2항" and second.text.splitlines()[1].startswith("②")
    first = search(index, "소득세법 제55조 제1항", k=1, as_of="2024-06-01").hits[0]
    assert first.text.splitlines()[1].startswith("①")


def test_law_in_context_resolves_a_bare_beop_citation(index):
    with_law = search(index, "법 제55조의 세율은?", k=2, as_of="2024-06-01", law="소득세법")
    assert with_law.hits[0].citation == "소득세법 제55조" and with_law.hits[0].match == "citation"
    without = search(index, "법 제55조의 세율은?", k=2, as_of="2024-06-01")
    assert without.cited == [] and all(hit.match == "bm25" for hit in without.hits)


def test_a_cited_article_the_index_does_not_hold_is_reported(index):
    result = search(index, "소득세법 제999조와 「상속세 및 증여세법」 제53조", k=3, as_of="2025-06-01")
    assert result.missing == ["소득세법 제999조"]
    assert result.cited == ["상속세 및 증여세법 제53조"] and result.hits[0].citation == "상속세 및 증여세법 제53조"


def test_nts_shorthand_names_the_same_article(index):
    hit = search(index, "상증법 제53조", k=1, as_of="2025-06-01").hits[0]
    assert hit.citation == "상속세 및 증여세법 제53조" and hit.match == "citation"


# ----------------------------------------------------------------------------------------------- versions
@pytest.mark.parametrize(("as_of", "expected"), [("2024-06-01", "2023-01-01"), ("2025-01-01", "2025-01-01")])
def test_the_version_in_force_on_the_date_is_the_one_returned(index, as_of, expected):
    cited = search(index, "소득세법 제55조 제1항", k=1, as_of=as_of).hits[0]
    assert cited.effective_date == expected and cited.in_force is True
    # BM25 never returns a superseded version either, however well its words match.
    hits = search(index, "종합소득 과세표준 세율 1400만원 6퍼센트", k=10, as_of=as_of).hits
    versions = {hit.effective_date for hit in hits if hit.citation == "소득세법 제55조" and "①" in hit.text}
    assert versions == {expected}


def test_before_every_version_held_the_earliest_is_returned_marked_not_in_force(index):
    hit = search(index, "조세특례제한법 제99조", k=1, as_of="2026-01-01").hits[0]
    assert hit.effective_date == "2030-01-01" and hit.in_force is False
    assert search(index, "조세특례제한법 제99조", k=1, as_of="2030-01-01").hits[0].in_force is True


def test_rulings_have_no_version_and_are_always_searchable(index):
    hits = search(index, "퇴직소득 소득세 계산 방법", k=5, as_of="2000-01-01").hits
    ruling_hit = next(hit for hit in hits if hit.kind == "interpretation")
    assert ruling_hit.in_force is None and ruling_hit.effective_date is None


# ---------------------------------------------------------------------------------------------- morphemes
def test_particles_do_not_block_a_match():
    analyser = TermAnalyser(IndexConfig().tags)
    plain = set(analyser.terms("증여재산공제"))
    assert {"증여", "재산", "공제", "증여재산공제"} <= plain
    for inflected in ("증여재산공제는", "증여재산공제를", "증여재산공제의"):
        assert plain <= set(analyser.terms(inflected)), inflected
    assert "는" not in analyser.terms("증여재산공제는")


def test_numbers_keep_their_digits_and_lose_their_commas():
    analyser = TermAnalyser(IndexConfig().tags)
    assert analyser.terms("제55조제1항에") == analyser.terms("제55조 제1항에") == ["55", "1", "항"]
    assert "12" in analyser.terms("제12조제3항에")  # the same digit-masked shape, its own digits
    assert "1400" in analyser.terms("1,400만원")


def test_a_question_with_particles_finds_the_article_without_citing_it(index):
    result = search(index, "증여재산공제는 얼마인가요?", k=3, as_of="2025-06-01")
    assert result.cited == [] and result.hits[0].citation == "상속세 및 증여세법 제53조"
    assert result.hits[0].match == "bm25" and result.hits[0].score > 0


# ------------------------------------------------------------------------------------- title subject, law name
RIVALS = [
    statute(
        "국세징수법",
        41,
        "압류금지 재산",
        "다음 각 호의 재산은 압류할 수 없다.\n1. 체납자 또는 그와 생계를 같이 하는 가족의 생활에 없어서는 아니 될 의복",
        "2024-01-01",
    ),
    statute(
        "국세징수법",
        31,
        "압류의 효력",
        "세무서장은 압류금지 재산이 아닌 재산을 압류하고, 압류한 재산을 보관한다.",
        "2024-01-01",
    ),
    statute("소득세법", 55, "세율", "① 종합소득 과세표준에 다음의 세율을 적용하여 계산한 금액으로 한다.", "2024-01-01"),
    statute(
        "법인세법",
        55,
        "세율",
        "① 내국법인의 각 사업연도의 소득에 대한 법인세는 과세표준에 다음 표의 세율을 적용하여 계산한 금액으로 한다. "
        "과세표준 세율",
        "2024-01-01",
    ),
]


@pytest.fixture
def rivals(tmp_path):
    loaded = load_index(build(tmp_path, RIVALS))
    yield loaded
    loaded.close()


def test_a_query_naming_an_articles_subject_lifts_it_over_texts_with_more_of_its_words(rivals, monkeypatch):
    import importlib

    search_module = importlib.import_module("slm_datagen.index.search")  # the package's `search` is the function
    query = "압류금지 재산에는 어떤 것이 있나요?"
    assert search(rivals, query, k=2, as_of="2025-01-01").hits[0].citation == "국세징수법 제41조"
    monkeypatch.setattr(search_module, "TITLE_WEIGHT", 0.0)  # text alone: the article that repeats the words wins
    assert search(rivals, query, k=2, as_of="2025-01-01").hits[0].citation == "국세징수법 제31조"


def test_a_query_naming_a_law_lifts_that_laws_articles(rivals):
    def first(query: str, law: str | None = None) -> str:
        return search(rivals, query, k=2, as_of="2025-01-01", law=law).hits[0].citation

    assert first("과세표준에 적용하는 세율은?") == "법인세법 제55조"  # more of the words: the other law's article
    assert first("소득세법상 과세표준에 적용하는 세율은?") == "소득세법 제55조"
    assert first("과세표준에 적용하는 세율은?", law="소득세법") == "소득세법 제55조"  # the law in context


def test_a_query_sharing_no_term_returns_no_hit(index):
    assert search(index, "zzqx", k=5, as_of="2025-06-01").hits == []


# ------------------------------------------------------------------------------------------------ the stage
def _hand_made_prepare(chunks: list[Chunk]) -> None:
    prepare = Path("runs") / "t" / "prepare"
    write_jsonl(prepare / "chunks.jsonl", chunks)
    manifest = Manifest(
        stage="prepare",
        run_name="t",
        complete=True,
        fingerprint="hand-made",
        config={},
        outputs=describe_files([prepare / "chunks.jsonl"], Path("runs") / "t"),
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:00+00:00",
        seconds=0.0,
    )
    write_manifest(prepare, manifest)


def test_the_stage_writes_its_files_then_a_rerun_skips_and_a_changed_setting_rebuilds():
    _hand_made_prepare(CHUNKS)
    cfg = load_config(None, ["run_name=t"])
    report = run_stage(cfg, "index")
    assert report.complete and not report.skipped
    counts = report.counts
    assert (counts["chunks"], counts["articles"], counts["statute_chunks"], counts["skipped_kinds"]) == (7, 4, 6, 0)
    assert counts["terms"] > 50
    listed = {entry.path for entry in report.manifest.outputs}
    assert {"index/chunks.jsonl", "index/index.json", "index/docs.npz", "index/bm25/params.index.json"} <= listed
    assert not [p for p in (Path("runs") / "t" / "index").rglob(".*") if p.name != "manifest.json"]
    assert run_stage(cfg, "index").skipped
    rebuilt = run_stage(load_config(None, ["run_name=t", "index.kinds=[statute_article]"]), "index")
    assert not rebuilt.skipped and rebuilt.counts["chunks"] == 6 and rebuilt.counts["skipped_kinds"] == 1


def test_slm_index_query_prints_hits_and_json(monkeypatch):
    _hand_made_prepare(CHUNKS)
    config = Path("t.yaml")
    config.write_text("run_name: t\n", encoding="utf-8")
    runner = CliRunner()
    shown = runner.invoke(app, ["index", str(config), "--query", "국세기본법 제22조", "--as-of", "2025-01-01"])
    assert shown.exit_code == 0, shown.output
    assert "1. 국세기본법 제22조" in shown.output and "시행 2024-01-01" in shown.output
    as_json = runner.invoke(app, ["index", str(config), "-q", "증여재산공제는?", "--k", "2", "--json"])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.output[as_json.output.index("{") :])
    assert payload["hits"][0]["citation"] == "상속세 및 증여세법 제53조" and len(payload["hits"]) <= 2


# ------------------------------------------------------------------------------------------------ bad input
def test_a_malformed_chunks_line_names_the_file_and_line(tmp_path):
    source = tmp_path / "chunks.jsonl"
    good = CHUNKS[0].model_dump_json()
    source.write_text(f"{good}\n{{not json\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"chunks\.jsonl:2: not a chunk record"):
        build_index(source, tmp_path / "index", IndexConfig())
    source.write_text(f"{good}\n" + json.dumps({"id": "x", "kind": "statute_article"}) + "\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"chunks\.jsonl:2: not a chunk record \(doc_id: Field required\)"):
        build_index(source, tmp_path / "index", IndexConfig())
    assert not (tmp_path / "index" / "index.json").exists()


def test_a_bad_effective_date_and_no_chunk_of_the_kinds_are_errors(tmp_path):
    bad_date = CHUNKS[0].model_copy(update={"effective_date": "2024.01.01"})
    with pytest.raises(SlmError, match=r"chunks\.jsonl:1: effective_date '2024\.01\.01' is not a YYYY-MM-DD date"):
        build(tmp_path, [bad_date])
    with pytest.raises(SlmError, match="no chunk of the kinds precedent to index"):
        build(tmp_path, CHUNKS, kinds=["precedent"])


def test_bad_search_arguments_are_one_line_errors(index):
    with pytest.raises(SlmError, match="as_of '2025-13-01': not a YYYY-MM-DD date"):
        search(index, "세율", as_of="2025-13-01")
    with pytest.raises(SlmError, match="k=0"):
        search(index, "세율", k=0)
    with pytest.raises(SlmError, match="the search query is empty"):
        search(index, "   ")


def test_loading_something_that_is_not_an_index(tmp_path):
    with pytest.raises(SlmError, match="no retrieval index here"):
        load_index(tmp_path)
    out = build(tmp_path)
    (out / "docs.npz").unlink()
    with pytest.raises(SlmError, match="incomplete or damaged"):
        load_index(out)
    meta = json.loads((out / "index.json").read_text(encoding="utf-8"))
    (out / "index.json").write_text(json.dumps({**meta, "format": 0}), encoding="utf-8")
    with pytest.raises(SlmError, match="index format 0 but this version reads format"):
        load_index(out)


def test_the_cli_refuses_to_search_a_switched_off_or_missing_index():
    runner = CliRunner()
    Path("t.yaml").write_text("run_name: t\nindex:\n  enabled: false\n", encoding="utf-8")
    _hand_made_prepare(CHUNKS)
    off = runner.invoke(app, ["index", "t.yaml", "--query", "세율"])
    assert isinstance(off.exception, SlmError) and "index.enabled is false" in str(off.exception)
