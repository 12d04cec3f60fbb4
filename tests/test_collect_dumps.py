"""Dump files: shape detection, encodings, malformed files reported with their position."""

from __future__ import annotations

import codecs
import json
import shutil
from pathlib import Path

import pytest

from slm_forest.config import DumpSource
from slm_datagen.collect.bundled import DATA_DIR, read_bundled_file
from slm_datagen.collect.dumps import dump_files, read_dump_file
from slm_datagen.collect.encodings import decode_bytes
from slm_datagen.collect.problems import InputProblem

FIXTURES = Path(__file__).parent / "fixtures" / "collect"


def read(path: Path, **kw):
    return read_dump_file(path, DumpSource(path=str(path), **kw))


@pytest.mark.parametrize(
    "relative, kind, n",
    [
        ("lawgo/law_quirks.json", "statute_article", 4),
        ("lawgo/law_pair.xml", "statute_article", 2),
        ("lawgo/prec_detail.xml", "precedent", 1),
        ("lawgo/expc_detail.json", "interpretation", 1),
        ("seed/data_main.json", "interpretation", 3),
    ],
)
def test_fixture_shapes_are_detected(relative, kind, n):
    result = read(FIXTURES / relative)
    assert result.problem is None, result.problem
    assert len(result.documents) == n and {d.kind for d in result.documents} == {kind}
    assert result.documents[0].source == f"dump:{(FIXTURES / relative).as_posix()}"


def test_real_shared_files_are_detected(shared_dir):
    corpus = shared_dir / "corpus"
    precedents = [read(p) for p in sorted((corpus / "precedents").glob("*.md"))]
    assert [r.documents[0].case_no for r in precedents] == ["70누105", "2022두64143"]
    decided = precedents[1].documents[0]
    assert decided.decision_date == "2024-09-12" and decided.meta["판례일련번호"] == "241591"
    assert decided.holdings.startswith("구 상속세 및 증여세법 제3조의2")
    casebook = read(corpus / "rulings/nts_casebook_2025.json").documents
    assert len(casebook) == 96 and casebook[0].doc_no == "서면-2023-법규기본-2039"
    assert casebook[0].decision_date == "2023-09-22" and casebook[0].field_of_law == "국기"
    assert [r.label() for r in casebook[1].references] == ["국세기본법 제26조의2", "국세기본법 시행령 제12조의3"]
    units = read(corpus / "statutes/statute_units_real_text.jsonl").documents
    assert len(units) == 21
    assert {d.law_name for d in units} >= {"국세기본법", "법인세법 시행령", "조세범 처벌법"}
    # a search-list response holds no text: reported, not silently empty
    listing = read(corpus / "lawgo/eflaw_search_소득세법시행령_trimmed_real.xml")
    assert "list response" in listing.problem.message


def test_unit_rows_and_the_bundled_lawservice_files_give_the_same_articles(shared_dir):
    units = read(shared_dir / "corpus/statutes/statute_units_real_text.jsonl").documents
    bundled = [d for p in sorted((DATA_DIR / "statutes").glob("lawService_*.json")) for d in read_bundled_file(p)]
    key = lambda d: (d.law_name, d.article_no, d.article_branch, d.effective_date)  # noqa: E731
    by_key = {key(d): d for d in units}
    assert len(bundled) == 19
    for doc in bundled:
        assert (doc.id, doc.text, doc.amendments) == (by_key[key(doc)].id, by_key[key(doc)].text, by_key[key(doc)].amendments)


def test_seed_judgment_sections():
    docs = read(FIXTURES / "seed/data_main.json").documents
    first, bracketed, plain = docs
    assert first.question == "공동소유 주택의 경우 주택 수를 어떻게 계산하는지"
    assert "【사실관계】\n질의자는 배우자와 주택 1채를 50%씩 공동소유하고 있음" in first.text
    assert "PDF로 보기" not in first.text and first.answer.startswith("공동소유 주택은")
    assert first.related_laws == ["소득세법 제12조", "소득세법 시행령 제8조의2"]
    assert first.decision_date == "2024-03-15" and first.field_of_law == "소득"
    assert bracketed.question == "신용카드매출전표 발급 세액공제의 연간 한도" and bracketed.decision_date == "2025-01-10"
    assert plain.question == "납세증명서 제출 대상인지 묻는 질의입니다."  # no headers: the page text is the question


# -------------------------------------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("codec, expected", [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp949", "cp949"),
                                             ("euc-kr", "cp949"), ("utf-16", "utf-16")])
def test_encodings_are_detected_and_converted(tmp_path, codec, expected):
    text = (FIXTURES / "lawgo/law_single_dict.json").read_text(encoding="utf-8")
    path = tmp_path / "law.json"
    path.write_bytes(text.encode(codec))
    result = read(path)
    assert result.problem is None and result.encoding == expected
    assert result.documents[0].text.startswith("제3조(과세문서 및 세액)\n① 인지세를")


def test_declared_encoding_is_used_as_given(tmp_path):
    path = tmp_path / "law.json"
    path.write_bytes((FIXTURES / "lawgo/law_single_dict.json").read_text(encoding="utf-8").encode("cp949"))
    assert read(path, encoding="cp949").documents[0].law_name == "인지세법"
    assert "not valid utf-8" in read(path, encoding="utf-8").problem.message


def test_latin1_bytes_are_not_mistaken_for_cp949():
    with pytest.raises(InputProblem) as info:
        decode_bytes("café crème brûlée".encode("latin-1"))
    assert "neither UTF-8 nor CP949" in info.value.message and info.value.where.startswith("line 1, column 4")


# ------------------------------------------------------------------------------------------------ malformed files
def _malformed(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (path, expected message part, expected position part)."""
    good = (FIXTURES / "lawgo/law_pair.json").read_text(encoding="utf-8")
    before_nul = good.encode()[:40].decode()
    nul_at = f"line {before_nul.count(chr(10)) + 1}, column {len(before_nul.split(chr(10))[-1]) + 1}"
    cases = {
        "truncated.json": (good[: len(good) // 2].encode(), "truncated JSON", "line "),
        "other_schema.xml": (b'<?xml version="1.0"?><rss><channel><title>news</title></channel></rss>',
                             "unrecognised shape", ""),
        "nul.json": (good.encode()[:40] + b"\x00\x00\x00" + good.encode()[40:], "NUL bytes", nul_at),
        "empty.json": (b"", "empty file", ""),
        "undecodable.json": (b"{\n\xff\xfe\xfa" + good.encode()[2:], "undecodable bytes", "line 2, column 1 (byte 2)"),
        "one_long_line.jsonl": (b'{"broken": "' + b"x" * (50 * 1024 * 1024), "truncated JSON (Unterminated string", "line 1, column 12"),
        "error_envelope.json": ((FIXTURES / "lawgo/errors/auth_failure.json").read_bytes(),
                                "사용자 정보 검증에 실패하였습니다", ""),
        "maintenance.html": ((FIXTURES / "lawgo/errors/maintenance.html").read_bytes(), "서비스 점검 중입니다", ""),
    }
    out = {}
    for name, (data, message, where) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        out[name] = (path, message, where)
    return out


def test_each_malformed_file_is_reported_with_its_position(tmp_path):
    for name, (path, message, where) in _malformed(tmp_path).items():
        result = read(path)
        assert result.documents == [], name
        assert result.problem is not None and message in result.problem.message, (name, result.problem)
        assert where in result.problem.where, (name, result.problem.where)


def test_directory_listing_is_sorted_recursive_and_skips_hidden_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    for rel in ("b/2.json", "a.json", ".git/x.json", "b/.hidden.json"):
        (tmp_path / rel).write_text("{}", encoding="utf-8")
    files = dump_files(DumpSource(path=str(tmp_path)), "collect.sources.0")
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a.json", "b/2.json"]
    only = dump_files(DumpSource(path=str(tmp_path), glob="b/*.json"), "collect.sources.0")
    assert [p.name for p in only] == ["2.json"]


def test_declared_format_that_does_not_match_is_reported():
    result = read(FIXTURES / "lawgo/prec_detail.json", format="lawgo_law")
    assert "format is set to lawgo_law" in result.problem.message


def test_seed_layout_directory(tmp_path):
    """The seed's tax-law-gen-raw-data layout: tax-law-openapi/<law>.json + tax-law-judgment/data_main.json."""
    (tmp_path / "tax-law-openapi").mkdir()
    (tmp_path / "tax-law-judgment").mkdir()
    shutil.copy(FIXTURES / "lawgo/law_quirks.json", tmp_path / "tax-law-openapi/조세특례제한법.json")
    shutil.copy(FIXTURES / "seed/data_main.json", tmp_path / "tax-law-judgment/data_main.json")
    source = DumpSource(path=str(tmp_path))
    results = [read_dump_file(p, source) for p in dump_files(source, "w")]
    assert [len(r.documents) for r in results] == [3, 4]  # tax-law-judgment sorts first
    assert all(r.problem is None for r in results)


def test_bom_prefixed_json_lines(tmp_path):
    rows = [{"법령명": "소득세법", "시행본": "20240101", "조": "제6조", "항": "", "호": "", "text": "제6조(납세지) 거주자의 납세지는 주소지로 한다."}]
    path = tmp_path / "units.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode())
    (doc,) = read(path).documents
    assert doc.text == "제6조(납세지) 거주자의 납세지는 주소지로 한다." and doc.effective_date == "2024-01-01"


def test_make_bundled_reproduces_the_shipped_statute_files(shared_dir, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_bundled", DATA_DIR / "make_bundled.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.convert_units(shared_dir / "corpus/statutes/statute_units_real_text.jsonl", tmp_path)
    shipped = sorted((DATA_DIR / "statutes").glob("lawService_*.json"))
    assert [p.name for p in sorted(written)] == [p.name for p in shipped]
    for path in shipped:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
