"""`distill.imports`: each format read, malformed files named by file:line, linking to chunks, the fingerprint, and
the seed project's famous wrong 증여세 sample imported, rejected by the real build, and accepted once corrected."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from slm_datagen.distill.import_formats import RawPair, read_pair_file
from slm_datagen.distill.imports import (
    ChunkIndex,
    ChunkRef,
    build_chunk_index,
    input_signature,
    link_chunk,
    read_imports,
    to_import_pair,
)
from slm_forest.config import DistillConfig, ImportConfig, RunConfig, load_config
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, write_jsonl
from slm_forest.pipeline import run_stage
from slm_forest.records import Chunk, content_id

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "imports"

# The seed project's sample (tests/test_build_checks.py has the same wording): 증여세 on 20억원 with the brackets up
# to 5억원 only and no 증여재산공제 for a parent's gift.
SEED_QUESTION = "성인 자녀가 아버지로부터 현금 20억원을 증여받았습니다. 증여세는 얼마인가요?"
SEED_WRONG_ANSWER = (
    "증여세는 과세표준에 누진세율을 적용하여 계산합니다. 1억원 이하는 10%, 1억원 초과 5억원 이하는 20%입니다. "
    "따라서 20억원에 대한 증여세는 1,000만원 + 8,000만원 = 9,000만원입니다. 부모로부터 받은 증여는 공제가 적용되지 않습니다."
)
# What the calculator computes (slm_datagen/taxlaw/gift.py gift_tax, 2025): 공제 5,000만원, 과세표준 19억 5,000만원,
# 40 % − 누진공제 1억 6,000만원 = 산출세액 6억 2,000만원, 신고세액공제 3 % -> 납부할 세액 6억 140만원.
CORRECTED_ANSWER = (
    "성년 자녀가 부모에게 받은 증여에는 5,000만원의 증여재산공제가 적용되어 과세표준은 19억 5,000만원입니다. "
    "세율 40%와 누진공제 1억 6,000만원을 적용한 산출세액은 6억 2,000만원이며, 신고세액공제 3%를 빼면 "
    "납부할 세액은 6억 140만원입니다."
)


def copy_fixture(name: str, to: Path | None = None) -> Path:
    target = to or Path("pairs") / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / name, target)
    return target


def write(path: str, text: str, encoding: str = "utf-8") -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text.encode(encoding))
    return target


# ------------------------------------------------------------------------------------------------------- formats
def test_seed_format_keeps_lines_types_and_sources():
    fmt, raws, skipped = read_pair_file(FIXTURES / "seed_sample.json", "auto", "seed_sample.json")
    assert fmt == "seed" and skipped == []
    assert [r.line for r in raws] == [2, 8, 14]  # the line each list element starts on (json.load gives none)
    assert raws[0].question == SEED_QUESTION and raws[0].answer == SEED_WRONG_ANSWER
    assert [r.audience for r in raws] == ["expert", "expert", "layperson"]  # the seed's teacher / student
    assert raws[1].original == {"type": "teacher", "source": "openapi"}


def test_alpaca_joins_instruction_and_input_and_reads_korean_audience():
    fmt, raws, _ = read_pair_file(FIXTURES / "alpaca.jsonl", "auto", "alpaca.jsonl")
    assert fmt == "alpaca"
    assert raws[0].question == (
        "다음 상황에서 소득세 납세지는 어디인지 알려 주세요.\n\n거주자 A는 서울에 주소지를 두고 부산에서 일하고 있습니다."
    )
    assert raws[1].question == "법인이 사업연도를 변경하려면 언제까지 신고해야 하나요?"  # empty input: no blank line
    assert (raws[0].audience, raws[1].audience) == (None, "expert")


def test_messages_keep_the_system_prompt_and_skip_multi_turn_conversations():
    fmt, raws, skipped = read_pair_file(FIXTURES / "messages.jsonl", "auto", "messages.jsonl")
    assert fmt == "messages" and len(raws) == 1
    assert raws[0].system == "당신은 한국 세법 전문가입니다." and raws[0].audience == "layperson"
    assert raws[0].question == "국세를 납부할 의무는 언제 성립하나요?"
    assert [(s.line, s.reason) for s in skipped] == [(2, "import_multi_turn")]


def test_csv_rows_are_numbered_by_the_line_they_start_on():
    fmt, raws, _ = read_pair_file(FIXTURES / "pairs.csv", "auto", "pairs.csv")
    assert fmt == "csv"
    assert [r.line for r in raws] == [2, 4]  # the first answer cell spans two lines
    assert "\n" in raws[0].answer and raws[0].original["id"] == "q-1"
    assert raws[0].original["source"] == "기준-2023-법규재산-0144"


def test_csv_in_cp949_with_korean_headers_and_tsv():
    write(
        "excel.csv",
        "질문,답변,대상\n부가세는 언제 신고하나요?,부가가치세는 과세기간 종료 후 25일 이내에 신고합니다.,일반인\n",
        "cp949",
    )
    fmt, raws, _ = read_pair_file(Path("excel.csv"), "auto", "excel.csv")
    assert fmt == "csv" and raws[0].question == "부가세는 언제 신고하나요?"
    write("pairs.tsv", "question\tanswer\n질문, 쉼표 포함\t답변입니다, 역시 쉼표\n")
    _, raws, _ = read_pair_file(Path("pairs.tsv"), "auto", "pairs.tsv")
    assert (raws[0].question, raws[0].answer) == ("질문, 쉼표 포함", "답변입니다, 역시 쉼표")


def test_a_seed_file_in_jsonl_and_an_explicit_format():
    write("seed.jsonl", json.dumps({"question": "질문입니다?", "answer": "답변입니다.", "type": "student"}) + "\n")
    fmt, raws, _ = read_pair_file(Path("seed.jsonl"), "seed", "seed.jsonl")
    assert fmt == "seed" and raws[0].audience == "layperson"


# -------------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("name", "text", "fmt", "expected"),
    [
        (
            "bad.json",
            '[\n  {"question": "q?", "answer": "a."},\n  {"question": "q2?" "answer": "a."}\n]',
            "auto",
            "bad.json:3: not valid JSON",
        ),
        (
            "bad.json",
            '[\n  {"question": "q?", "answer": "a."}\n  {"question": "q2?"}\n]',
            "seed",
            "bad.json:3: not valid JSON (expected ',' or ']'",
        ),
        (
            "bad.jsonl",
            '{"question": "q?", "answer": "a."}\n{"question": "q2?", answer}\n',
            "seed",
            "bad.jsonl:2: not valid JSON",
        ),
        ("cut.json", '[\n  {"question": "q?", "answer": "a."},\n', "seed", "cut.json:3: not valid JSON"),
        (
            "missing.json",
            '[\n  {"question": "q?", "answer": "a."},\n  {\n    "question": "q2?"\n  }\n]',
            "auto",
            "missing.json:3: seed record 'answer' is missing",
        ),
        ("blank.json", '[{"question": "  ", "answer": "a."}]', "seed", "blank.json:1: seed record 'question' is blank"),
        ("null.jsonl", '{"instruction": "q?", "output": null}\n', "alpaca", "null.jsonl:1: alpaca record 'output' is"),
        ("list.jsonl", '["q?", "a."]\n', "seed", "list.jsonl:1: expected a JSON object"),
        ("nocol.csv", "question,reply\nq?,a.\n", "auto", "nocol.csv:1: no 'answer' column (columns: question, reply)"),
        ("row.csv", "question,answer\nq?,a.\n,a2.\n", "auto", "row.csv:3: row 'question' is blank"),
        ("wide.csv", "question,answer\nq?,a.,extra\n", "csv", "wide.csv:2: more cells than header columns"),
        (
            "chat.jsonl",
            '{"messages": [{"role": "user", "content": "q?"}]}\n',
            "auto",
            "chat.jsonl:1: no assistant turn",
        ),
        (
            "role.jsonl",
            '{"messages": [{"role": "bot", "content": "q?"}]}\n',
            "messages",
            "role.jsonl:1: messages[0] is not a",
        ),
        (
            "aud.jsonl",
            '{"question": "q?", "answer": "a.", "audience": "child"}\n',
            "auto",
            "aud.jsonl:1: unknown audience 'child'",
        ),
        ("what.jsonl", '{"prompt": "q?", "completion": "a."}\n', "auto", "what.jsonl:1: cannot tell the format"),
        ("empty.json", "[]", "auto", "empty.json: no records"),
    ],
)
def test_malformed_files_are_one_line_errors_with_file_and_line(name, text, fmt, expected):
    write(name, text)
    with pytest.raises(SlmError) as err:
        read_pair_file(Path(name), fmt, name)
    assert str(err.value).startswith(expected), str(err.value)
    assert "\n" not in err.value.message and err.value.hint


def test_undecodable_bytes_name_the_position():
    Path("latin.csv").write_bytes(b"question,answer\n\xff\xfe\xfa,x\n")
    with pytest.raises(SlmError, match=r"latin.csv: line 2.*undecodable"):
        read_pair_file(Path("latin.csv"), "auto", "latin.csv")


def test_a_missing_file_names_the_config_key(tmp_path):
    chunks = tmp_path / "chunks.jsonl"
    write_jsonl(chunks, [])
    cfg = DistillConfig(imports=[ImportConfig(path="pairs/seed.json"), ImportConfig(path="pairs/nope.json")])
    copy_fixture("seed_sample.json", Path("pairs/seed.json"))
    with pytest.raises(SlmError, match=r"^distill\.imports\.1\.path: pairs/nope\.json: not found"):
        read_imports(cfg, chunks)


def test_the_config_rejects_an_unknown_format_and_unknown_keys():
    write("bad.yaml", "distill:\n  imports:\n    - path: a.json\n      format: jsonl\n")
    with pytest.raises(SlmError, match=r"bad\.yaml:4: invalid value for 'distill\.imports\.0\.format'"):
        load_config("bad.yaml")
    write("typo.yaml", "distill:\n  imports:\n    - path: a.json\n      fromat: seed\n")
    with pytest.raises(SlmError, match=r"typo\.yaml:4: unknown key 'distill\.imports\.0\.fromat'") as err:
        load_config("typo.yaml")
    assert "format" in err.value.hint
    assert load_config(None, ["distill.imports=[{path: a.csv}]"]).distill.imports[0].format == "auto"


# ------------------------------------------------------------------------------------------------ pairs and links
def chunk(n: int, law: str | None, article: int | None, citation: str, kind: str = "statute_article") -> Chunk:
    return Chunk(
        id=f"chunk-{n}",
        doc_id=f"doc-{n}",
        kind=kind,  # type: ignore[arg-type]
        title=citation,
        text="본문",
        citation=citation,
        law_name=law,
        article_no=article,
        position=n,
    )


def test_a_pair_links_to_the_first_chunk_of_the_article_it_cites(tmp_path):
    path = tmp_path / "chunks.jsonl"
    write_jsonl(
        path,
        [
            chunk(0, "소득세법", 6, "소득세법 제6조"),
            chunk(1, "소득세법", 12, "소득세법 제12조"),
            chunk(2, "소득세법", 12, "소득세법 제12조"),  # the same article's next chunk: ties go to the first
            chunk(3, None, None, "기준-2023-법규재산-0144", "interpretation"),
        ],
    )
    index = build_chunk_index(path)
    cited = RawPair("공익신탁의 이익은 과세되나요?", "「소득세법」 제12조 제1호에 따라 비과세됩니다.", 1)
    assert link_chunk(cited, index).id == "chunk-1"
    by_source = RawPair("노인복지주택은?", "과세대상입니다.", 1, original={"source": "기준-2023-법규재산-0144"})
    assert link_chunk(by_source, index).id == "chunk-3"
    from_question = RawPair("소득세법 제6조의 납세지는?", "주소지입니다.", 1)
    assert link_chunk(from_question, index).id == "chunk-0"
    assert link_chunk(RawPair("법인세법 제7조는?", "신고 규정입니다.", 1), index) is None  # law not in the corpus


def test_an_imported_pair_keeps_its_provenance_and_a_content_key():
    raw = RawPair(
        SEED_QUESTION,
        SEED_WRONG_ANSWER,
        2,
        audience="expert",
        hints=("teacher",),
        original={"type": "teacher", "source": "judgment"},
    )
    pair = to_import_pair(raw, "seed", "pairs/seed.json", None)
    assert (pair.teacher, pair.model, pair.prompt_version) == ("import", "seed", "import-v1")
    assert pair.style == "calculation" and pair.audience == "expert"
    assert pair.meta["import"] == {
        "path": "pairs/seed.json",
        "line": 2,
        "format": "seed",
        "fields": {"type": "teacher", "source": "judgment"},
    }
    assert pair.chunk_id == "" and pair.doc_id.startswith("import-") and pair.kind == "interpretation"
    moved = to_import_pair(RawPair(SEED_QUESTION, SEED_WRONG_ANSWER, 40, audience="expert"), "csv", "b.csv", None)
    assert moved.id == pair.id and moved.request_key == pair.request_key  # content, not position, makes the key
    assert moved.doc_id == pair.doc_id  # the same question in two files: one split group
    other = to_import_pair(RawPair(SEED_QUESTION, CORRECTED_ANSWER, 2, audience="expert"), "seed", "a", None)
    assert other.id != pair.id


@pytest.mark.parametrize(
    ("question", "answer", "hints", "style"),
    [
        (SEED_QUESTION, SEED_WRONG_ANSWER, (), "calculation"),  # states a 증여세 figure for an "얼마" question
        (
            "과세표준 5,000만원의 종합소득세는?",
            "산출세액 = 5,000만원 × 15% − 126만원 = 624만원입니다.",
            (),
            "calculation",
        ),
        ("증여세 신고기한은 언제인가요?", "증여받은 날이 속하는 달의 말일부터 3개월 이내입니다.", (), "explain"),
        (
            "증여세 신고기한은 언제인가요?",
            "증여받은 날이 속하는 달의 말일부터 3개월 이내입니다.",
            ("계산",),
            "calculation",
        ),
        (SEED_QUESTION, SEED_WRONG_ANSWER, ("explain",), "explain"),  # the data's own word wins
        ("공제는 얼마인가요?", "성년 자녀의 증여재산공제는 5,000만원입니다.", (), "explain"),  # a deduction, not a tax
    ],
)
def test_style_comes_from_the_data_or_from_an_answer_that_computes_a_tax(question, answer, hints, style):
    assert to_import_pair(RawPair(question, answer, 1, hints=hints), "seed", "f", None).style == style


def test_a_linked_pair_takes_the_chunks_source_fields():
    ref = ChunkRef("chunk-9", "doc-9", "statute_article", "소득세법 제12조", "소득세법")
    pair = to_import_pair(RawPair("비과세소득은?", "소득세법 제12조에 따릅니다.", 1), "csv", "f.csv", ref)
    assert (pair.chunk_id, pair.doc_id, pair.kind, pair.source_citation, pair.law_name) == (
        "chunk-9",
        "doc-9",
        "statute_article",
        "소득세법 제12조",
        "소득세법",
    )
    assert pair.citations == ["소득세법 제12조"] and pair.meta["linked"] is True
    assert link_chunk(RawPair("q", "a", 1), ChunkIndex()) is None


def test_the_signature_sees_an_edit_that_keeps_size_and_mtime():
    path = copy_fixture("seed_sample.json")
    cfg = RunConfig(distill=DistillConfig(imports=[ImportConfig(path=str(path))]))
    before = input_signature(cfg)
    stat = path.stat()
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("20억원", "30억원", 1), encoding="utf-8")  # same length in bytes
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert input_signature(cfg) != before
    path.unlink()
    assert input_signature(cfg) == [[str(path), None]]


# ------------------------------------------------------------------------------------------- the real stages
def imports_config(*files: str, teachers: list | None = None) -> RunConfig:
    return RunConfig(
        run_name="imports",
        runs_dir="runs",
        distill=DistillConfig(teachers=teachers or [], imports=[ImportConfig(path=f) for f in files]),
    )


def run_to_build(cfg: RunConfig) -> dict[str, object]:
    return {name: run_stage(cfg, name) for name in ("collect", "prepare", "distill", "build")}


def test_the_seed_sample_is_rejected_by_build_and_its_correction_accepted_after_an_edit():
    seed = copy_fixture("seed_sample.json")
    files = [str(seed), str(copy_fixture("alpaca.jsonl")), str(copy_fixture("messages.jsonl"))]
    cfg = imports_config(*files, str(copy_fixture("pairs.csv")))
    reports = run_to_build(cfg)
    distill = reports["distill"].manifest
    assert distill.counts["imported"] == 8 and distill.counts["import_failures"] == 1
    # 소득세법 제12조/제6조, 법인세법 제7조, 국세기본법 제21조 and the casebook ruling are in the bundled corpus
    assert distill.counts["import_linked"] == 5
    build_dir = cfg.run_dir() / "build"
    rejected = {r["pair"]["question"]: r for r in read_jsonl(build_dir / "rejected.jsonl")}
    wrong = rejected[SEED_QUESTION]
    assert wrong["rule"] in ("calc_answer_mismatch", "deduction_denied")
    assert "9,000만원" in wrong["details"] and "6억 2,000만원" in wrong["details"]
    assert wrong["pair"]["meta"]["import"]["path"] == "pairs/seed_sample.json"
    assert wrong["pair"]["meta"]["import"]["line"] == 2
    assert len(rejected) == 1, rejected.keys()  # every other imported pair passes every rule
    examples = {split: list(read_jsonl(build_dir / f"{split}.jsonl")) for split in ("train", "val", "test")}
    placed = [e["meta"]["pair_id"] for rows in examples.values() for e in rows]
    assert len(placed) == len(set(placed)) == 7  # each accepted import lands in exactly one split
    failures = list(read_jsonl(cfg.run_dir() / "distill" / "failures.jsonl"))
    assert [f["reason"] for f in failures] == ["import_multi_turn"]

    # the corrected answer: the runner sees the edit (sha256) and reruns distill and build without --force
    seed.write_text(seed.read_text(encoding="utf-8").replace(SEED_WRONG_ANSWER, CORRECTED_ANSWER), encoding="utf-8")
    again = run_to_build(cfg)
    assert again["prepare"].skipped and not again["distill"].skipped and not again["build"].skipped
    assert SEED_QUESTION not in {r["pair"]["question"] for r in read_jsonl(build_dir / "rejected.jsonl")}
    accepted = [e for split in ("train", "val", "test") for e in read_jsonl(build_dir / f"{split}.jsonl")]
    corrected = [e for e in accepted if e["messages"][-1]["content"] == CORRECTED_ANSWER]
    assert len(corrected) == 1 and corrected[0]["meta"]["style"] == "calculation"
    assert all(report.skipped for report in run_to_build(cfg).values())  # unchanged: nothing reruns


def test_imports_join_the_offline_teachers_pairs_after_them():
    from slm_forest.config import TeacherConfig

    cfg = imports_config(str(copy_fixture("seed_sample.json")), teachers=[TeacherConfig()])
    cfg.distill.audiences = ["expert"]
    reports = run_to_build(cfg)
    counts = reports["distill"].manifest.counts
    pairs = list(read_jsonl(cfg.run_dir() / "distill" / "qa_pairs.jsonl"))
    assert counts["pairs"] > 0 and counts["imported"] == 3 and len(pairs) == counts["pairs"] + 3
    assert [p["teacher"] for p in pairs[-3:]] == ["import"] * 3 and pairs[0]["teacher"] == "offline"
    assert content_id("qa", pairs[-1]["request_key"]) == pairs[-1]["id"]
    assert reports["build"].manifest.counts["accepted"] > 0
