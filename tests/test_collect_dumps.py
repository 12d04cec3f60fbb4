"""Dump files: shape detection, encodings, malformed files reported with their position."""

from __future__ import annotations

import codecs
import json
import shutil
from pathlib import Path

import pytest

from slm_datagen.collect.bundled import DATA_DIR, read_bundled_file
from slm_datagen.collect.dumps import dump_files, read_dump_file
from slm_datagen.collect.encodings import decode_bytes
from slm_datagen.collect.jsonstream import iter_json_array
from slm_datagen.collect.problems import InputProblem
from slm_forest.config import DumpSource

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
        assert (doc.id, doc.text, doc.amendments) == (
            by_key[key(doc)].id,
            by_key[key(doc)].text,
            by_key[key(doc)].amendments,
        )


def test_seed_judgment_sections():
    docs = read(FIXTURES / "seed/data_main.json").documents
    first, bracketed, plain = docs
    assert first.question == "공동소유 주택의 경우 주택 수를 어떻게 계산하는지"
    assert "【사실관계】\n질의자는 배우자와 주택 1채를 50%씩 공동소유하고 있음" in first.text
    assert "PDF로 보기" not in first.text and first.answer.startswith("공동소유 주택은")
    assert first.related_laws == ["소득세법 제12조", "소득세법 시행령 제8조의2"]
    assert first.decision_date == "2024-03-15" and first.field_of_law == "소득"
    assert (
        bracketed.question == "신용카드매출전표 발급 세액공제의 연간 한도" and bracketed.decision_date == "2025-01-10"
    )
    assert plain.question == "납세증명서 제출 대상인지 묻는 질의입니다."  # no headers: the page text is the question


# -------------------------------------------------------------------------------------------------------- encodings
@pytest.mark.parametrize(
    "codec, expected",
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp949", "cp949"), ("euc-kr", "cp949"), ("utf-16", "utf-16")],
)
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
        "other_schema.xml": (
            b'<?xml version="1.0"?><rss><channel><title>news</title></channel></rss>',
            "unrecognised shape",
            "",
        ),
        "nul.json": (good.encode()[:40] + b"\x00\x00\x00" + good.encode()[40:], "NUL bytes", nul_at),
        "empty.json": (b"", "empty file", ""),
        "undecodable.json": (b"{\n\xff\xfe\xfa" + good.encode()[2:], "undecodable bytes", "line 2, column 1 (byte 2)"),
        "one_long_line.jsonl": (
            b'{"broken": "' + b"x" * (50 * 1024 * 1024),
            "truncated JSON (Unterminated string",
            "line 1, column 12",
        ),
        "error_envelope.json": (
            (FIXTURES / "lawgo/errors/auth_failure.json").read_bytes(),
            "사용자 정보 검증에 실패하였습니다",
            "",
        ),
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
    rows = [
        {
            "법령명": "소득세법",
            "시행본": "20240101",
            "조": "제6조",
            "항": "",
            "호": "",
            "text": "제6조(납세지) 거주자의 납세지는 주소지로 한다.",
        }
    ]
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


# ------------------------------------------------------------------------------------- truncated inside a character
def _cuts_inside_characters(data: bytes, count: int = 6) -> list[int]:
    """Byte offsets spread over the data where a cut splits a multi-byte (Hangul) character."""
    inside = [i for i in range(len(data)) if 0x80 <= data[i] < 0xC0]  # UTF-8 continuation bytes
    step = max(1, len(inside) // count)
    return inside[step // 2 :: step][:count]


@pytest.mark.parametrize(
    "fixture, kind",
    [
        ("lawgo/law_pair.json", "JSON"),
        ("seed/data_main.json", "JSON"),
        ("lawgo/law_quirks.json", "JSON"),
        ("lawgo/law_pair.xml", "XML"),
    ],
)
def test_a_file_cut_inside_a_hangul_character_is_reported_as_truncated(tmp_path, fixture, kind):
    data = (FIXTURES / fixture).read_bytes()
    cuts = _cuts_inside_characters(data)
    assert len(cuts) == 6
    for offset in cuts:
        path = tmp_path / f"cut{offset}{Path(fixture).suffix}"
        path.write_bytes(data[:offset])
        result = read(path)
        assert result.documents == [] and result.problem is not None, offset
        assert result.problem.message.startswith(f"truncated {kind} ("), (offset, result.problem)
        assert result.encoding == "utf-8"
        if kind == "JSON":  # the text stops on the last line, and that is where it is reported
            last_line = data[:offset].count(b"\n") + 1
            assert result.problem.where.startswith(f"line {last_line}, column "), (offset, result.problem.where)


def test_decoding_drops_only_an_incomplete_character_at_the_very_end():
    data = '{"법령명": "소득세법'.encode()
    for cut in (1, 2):  # 법 is 3 bytes: 1 or 2 of them left
        assert decode_bytes(data[:-cut]) == ('{"법령명": "소득세', "utf-8")
        assert decode_bytes(codecs.BOM_UTF8 + data[:-cut]) == ('{"법령명": "소득세', "utf-8-sig")
    with pytest.raises(InputProblem, match="undecodable bytes"):  # a broken character before the end still is one
        decode_bytes("소득".encode()[:-1] + b" tail")


# ------------------------------------------------------------------------------------ streaming a top-level array
def _seed_record(index: int, size: int = 2000) -> dict:
    facts = (
        '질의자는 배우자와 주택 1채를 50%씩 공동소유하고 있으며 "임대" 중임, 금액 1,500,000원 ' * (size // 50 + 1)
    )[:size]
    return {
        "index": index,
        "title": f"주택임대소득 비과세 대상 주택 수 계산 {index}",
        "summary": "공동소유 주택의 주택 수 계산 [요약], {괄호}",
        "response": f"공동소유 주택은 지분이 가장 큰 사람의 소유로 계산합니다 ({index}).",
        "content": f"사실관계\n{facts}\n질의요지\n공동소유 주택의 경우 주택 수를 어떻게 계산하는지 \\u 아님 {index}",
        "metadata": {
            "date": "2024.3.15.",
            "law_category": "소득",
            "related_docs": [],
            "score": index * 1.5,
            "flags": [True, False, None, -12, 3e-7],
            "related_laws": ["소득세법 제12조"],
        },
    }


def test_streamed_array_items_equal_json_loads_at_any_chunk_size():
    text = json.dumps(
        [_seed_record(i, 300) for i in range(40)] + [12345678901234567890, -0.5e10, "끝]", [], {}],
        ensure_ascii=False,
        indent=1,
    )
    expected = json.loads(text)
    for size in (1, 7, 64, 4096, len(text)):
        chunks = (text[i : i + size] for i in range(0, len(text), size))
        assert list(iter_json_array(chunks)) == expected, size


@pytest.mark.parametrize(
    "text, message, where",
    [
        ('[{"a": 1}, {"b": "소득', "truncated JSON (Unterminated string", "line 1, column 18"),
        ('[{"a": 1},\n {"b": 2}', "truncated JSON (Expecting ',' delimiter", "line 2, column 10"),
        ('[{"a": 1},\n', "truncated JSON (Expecting value", "line 2, column 1"),
        ('[{"a": 1}\n {"b": 2}]', "not valid JSON (Expecting ',' delimiter", "line 2, column 2"),
        ('[{"a": 1}, {"b": tru}]', "not valid JSON (Expecting value", "line 1, column 18"),
        ('[{"a": 1}] x', "not valid JSON (Extra data", "line 1, column 12"),
    ],
)
def test_streamed_array_errors_carry_the_position(text, message, where):
    """Same messages and positions as json.loads on the whole text, wherever the chunks are cut."""
    for size in (3, 1000):
        chunks = (text[i : i + size] for i in range(0, len(text), size))
        with pytest.raises(InputProblem) as info:
            list(iter_json_array(chunks))
        assert info.value.message.startswith(message) and info.value.where == where, (size, info.value)


_MEASURE = r"""
import json, resource, sys
from pathlib import Path
from slm_forest.config import DumpSource
from slm_datagen.collect.dumps import DumpFile
small, big = Path(sys.argv[1]), Path(sys.argv[2])
for doc in DumpFile(small, DumpSource(path=str(small))).documents():  # warm up: imports, regexes, pydantic
    pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
count = sum(1 for _ in DumpFile(big, DumpSource(path=str(big))).documents())
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"documents": count, "grown_kb": grown}))
"""


def test_a_large_seed_array_is_read_with_bounded_memory(tmp_path):
    """200 MB of data_main.json took 1.2 GB when read whole; streamed, memory does not grow with the file."""
    big = tmp_path / "data_main.json"
    records = 0
    with open(big, "w", encoding="utf-8") as out:
        out.write("[\n")
        while out.tell() < 30_000_000:
            out.write(("" if records == 0 else ",\n") + json.dumps(_seed_record(records, 40_000), ensure_ascii=False))
            records += 1
        out.write("\n]\n")
    size_kb = big.stat().st_size / 1024
    small = tmp_path / "small.json"
    small.write_text(json.dumps([_seed_record(0)], ensure_ascii=False), encoding="utf-8")
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(small), str(big)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    assert measured["documents"] == records
    assert measured["grown_kb"] < size_kb / 5, (measured, size_kb)  # reading it whole grows by ~3× the file


def test_streamed_documents_equal_the_whole_file_parse(tmp_path):
    """The streamed reader gives exactly the documents of parsing the file at once (small chunks on purpose)."""
    from slm_datagen.collect.dumps import DumpFile
    from slm_datagen.collect.shapes import documents_from_text

    path = tmp_path / "data_main.json"
    path.write_text(json.dumps([_seed_record(i, 500) for i in range(30)], ensure_ascii=False, indent=2), "utf-8")
    source = DumpSource(path=str(path))
    streamed = list(DumpFile(path, source, chunk_bytes=997).documents())
    whole = list(documents_from_text(path.read_text(encoding="utf-8"), source=f"dump:{path.as_posix()}"))
    assert [d.model_dump() for d in streamed] == [d.model_dump() for d in whole] and len(streamed) == 30


# ------------------------------------------------------------------------------------------------ casebook footer
def test_casebook_page_footers_never_become_data():
    """The PDF's page footer (집필진 … staff names … 문의사항 (044) 204-31xx, 발행일자 …) is glued to 관련법령."""
    docs = read_bundled_file(DATA_DIR / "rulings/nts_casebook_2025.json")
    by_id = {d.meta["id"]: d for d in docs}
    assert by_id[7].related_laws == ["국세기본법 제52조", "국세기본법 시행령 제43조의3"]
    assert by_id[96].related_laws == ["조세특례제한법 제104조의19"]
    assert by_id[59].related_laws == ["조특법 제64조", "(공익법인)"]  # as split_related_laws reads the casebook
    for doc in docs:
        for text in (doc.text, *doc.related_laws):
            for junk in ("집필진", "발행일자", "발행처", "문의사항", "204-31", "박 소 영", "행정사무관", "국세조사관"):
                assert junk not in text, (doc.meta["id"], junk)


def test_casebook_footer_cut_keeps_everything_before_it():
    from slm_datagen.collect.casebook import strip_footer

    assert strip_footer(
        "소득세법 제12조 【비과세소득】 집필진 징세법무국 법규과 서 기 관 전 준 희 문의사항 (044) 204-3127~31"
    ) == ("소득세법 제12조 【비과세소득】")
    kept = "가상법 제1조 【문의사항의 처리】 가상법 제2조 【발행일자】"  # markers inside a 조문 title stay
    assert strip_footer(kept) == kept and strip_footer([kept, "a 발행일자 2025년"]) == [kept, "a"]
    assert strip_footer(None) is None
