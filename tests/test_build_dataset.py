"""`slm build` end to end on the real corpus in ../shared: checks, splits, formats, the card, `slm data stats`.

The upstream files are made here from the real 국세청 casebook (쟁점 → question, 답변요지 → answer) and the real statute
units, with planted failures, and the stage runs through `slm_forest.pipeline.run_stage` with hand-written manifests.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from slm_datagen.dataset.formats import to_example, write_formats
from slm_datagen.dataset.hub import push_to_hub
from slm_datagen.dataset.rules import RULES
from slm_datagen.dataset.splits import group_key, plan_splits, split_pairs
from slm_datagen.dataset.stats import dataset_stats, print_dataset_stats
from slm_datagen.dataset.stats_cli import data_stats
from slm_forest.config import BuildConfig, RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, sha256_file, write_jsonl
from slm_forest.manifest import Manifest, describe_files, read_manifest, write_manifest
from slm_forest.pipeline import run_stage
from slm_forest.records import Calculation, Chunk, Document, QAPair, SFTExample, Usage, content_id

SEED_QUESTION = "성인 자녀가 아버지로부터 현금 20억원을 증여받았습니다. 증여세는 얼마인가요?"
SEED_WRONG_ANSWER = (
    "증여세는 과세표준에 누진세율을 적용하여 계산합니다. 1억원 이하는 10%, 1억원 초과 5억원 이하는 20%입니다. "
    "따라서 20억원에 대한 증여세는 1,000만원 + 8,000만원 = 9,000만원입니다. 부모로부터 받은 증여는 공제가 적용되지 않습니다."
)
CORRECT_ANSWER = (
    "성년 자녀가 부모에게 받은 증여에는 5,000만원의 증여재산공제가 적용되어 과세표준은 19억 5,000만원입니다. "
    "세율 40%와 누진공제 1억 6,000만원을 적용한 산출세액은 6억 2,000만원입니다."
)
FAKE_SECRET = "test-SECRET-never-in-the-card"


# ------------------------------------------------------------------------------------------------ corpus builders
def casebook_documents(corpus: Path) -> list[Document]:
    docs = []
    for row in json.loads((corpus / "rulings" / "nts_casebook_2025.json").read_text(encoding="utf-8")):
        y, m, d = (int(x) for x in re.findall(r"\d+", row["회신일"])[:3])
        docs.append(
            Document(
                id=content_id("doc", row["문서번호"]),
                kind="interpretation",
                title=row["쟁점"],
                text=f"{row['쟁점']}\n{row['답변요지']}",
                source="test:casebook",
                doc_no=row["문서번호"],
                question=row["쟁점"],
                answer=row["답변요지"],
                related_laws=[row["관련법령"]],
                decision_date=f"{y:04d}-{m:02d}-{d:02d}",
                field_of_law=row["분야"],
            )
        )
    return docs


def statute_documents(corpus: Path) -> list[Document]:
    grouped: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for row in read_jsonl(corpus / "statutes" / "statute_units_real_text.jsonl"):
        grouped[(row["법령명"], row["조"], row["시행본"])].append(row["text"])
    docs = []
    for (law, jo, eff), texts in grouped.items():
        number = re.match(r"제(\d+)조(?:의(\d+))?", jo)
        docs.append(
            Document(
                id=content_id("doc", law, jo, eff),
                kind="statute_article",
                title=f"{law} {jo}",
                text="\n".join(texts),
                source="test:statute_units",
                law_name=law,
                effective_date=f"{eff[:4]}-{eff[4:6]}-{eff[6:]}",
                article_no=int(number[1]),
                article_branch=int(number[2]) if number[2] else None,
            )
        )
    return docs


def chunk_of(doc: Document) -> Chunk:
    return Chunk(
        id=content_id("chunk", doc.id),
        doc_id=doc.id,
        kind=doc.kind,
        title=doc.title,
        text=doc.text,
        citation=doc.citation(),
        law_name=doc.law_name,
        article_no=doc.article_no,
        article_branch=doc.article_branch,
        effective_date=doc.effective_date,
        question=doc.question,
        answer=doc.answer,
        related_laws=doc.related_laws,
    )


def make_pair(chunk: Chunk, question: str, answer: str, n: int, **fields) -> QAPair:
    teacher, model = (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku"))[n % 2]
    return QAPair(
        id=content_id("qa", chunk.id, question, n),
        chunk_id=chunk.id,
        doc_id=chunk.doc_id,
        kind=chunk.kind,
        question=question,
        answer=answer,
        audience=("expert", "layperson")[n % 2],
        teacher=teacher,
        model=model,
        prompt_version=fields.pop("prompt_version", "explain@2"),
        request_key=f"rk-{n}",
        usage=Usage(input_tokens=1000, output_tokens=300, cost_usd=0.0025),
        source_citation=chunk.citation,
        law_name=chunk.law_name,
        **fields,
    )


def statute_answer(chunk: Chunk) -> str:
    """The article's first full sentence, amendment tags removed (collect moves them to Document.amendments)."""
    lines = [re.sub(r"\s*<(?:개정|신설)[^>]*>", "", line).strip() for line in chunk.text.splitlines()[1:]]
    body = next((line for line in lines if line.endswith("다.")), chunk.title)
    return f"{chunk.citation}에 따르면 다음과 같습니다. {body} 구체적인 적용은 사실관계에 따라 달라집니다."


def write_stage_manifest(run_dir: Path, stage: str, name: str) -> None:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    stage_dir = run_dir / stage
    write_manifest(
        stage_dir,
        Manifest(
            stage=stage,
            run_name=run_dir.name,
            fingerprint=f"hand-made-{stage}",
            config={},
            outputs=describe_files([stage_dir / name], run_dir),
            started_at=now,
            finished_at=now,
            seconds=0.0,
        ),
    )


def write_upstream(run_dir: Path, docs: list[Document], chunks: list[Chunk], pairs: list[QAPair]) -> None:
    for stage, name, rows in (
        ("collect", "documents.jsonl", docs),
        ("prepare", "chunks.jsonl", chunks),
        ("distill", "qa_pairs.jsonl", pairs),
    ):
        write_jsonl(run_dir / stage / name, rows)
        write_stage_manifest(run_dir, stage, name)


# --------------------------------------------------------------------------------------------- the built dataset
class Built:
    def __init__(self, cfg: RunConfig, report, pairs: list[QAPair], planted: dict[str, str], groups: dict[str, str]):
        self.cfg, self.report, self.pairs, self.planted, self.groups = cfg, report, pairs, planted, groups
        self.dir = cfg.run_dir() / "build"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    shared = Path(__file__).resolve().parent.parent.parent / "shared"
    corpus, kmmlu = shared / "corpus", shared / "benchmarks" / "kmmlu" / "Taxation-test.csv"
    if not (corpus / "rulings" / "nts_casebook_2025.json").exists() or not kmmlu.exists():
        pytest.skip("../shared corpus or KMMLU benchmark absent")
    statutes = statute_documents(corpus)
    # a second version of one article: its pairs must land in the same split as the first version's
    first = next(d for d in statutes if d.law_name == "국세징수법" and d.article_no == 112)
    amended = first.model_copy(update={"id": content_id("doc", "국세징수법 112 v2"), "effective_date": "2026-10-02"})
    docs = casebook_documents(corpus) + statutes + [amended]
    chunks = [chunk_of(d) for d in docs]
    by_doc = {c.doc_id: c for c in chunks}
    pairs: list[QAPair] = []
    for n, chunk in enumerate(chunks):
        if chunk.doc_id == amended.id:
            continue  # asked about separately below
        if chunk.kind == "interpretation":
            pairs.append(
                make_pair(
                    chunk,
                    f"{chunk.question}에 대해 설명해 주세요.",
                    chunk.answer or "",
                    n,
                    citations=list(chunk.related_laws),
                )
            )
        else:
            pairs.append(
                make_pair(
                    chunk,
                    f"{chunk.citation}은 어떤 내용을 규정하고 있나요?",
                    statute_answer(chunk),
                    n,
                    citations=[chunk.citation],
                )
            )
    gift_chunk = chunks[0]
    planted = {
        "seed_wrong": make_pair(gift_chunk, SEED_QUESTION, SEED_WRONG_ANSWER, 1001, style="calculation").id,
        "correct": make_pair(
            gift_chunk,
            SEED_QUESTION.replace("현금", "예금"),
            CORRECT_ANSWER,
            1002,
            style="calculation",
            calculation=Calculation(
                kind="gift_tax",
                year=2025,
                result_won=620_000_000,
                inputs={"amount_won": "20억원", "relationship": "직계존속"},
            ),
        ).id,
        "article_999": make_pair(
            by_doc[first.id],
            "소득세법상 비과세소득에는 어떤 것이 있나요?",
            "국세징수법 제112조와 소득세법 제999조에 따라 모든 이자소득은 비과세됩니다.",
            1003,
        ).id,
        "duplicate": make_pair(chunks[1], pairs[1].question.replace(" ", "  "), pairs[1].answer, 1004).id,
        "refusal": make_pair(
            chunks[2],
            "이 사안의 과세 여부를 판단해 주세요.",
            "죄송하지만 AI 언어 모델로서 구체적인 세무 판단은 답변드릴 수 없습니다.",
            1005,
        ).id,
    }
    benchmark_question = (
        "국세기본법 의 규정이 국세기본법 제2조 제2호에서 정의하는 세법의 규정보다 우선하여 적용되는 것은?"
    )
    planted["contaminated"] = make_pair(
        chunks[3], benchmark_question, "소급과세의 금지에 관한 규정이 우선하여 적용됩니다.", 1006
    ).id
    pairs += [
        make_pair(gift_chunk, SEED_QUESTION, SEED_WRONG_ANSWER, 1001, style="calculation"),
        make_pair(
            gift_chunk,
            SEED_QUESTION.replace("현금", "예금"),
            CORRECT_ANSWER,
            1002,
            style="calculation",
            calculation=Calculation(
                kind="gift_tax",
                year=2025,
                result_won=620_000_000,
                inputs={"amount_won": "20억원", "relationship": "직계존속"},
            ),
        ),
        make_pair(
            by_doc[first.id],
            "소득세법상 비과세소득에는 어떤 것이 있나요?",
            "국세징수법 제112조와 소득세법 제999조에 따라 모든 이자소득은 비과세됩니다.",
            1003,
        ),
        make_pair(chunks[1], pairs[1].question.replace(" ", "  "), pairs[1].answer, 1004),
        make_pair(
            chunks[2],
            "이 사안의 과세 여부를 판단해 주세요.",
            "죄송하지만 AI 언어 모델로서 구체적인 세무 판단은 답변드릴 수 없습니다.",
            1005,
        ),
        make_pair(chunks[3], benchmark_question, "소급과세의 금지에 관한 규정이 우선하여 적용됩니다.", 1006),
        make_pair(
            by_doc[amended.id],
            f"{amended.citation()}의 개정 내용은 무엇인가요?",
            statute_answer(by_doc[amended.id]),
            1007,
        ),
    ]
    docs_by_id, chunks_by_id = {d.id: d for d in docs}, {c.id: c for c in chunks}
    groups = {p.id: group_key(p, docs_by_id, chunks_by_id) for p in pairs}

    root = tmp_path_factory.mktemp("build_run")
    cfg = RunConfig(
        run_name="casebook",
        runs_dir=str(root / "runs"),
        seed=7,
        build=BuildConfig(formats=["chat", "alpaca", "seed_text", "openai", "hf"], contamination_files=[str(kmmlu)]),
    )
    write_upstream(cfg.run_dir(), docs, chunks, pairs)
    with pytest.MonkeyPatch.context() as mp:  # secrets in the environment must never reach the dataset
        mp.setenv("OPENAI_API_KEY", FAKE_SECRET)
        mp.setenv("HF_TOKEN", FAKE_SECRET)
        report = run_stage(cfg, "build")
    return Built(cfg, report, pairs, planted, groups)


def rows(path: Path) -> list[dict]:
    return list(read_jsonl(path))


def test_stage_rejects_the_planted_failures_and_keeps_the_correct_computation(built):
    rejected = {r["pair"]["id"]: r for r in rows(built.dir / "rejected.jsonl")}
    assert rejected[built.planted["seed_wrong"]]["rule"] == "calc_answer_mismatch"
    assert "deduction_denied" in rejected[built.planted["seed_wrong"]]["details"]
    # the corpus holds 소득세법 only in part: an article it lacks cannot be called invented, so a person decides
    review = {r["pair"]["id"]: r for r in rows(built.dir / "review.jsonl")}
    assert review[built.planted["article_999"]]["rule"] == "citation_unverified"
    assert "소득세법 제999조" in review[built.planted["article_999"]]["details"]
    assert "add 소득세법 to collect" in review[built.planted["article_999"]]["details"]
    assert rejected[built.planted["duplicate"]]["rule"] == "duplicate"
    assert rejected[built.planted["refusal"]]["rule"] == "refusal"
    assert rejected[built.planted["contaminated"]]["rule"] == "contamination"
    assert "Taxation-test.csv:3" in rejected[built.planted["contaminated"]]["details"]
    kept = {r["meta"]["pair_id"] for split in ("train", "val", "test") for r in rows(built.dir / f"{split}.jsonl")}
    assert built.planted["correct"] in kept
    assert kept.isdisjoint(rejected)
    counts = built.report.counts
    assert counts["pairs_in"] == len(built.pairs) == counts["accepted"] + counts["rejected"] + counts["review"]
    assert counts["train"] + counts["val"] + counts["test"] == counts["accepted"] == len(kept)
    assert counts["contaminated"] == 1 and counts["val"] > 0 and counts["test"] > 0
    assert built.report.manifest.stats["rejections"] == {
        rule: sum(1 for r in rejected.values() if r["rule"] == rule) for rule in {r["rule"] for r in rejected.values()}
    }
    assert all(RejectedRule in RULES for RejectedRule in built.report.manifest.stats["rejections"])


def test_no_document_or_article_version_is_in_two_splits(built):
    split_of_group: dict[str, set[str]] = defaultdict(set)
    for split in ("train", "val", "test"):
        for row in rows(built.dir / f"{split}.jsonl"):
            split_of_group[built.groups[row["meta"]["pair_id"]]].add(split)
    assert all(len(splits) == 1 for splits in split_of_group.values())
    # the two versions of 국세징수법 제112조 are two documents but one group, so their pairs share a split
    both_versions = {
        row["meta"]["doc_id"]: split
        for split in ("train", "val", "test")
        for row in rows(built.dir / f"{split}.jsonl")
        if built.groups[row["meta"]["pair_id"]] == "article:국세징수법:112:0"
    }
    assert len(both_versions) == 2 and len(set(both_versions.values())) == 1


def test_every_format_is_written_with_the_same_examples(built):
    import datasets

    train = [SFTExample.model_validate(r) for r in rows(built.dir / "train.jsonl")]
    assert [m.role for m in train[0].messages] == ["system", "user", "assistant"]
    assert train[0].messages[0].content == built.cfg.build.system_prompt
    assert {"pair_id", "doc_id", "kind", "law_name", "audience", "style", "citations"} <= set(train[0].meta)
    alpaca = rows(built.dir / "alpaca" / "train.jsonl")
    assert alpaca[0] == {
        "instruction": train[0].messages[1].content,
        "input": "",
        "output": train[0].messages[2].content,
    }
    seed = rows(built.dir / "seed_text" / "train.jsonl")[0]["text"]
    assert seed == f"### 질문: {train[0].messages[1].content}\n\n### 답변: {train[0].messages[2].content}"
    openai_row = rows(built.dir / "openai" / "train.jsonl")[0]
    assert set(openai_row) == {"messages"} and openai_row["messages"][2]["role"] == "assistant"
    hf = datasets.load_from_disk(str(built.dir / "hf"))
    assert list(hf) == ["train", "validation", "test"]
    assert [hf[s].num_rows for s in hf] == [built.report.counts[s] for s in ("train", "val", "test")]
    assert hf["train"][0]["question"] == train[0].messages[1].content


def test_the_card_has_every_section_and_the_true_numbers(built):
    text = (built.dir / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["language"] == ["ko"] and front["license"] == "other"
    assert "question-answering" in front["task_categories"] and front["size_categories"] == ["n<1K"]
    assert [f["split"] for f in front["configs"][0]["data_files"]] == ["train", "validation", "test"]
    for heading in (
        "## Splits",
        "## Source kinds",
        "## Laws",
        "## Audience and style",
        "## Lengths",
        "## Quality checks",
        "## Benchmark contamination",
        "## Teachers",
        "## Corpus fingerprints",
        "## Files",
        "## Limitations",
    ):
        assert heading in text
    rejected = rows(built.dir / "rejected.jsonl")
    assert f"| `duplicate` | {RULES['duplicate']} | {sum(r['rule'] == 'duplicate' for r in rejected)} | 0 |" in text
    assert f"| `citation_not_in_corpus` | {RULES['citation_not_in_corpus']} | " in text
    assert "| interpretation |" in text and "| statute_article |" in text and "| 국세징수법 | `국세징수법` |" in text
    assert "| expert |" in text and "| layperson |" in text
    total_cost = sum(p.usage.cost_usd for p in built.pairs)
    assert f"Total teacher cost: ${total_cost:.4f}" in text
    assert "openai/gpt-4o-mini" in text and "anthropic/claude-haiku" in text and "`explain@2`" in text
    for stage, name in (("collect", "documents.jsonl"), ("prepare", "chunks.jsonl"), ("distill", "qa_pairs.jsonl")):
        assert sha256_file(built.cfg.run_dir() / stage / name) in text
    assert "Taxation-test.csv" in text and sha256_file(Path(built.cfg.build.contamination_files[0])) in text
    for png in ("laws.png", "lengths.png"):
        assert f"]({png})" in text
        assert (built.dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Chart labels use the NanumGothic font." in text  # bundled by koreanize-matplotlib: no romanising
    for path in built.dir.rglob("*"):
        if path.is_file():
            assert FAKE_SECRET.encode() not in path.read_bytes(), path


def test_data_stats_prints_the_numbers_of_the_card(built, capsys):
    stats = dataset_stats(built.dir)
    assert stats["splits"] == {s: built.report.counts[s] for s in ("train", "val", "test")}
    assert stats["rejected"] == built.report.counts["rejected"]
    assert stats["rejections"] == built.report.manifest.stats["rejections"]
    assert sum(v["total"] for v in stats["by_law"].values()) == stats["examples"]
    # rulings have no law_name of their own: they are counted under the first law they cite
    assert stats["by_law"].get("unknown", {"total": 0})["total"] < 5 and stats["by_law"]["종합부동산세법"]["total"] > 0
    assert stats["build_info"]["fingerprints"]["distill/qa_pairs.jsonl"] == sha256_file(
        built.cfg.run_dir() / "distill" / "qa_pairs.jsonl"
    )
    app = typer.Typer()
    app.command()(data_stats)
    result = CliRunner().invoke(app, [str(built.dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["splits"] == stats["splits"]
    result = CliRunner().invoke(app, [str(built.dir)])
    assert result.exit_code == 0
    assert "by law" in result.stdout and "quality checks" in result.stdout and "refusal" in result.stdout
    with pytest.raises(SlmError, match="no train.jsonl"):
        print_dataset_stats(built.dir / "hf")


def test_an_unchanged_build_is_skipped(built):
    again = run_stage(built.cfg, "build")
    assert again.skipped and again.counts == built.report.counts
    manifest = read_manifest(built.dir)
    assert manifest is not None and manifest.complete
    assert {e.path for e in manifest.outputs} >= {"build/train.jsonl", "build/README.md", "build/rejected.jsonl"}


# ------------------------------------------------------------------------------------------------ splits (units)
def test_split_plan_gives_val_and_test_a_group_when_there_are_three():
    plan = plan_splits({"a", "b", "c"}, 0.1, 0.1, seed=42)
    assert plan.groups == {"train": 1, "val": 1, "test": 1}
    assert plan_splits({"a", "b"}, 0.1, 0.1, seed=42).groups == {"train": 1, "val": 1, "test": 0}
    assert plan_splits({"a"}, 0.1, 0.1, seed=42).groups == {"train": 1, "val": 0, "test": 0}
    assert plan_splits({"a", "b", "c"}, 0.0, 0.0, seed=42).groups == {"train": 3, "val": 0, "test": 0}
    many = {f"g{i}" for i in range(100)}
    plan = plan_splits(many, 0.1, 0.2, seed=1)
    assert plan.groups == {"train": 70, "val": 10, "test": 20}
    assert plan.assignment == plan_splits(many, 0.1, 0.2, seed=1).assignment
    assert plan.assignment != plan_splits(many, 0.1, 0.2, seed=2).assignment


def test_split_pairs_keeps_documents_and_article_versions_together():
    docs = {}
    pairs = []
    for article in range(1, 31):
        for version, date in enumerate(("2020-01-01", "2024-01-01")):
            doc = Document(
                id=f"d{article}-{version}",
                kind="statute_article",
                title="t",
                text="x",
                source="s",
                law_name="소득세법",
                article_no=article,
                effective_date=date,
            )
            docs[doc.id] = doc
            for n in range(2):
                pairs.append(
                    QAPair(
                        id=f"p{article}-{version}-{n}",
                        chunk_id="c",
                        doc_id=doc.id,
                        kind="statute_article",
                        question="q",
                        answer="a",
                        audience="expert",
                        teacher="t",
                        model="m",
                        prompt_version="v",
                        request_key="k",
                    )
                )
    by_split, plan = split_pairs(pairs, docs, {}, 0.1, 0.1, seed=3)
    assert plan.groups == {"train": 24, "val": 3, "test": 3}
    where = {p.id.split("-")[0]: name for name, ps in by_split.items() for p in ps}
    for name, ps in by_split.items():
        assert all(where[p.id.split("-")[0]] == name for p in ps)


# ----------------------------------------------------------------------------------------- formats and failures
def example(n: int) -> SFTExample:
    pair = QAPair(
        id=f"p{n}",
        chunk_id="c",
        doc_id="d",
        kind="ruling",
        question=f"질문 {n}?",
        answer=f"답변 {n}입니다.",
        audience="expert",
        teacher="t",
        model="m",
        prompt_version="v",
        request_key="k",
    )
    return to_example(pair, "시스템")


def test_stale_format_directories_are_removed_and_push_needs_a_token(tmp_path):
    splits = {"train": [example(1), example(2)], "val": [example(3)], "test": []}
    write_formats(tmp_path, ["alpaca", "openai"], splits)
    assert (tmp_path / "alpaca").is_dir() and (tmp_path / "openai" / "test.jsonl").read_text() == ""
    write_formats(tmp_path, ["chat"], splits)
    assert not (tmp_path / "alpaca").exists() and not (tmp_path / "openai").exists()
    assert len(rows(tmp_path / "train.jsonl")) == 2
    with pytest.raises(SlmError, match="HF_TOKEN is not set"):
        push_to_hub(tmp_path, "someone/dataset")


def small_run(tmp_path: Path, pairs_text: str | None = None, answers: tuple[str, ...] = ()) -> RunConfig:
    doc = Document(id="d1", kind="ruling", title="t", text="증여세 신고기한", source="s")
    chunk = chunk_of(doc)
    cfg = RunConfig(run_name="small", runs_dir=str(tmp_path / "runs"))
    pairs = [make_pair(chunk, f"증여세 질문 {i}번은 무엇인가요?", answer, i) for i, answer in enumerate(answers)]
    write_upstream(cfg.run_dir(), [doc], [chunk], pairs)
    if pairs_text is not None:
        (cfg.run_dir() / "distill" / "qa_pairs.jsonl").write_text(pairs_text, encoding="utf-8")
        # the manifest must describe the file as written: the runner refuses upstream outputs changed behind it
        write_stage_manifest(cfg.run_dir(), "distill", "qa_pairs.jsonl")
    return cfg


def test_a_malformed_pair_line_is_named_by_file_and_line(tmp_path):
    good = make_pair(
        chunk_of(Document(id="d1", kind="ruling", title="t", text="x", source="s")), "질문?", "답변입니다.", 0
    )
    bad = json.loads(good.model_dump_json())
    bad.pop("answer")
    cfg = small_run(tmp_path, good.model_dump_json() + "\n\n" + json.dumps(bad, ensure_ascii=False) + "\n")
    with pytest.raises(SlmError, match=r"qa_pairs\.jsonl:3: QAPair field 'answer': Field required"):
        run_stage(cfg, "build", force=True)


def test_a_build_where_everything_is_rejected_stops_and_keeps_the_rejects(tmp_path):
    cfg = small_run(tmp_path, answers=("죄송하지만 답변드릴 수 없습니다. 다른 질문을 해 주세요.", "네"))
    with pytest.raises(
        SlmError,
        match=r"all 2 pairs were rejected .*refusal 1.*too_short 1|all 2 pairs were rejected .*too_short 1.*refusal 1",
    ):
        run_stage(cfg, "build")
    assert {r["rule"] for r in rows(cfg.run_dir() / "build" / "rejected.jsonl")} == {"refusal", "too_short"}
    assert read_manifest(cfg.run_dir() / "build") is None


def test_card_cost_counts_failed_requests_and_the_teacher_checks(tmp_path):
    """Total teacher cost is what the dataset cost: pairs, failed (paid) distill requests, judge, second teacher."""
    from slm_datagen.dataset.card import render_card
    from slm_forest.records import DistillFailure

    run = tmp_path / "runs" / "r"
    chunk = chunk_of(Document(id="d1", kind="ruling", title="t", text="증여세 신고기한", source="s"))
    pair = make_pair(chunk, "증여세 신고기한은 언제인가요?", "증여받은 날이 속하는 달의 말일부터 3개월 이내입니다.", 0)
    write_jsonl(run / "build" / "train.jsonl", [to_example(pair, "시스템")])  # one accepted pair, $0.0025
    failures = [
        DistillFailure(
            request_key="k1",
            chunk_id="c1",
            teacher="openai",
            model="gpt-4o-mini",
            reason="not_korean",
            usage=Usage(input_tokens=2000, output_tokens=900, cost_usd=0.0125),
        ),
        DistillFailure(request_key="k2", chunk_id="c1", teacher="openai", model="gpt-4o-mini", reason="http_error"),
    ]
    write_jsonl(run / "distill" / "failures.jsonl", failures)
    spend = {
        "provider": "openai",
        "model": "gpt-4o",
        "requests": 1,
        "errors": 0,
        "input_tokens": 10,
        "output_tokens": 5,
    }
    judge = {
        "judge": {**spend, "cost_usd": 0.5, "min_score": 3, "scores": {"5": 1}},
        "second_teacher": {**spend, "cost_usd": 0.25},
    }
    (run / "build" / "build_info.json").write_text(json.dumps({"run_name": "r", "judge": judge}), encoding="utf-8")

    stats = dataset_stats(run / "build")
    assert stats["cost_usd"] == {
        "accepted": 0.0025,
        "rejected": 0.0,
        "review": 0.0,
        "failed": 0.0125,
        "judge": 0.5,
        "second_teacher": 0.25,
        "total": 0.765,
    }
    assert stats["failed_requests"] == 2 and stats["teachers"]["openai/gpt-4o-mini"]["failed"] == 2
    assert stats["teachers"]["openai/gpt-4o-mini"]["cost_usd"] == 0.015  # the teacher's pairs and failures
    text = render_card(stats, None)
    assert (
        "Total teacher cost: $0.7650 (distilled pairs: accepted $0.0025, rejected $0.0000, review $0.0000; "
        "failed distill requests $0.0125 (2 requests); LLM judge $0.5000; second teacher $0.2500)"
    ) in text
    assert "| openai/gpt-4o-mini | 1 | 0 | 0 | 2 | 3000 | 1200 | $0.0150 |" in text

    (run / "distill" / "failures.jsonl").unlink()  # a dataset copied away from its run: say what is missing
    text = render_card(dataset_stats(run / "build"), None)
    assert "Total teacher cost: $0.7525 " in text and "failed distill requests not counted" in text
