"""The legalize-kr source: Markdown law files -> Documents, law selection, the version in force from git history,
incremental refresh after `git pull`, and the bundled rate-article excerpts."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from slm_datagen.collect.bundled import DATA_DIR, iter_bundled
from slm_datagen.collect.lawgo_parse import parse_law
from slm_datagen.collect.legalize import parse_law_markdown, read_front_matter
from slm_datagen.collect.problems import InputProblem
from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.pipeline import run_stage
from slm_forest.records import Document
from tests.fake_teacher_server import FakeTeacherServer

FIXTURE = Path(__file__).parent / "fixtures" / "legalize" / "kr" / "소득세법" / "법률.md"


def fixture_docs() -> dict[str, Document]:
    docs = parse_law_markdown(FIXTURE.read_text(encoding="utf-8"), source="t")
    return {d.citation().split(" ", 1)[1]: d for d in docs}


# ------------------------------------------------------------------------------------------------------ reader
def test_front_matter_becomes_statute_fields():
    docs = fixture_docs()
    first = docs["제1조"]
    assert (first.law_name, first.mst, first.law_id) == ("소득세법", "289363", "001565")
    assert (first.effective_date, first.promulgation_date) == ("2026-01-01", "2025-12-23")
    assert first.kind == "statute_article" and first.source == "t"
    assert first.meta["complete_law"] is True
    assert first.meta["소관부처"] == ["재정경제부"] and first.meta["공포번호"] == "21200"
    assert first.meta["출처"] == "https://www.law.go.kr/법령/소득세법" and first.meta["상태"] == "시행"


def test_every_structural_element():
    docs = fixture_docs()
    # the 부칙 are not articles; 삭제 articles are kept, marked deleted
    assert list(docs) == ["제1조", "제1조의2", "제4조", "제12조", "제13조", "제14조", "제55조"]
    assert docs["제1조"].text.startswith(
        "제1조(목적) 이 법은 개인의 소득에 대하여"
    )  # lead sentence on the heading line
    defs = docs["제1조의2"]
    assert (defs.article_no, defs.article_branch, defs.article_title) == (1, 2, "정의")
    assert defs.text.split("\n") == [
        "제1조의2(정의)",
        "① 이 법에서 사용하는 용어의 뜻은 다음과 같다.",
        '1. "거주자"란 국내에 주소를 두거나 183일 이상의 거소(居所)를 둔 개인을 말한다.',
        '2. "비거주자"란 거주자가 아닌 개인을 말한다.',
        "② 제1항에 따른 주소ㆍ거소와 거주자ㆍ비거주자의 구분은 대통령령으로 정한다.",
    ]
    assert defs.amendments == ["개정 2010.12.27, 2014.12.23, 2018.12.31"]
    kinds = docs["제4조"].text.split("\n")
    assert (
        kinds[3]
        == "  이 법에 따라 과세되는 모든 소득에서 제2호 및 제3호에 따른 소득을 제외한 소득으로서 다음 각 목의 소득을 합산한 것"
    )
    assert kinds[4:6] == ["  가. 이자소득", "  나. 배당소득"] and kinds[7] == "2의2. 삭제"
    assert "삭제 2024.12.31" in docs["제4조"].amendments and "\u3000" not in docs["제4조"].text
    exempt = docs["제12조"].text.split("\n")
    assert exempt[0] == "제12조(비과세소득) 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다."
    # deeper 1) items under a 목, written with one space or with full-width spaces, both become "    1) …"
    assert [line[:7] for line in exempt if line.lstrip().startswith(("1)", "2)"))] == ["    1) ", "    2) "] * 2
    deleted = docs["제13조"]
    assert deleted.deleted and deleted.text == "제13조 삭제" and deleted.article_title is None
    assert deleted.amendments == ["삭제 2009.12.31"]
    assert docs["제14조"].headings == [
        "제2장 거주자의 종합소득 및 퇴직소득에 대한 납세의무",
        "제2절 과세표준과 세액의 계산",
        "제1관 세액계산 통칙",
    ]
    assert docs["제1조"].headings == ["제1장 총칙"] and docs["제13조"].headings[-1] == "제1절 비과세"
    rates = docs["제55조"]
    assert rates.meta["tables"] == 1 and "\n[표]\n┌" in rates.text and "</img>" not in rates.text
    assert "│1,400만원 이하  │과세표준의 6퍼센트" in rates.text and rates.text.endswith("3. 삭제")
    assert not any("\\." in d.text or "**" in d.text for d in docs.values())


def test_same_record_as_the_lawgo_parser():
    """The law.go.kr response for the same article gives the same text and id: the two sources are one corpus."""
    response = {
        "법령": {
            "기본정보": {
                "법령명_한글": "소득세법",
                "시행일자": "20260101",
                "법령ID": "001565",
                "법령일련번호": "289363",
            },
            "조문": {
                "조문단위": [
                    {"조문여부": "전문", "조문내용": "제1장 총칙 <개정 2009.12.31>"},
                    {
                        "조문번호": "1",
                        "조문가지번호": "2",
                        "조문여부": "조문",
                        "조문제목": "정의",
                        "조문내용": "제1조의2(정의)",
                        "항": [
                            {
                                "항번호": "①",
                                "항내용": "① 이 법에서 사용하는 용어의 뜻은 다음과 같다. <개정 2010.12.27, 2014.12.23, 2018.12.31>",
                                "호": [
                                    {
                                        "호번호": "1.",
                                        "호내용": '1. "거주자"란 국내에 주소를 두거나 183일 이상의 거소(居所)를 둔 개인을 말한다.',
                                    },
                                    {"호번호": "2.", "호내용": '2. "비거주자"란 거주자가 아닌 개인을 말한다.'},
                                ],
                            },
                            {
                                "항번호": "②",
                                "항내용": "② 제1항에 따른 주소ㆍ거소와 거주자ㆍ비거주자의 구분은 대통령령으로 정한다.",
                            },
                        ],
                    },
                    {
                        "조문여부": "전문",
                        "조문내용": "제2장 거주자의 종합소득 및 퇴직소득에 대한 납세의무 <개정 2009.12.31>",
                    },
                    {"조문여부": "전문", "조문내용": "제1절 비과세 <개정 2009.12.31>"},
                    {"조문번호": "13", "조문여부": "조문", "조문내용": "제13조 삭제 <2009.12.31>"},
                ]
            },
        }
    }
    api = {d.citation(): d for d in parse_law(response, source="lawgo")}
    md = {d.citation(): d for d in parse_law_markdown(FIXTURE.read_text(encoding="utf-8"), source="md")}
    for citation in ("소득세법 제1조의2", "소득세법 제13조"):
        a, b = api[citation], md[citation]
        assert (a.id, a.text, a.headings, a.amendments, a.deleted) == (
            b.id,
            b.text,
            b.headings,
            b.amendments,
            b.deleted,
        )
        assert (a.mst, a.law_id, a.effective_date) == (b.mst, b.law_id, b.effective_date)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("# 소득세법\n", "line 1", "no front matter"),
        ("---\n제목: 소득세법\n시행일자: 2026-01-01\n", "line 1", "not closed"),
        ("---\n제목: 소득세법\n시행일자: [2026\n---\n", "line 3", "not valid YAML"),
        ("---\n제목: 소득세법\n법령MST: 1\n---\n", "line 2", "no 시행일자"),
        ("---\n제목: 소득세법\n시행일자: 곧\n---\n", "line 3", "not a date"),
        ("---\n제목: 소득세법\n시행일자: 2026-01-01\n---\n\n##### 제X조 (목적)\n\n본문\n", "line 6", "is not 제N조"),
        ("---\n제목: 소득세법\n시행일자: 2026-01-01\n---\n\n## 부칙\n", "line 5", "no articles"),
    ],
)
def test_malformed_files_say_where(text, where, message):
    with pytest.raises(InputProblem) as caught:
        parse_law_markdown(text, source="t")
    assert caught.value.where == where and message in caught.value.message


# ------------------------------------------------------------------------------------------------ the source
def make_checkout(root: Path) -> Path:
    (root / "kr" / "소득세법").mkdir(parents=True)
    shutil.copyfile(FIXTURE, root / "kr" / "소득세법" / "법률.md")
    (root / "kr" / "상속세및증여세법").mkdir()
    text = FIXTURE.read_text(encoding="utf-8").replace("제목: 소득세법", "제목: 상속세 및 증여세법")
    (root / "kr" / "상속세및증여세법" / "법률.md").write_text(text, encoding="utf-8")
    return root


def config(tmp_path: Path, source: dict, **sections):
    path = tmp_path / "run.yaml"
    data = {"run_name": "t", "collect": {"sources": [{"kind": "legalize", **source}], "on_error": "fail"}, **sections}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


def documents() -> list[Document]:
    return [Document.model_validate(r) for r in read_jsonl(Path("runs/t/collect/documents.jsonl"))]


def test_names_map_to_folders_and_unknown_names_get_a_did_you_mean(tmp_path):
    root = make_checkout(tmp_path / "clone")
    cfg = config(tmp_path, {"path": str(root), "laws": ["상증법", "소득세법"], "as_of": "2026-06-01"})
    report = run_stage(cfg, "collect")
    assert report.counts["statute_article"] == 14 and report.counts["from_legalize"] == 14
    assert {d.law_name for d in documents()} == {"상속세 및 증여세법", "소득세법"}
    cfg = config(tmp_path, {"path": str(root), "laws": ["소득세볍"]})
    with pytest.raises(SlmError) as caught:
        run_stage(cfg, "collect")
    assert "collect.sources.0.laws.0: no law named '소득세볍'" in caught.value.message
    assert "소득세법" in caught.value.hint
    cfg = config(tmp_path, {"path": str(root), "laws": ["소득세법 시행령"]})
    with pytest.raises(SlmError, match="has no 시행령.md"):
        run_stage(cfg, "collect")


def test_tax_all_skips_what_the_copy_lacks_and_warns_about_future_versions(tmp_path):
    root = make_checkout(tmp_path / "clone")
    text = FIXTURE.read_text(encoding="utf-8").replace("시행일자: 2026-01-01", "시행일자: 2027-09-09")
    (root / "kr" / "소득세법" / "법률.md").write_text(text, encoding="utf-8")
    report = run_stage(config(tmp_path, {"path": str(root / "kr"), "as_of": "2026-06-01"}), "collect")
    warnings = report.manifest.stats["warnings"]
    assert any("소득세법/법률.md: 시행일자 2027-09-09 is after as_of 2026-06-01" in w for w in warnings)
    assert any("국세기본법: not in" in w for w in warnings)  # tax-all names laws this copy does not have
    assert report.counts["statute_article"] == 14  # read as it is: a plain copy has no older version


def test_a_bad_file_names_its_line(tmp_path):
    root = make_checkout(tmp_path / "clone")
    (root / "kr" / "소득세법" / "법률.md").write_text("---\n제목: 소득세법\n---\n", encoding="utf-8")
    with pytest.raises(SlmError) as caught:
        run_stage(config(tmp_path, {"path": str(root), "laws": ["소득세법"]}), "collect")
    assert caught.value.message.endswith("kr/소득세법/법률.md:line 2: front matter has no 시행일자")


# ------------------------------------------------------------------------------------------------- git history
def git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, check=True, env={**env, "PATH": "/usr/bin:/bin"}
    )
    return done.stdout.decode().strip()


def commit_version(root: Path, effective: str, rate_text: str) -> str:
    law = root / "kr" / "소득세법" / "법률.md"
    text = FIXTURE.read_text(encoding="utf-8").replace("시행일자: 2026-01-01", f"시행일자: {effective}")
    law.write_text(text.replace("과세표준의 6퍼센트", rate_text), encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"소득세법 시행 {effective}")
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path) -> tuple[Path, list[str]]:
    root = tmp_path / "legalize-kr"
    (root / "kr" / "소득세법").mkdir(parents=True)
    git(root, "init", "-q")
    commits = [
        commit_version(root, "2025-01-01", "과세표준의 6퍼센트(2025)"),
        commit_version(root, "2026-01-01", "과세표준의 6퍼센트(2026)"),
        commit_version(root, "2027-09-09", "과세표준의 6퍼센트(2027)"),  # promulgated, not yet in force
    ]
    return root, commits


def rate_article() -> Document:
    return next(d for d in documents() if d.article_no == 55)


def test_as_of_picks_the_version_in_force_from_history(tmp_path, history):
    root, commits = history
    run_stage(config(tmp_path, {"path": str(root), "laws": ["소득세법"], "as_of": "2026-06-01"}), "collect")
    doc = rate_article()
    assert "(2026)" in doc.text and doc.effective_date == "2026-01-01"
    provenance = doc.meta["legalize"]
    assert provenance["commit"] == commits[1] and provenance["시행일자"] == "2026-01-01"
    assert provenance["newer_version"] == {"commit": commits[2], "시행일자": "2027-09-09"}
    assert doc.source == f"legalize:kr/소득세법/법률.md@{commits[1][:12]}"
    run_stage(config(tmp_path, {"path": str(root), "laws": ["소득세법"], "as_of": "2027-12-31"}), "collect")
    assert "(2027)" in rate_article().text and "newer_version" not in rate_article().meta["legalize"]
    run_stage(config(tmp_path, {"path": str(root), "laws": ["소득세법"], "as_of": "2025-03-01"}), "collect")
    assert rate_article().meta["legalize"]["commit"] == commits[0]
    with pytest.raises(SlmError, match="found no documents"):
        run_stage(config(tmp_path, {"path": str(root), "laws": ["소득세법"], "as_of": "2024-12-31"}), "collect")


def test_git_pull_reasks_only_the_changed_articles(tmp_path, history, monkeypatch):
    """After `git pull`, collect reruns by itself and distill asks the teacher again only for what changed."""
    root, _ = history
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-legalize")
    with FakeTeacherServer(latency=0.0, retry_after=0.1) as server:
        teacher = {"provider": "openai", "model": "gpt-4o", "base_url": server.openai_base_url, "timeout_s": 10}
        distill = {"teachers": [teacher], "audiences": ["expert", "layperson"]}
        cfg = config(tmp_path, {"path": str(root), "laws": ["소득세법"], "as_of": "2026-06-01"}, distill=distill)
        for stage in ("collect", "prepare", "distill"):
            run_stage(cfg, stage)
        asked_first = len(server.generation_requests())
        assert asked_first > 2 and run_stage(cfg, "collect").skipped
        # upstream amends one article (제14조) of the version in force, in force from 2026-03-01: `git pull`
        law = root / "kr" / "소득세법" / "법률.md"
        text = FIXTURE.read_text(encoding="utf-8").replace("시행일자: 2026-01-01", "시행일자: 2026-03-01")
        text = text.replace("과세표준의 6퍼센트", "과세표준의 6퍼센트(2026)")
        law.write_text(
            text.replace("각각 구분하여 계산한다.", "각각 구분하여 계산한다. 다만, 예외를 둔다."), encoding="utf-8"
        )
        git(root, "commit", "-q", "-am", "소득세법 제14조 개정")
        collect = run_stage(cfg, "collect")  # no --force: the checkout's HEAD is part of the fingerprint
        assert not collect.skipped and {d.effective_date for d in documents()} == {"2026-03-01"}
        run_stage(cfg, "prepare")
        distill_report = run_stage(cfg, "distill")
        changed = [d for d in documents() if "예외를 둔다" in d.text]
        asked_again = len(server.generation_requests()) - asked_first
    assert len(changed) == 1 and asked_again == 1  # one article, one chunk: both audiences in one request
    assert distill_report.counts["cached"] == distill_report.counts["requests"] - 1


# --------------------------------------------------------------------------------------------- bundled excerpts
def test_bundled_rate_articles_are_real_excerpts():
    docs = {d.citation(): d for path, found in iter_bundled(["statutes"]) if path.suffix == ".md" for d in found}
    spec = importlib.util.spec_from_file_location("make_bundled", DATA_DIR / "make_bundled.py")
    make_bundled = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_bundled)
    sources = json.loads((DATA_DIR / "legalize" / "SOURCES.json").read_text(encoding="utf-8"))
    expected = set()
    for relpath, excerpt in make_bundled.LEGALIZE_EXCERPTS.items():
        law = read_front_matter((DATA_DIR / "legalize" / relpath).read_text(encoding="utf-8")).law_name
        expected |= {f"{law} {article}" for article in excerpt.articles}
        assert sources[relpath]["articles"] == list(excerpt.articles)
        assert (sources[relpath]["repository"], sources[relpath]["commit"]) == (excerpt.repository, excerpt.commit)
    assert set(docs) == expected and len(docs) == 39
    for doc in docs.values():
        assert doc.meta["complete_law"] is False and doc.meta["legalize"]["excerpt"] is True
        path = doc.meta["legalize"]["path"]
        assert doc.meta["legalize"]["commit"] == sources[path]["commit"] and doc.mst == sources[path]["법령MST"]
        assert doc.effective_date == sources[path]["시행일자"] <= "2026-12-04"  # every excerpt is a version in force
    assert "3억8,406만원 + (10억원을 초과하는 금액의 45퍼센트)" in docs["소득세법 제55조"].text
    assert "연 250만원을 공제한다" in docs["소득세법 제103조"].text
    assert "제1호 외의 경우: 100분의 20" in docs["국세기본법 제47조의2"].text
    assert "해당 가산세액의 100분의 50에 상당하는 금액" in docs["국세기본법 제48조"].text
    assert docs["국세기본법 제47조의4"].headings == ["제5장 과세", "제3절 가산세의 부과와 감면"]
    # the statute's own name, not the folder's (kr/상속세및증여세법/): citations read "상속세 및 증여세법 제26조"
    assert "10억4천만원 + (30억원을 초과하는 금액의 100분의 50)" in docs["상속세 및 증여세법 제26조"].text
    assert (
        "5천만원. 다만, 미성년자가 직계존속으로부터 증여를 받은 경우에는 2천만원"
        in docs["상속세 및 증여세법 제53조"].text
    )
    assert "100분의 30(수증자가 증여자의 자녀가 아닌 직계비속이면서 미성년자" in docs["상속세 및 증여세법 제57조"].text
    # two chapters each have a "제6절 과세표준과 세율": 제57조 is under the 증여세 chapter's, not under 제5절 증여공제
    assert docs["상속세 및 증여세법 제57조"].headings == [
        "제3장 증여세의 과세표준과 세액의 계산",
        "제6절 과세표준과 세율",
    ]
    assert "62만4천원 + (5천만원을 초과하는 금액의 1천분의 24)" in docs["지방세법 제92조"].text


def test_a_real_law_file(shared_dir):
    """A whole legalize-kr file from ../shared when one is there; the bundled excerpts otherwise (test above)."""
    files = sorted((shared_dir / "corpus").glob("legalize/kr/*/*.md"))
    if not files:
        pytest.skip("no legalize-kr law file in ../shared/corpus (the bundled excerpts are tested instead)")
    for path in files:
        law = read_front_matter(path.read_text(encoding="utf-8"))
        docs = parse_law_markdown(path.read_text(encoding="utf-8"), source="shared")
        assert docs and all(d.law_name == law.law_name and d.effective_date == law.effective_date for d in docs)


def test_make_bundled_trims_to_exactly_the_shipped_excerpts():
    """`make_bundled.py --legalize` cuts whole files with `trim_law`; on the shipped excerpts it changes nothing,
    and on a whole file it keeps only the named articles under their headings."""
    spec = importlib.util.spec_from_file_location("make_bundled", DATA_DIR / "make_bundled.py")
    make_bundled = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_bundled)
    for relpath, excerpt in make_bundled.LEGALIZE_EXCERPTS.items():
        shipped = (DATA_DIR / "legalize" / relpath).read_text(encoding="utf-8")
        assert make_bundled.trim_law(shipped, excerpt.articles) == shipped
    cut = make_bundled.trim_law(FIXTURE.read_text(encoding="utf-8"), ("제13조", "제55조"))
    docs = parse_law_markdown(cut, source="t")
    assert [d.citation() for d in docs] == ["소득세법 제13조", "소득세법 제55조"]
    assert docs[1].text == fixture_docs()["제55조"].text and docs[1].headings == fixture_docs()["제55조"].headings
    with pytest.raises(SystemExit, match="제99조"):
        make_bundled.trim_law(FIXTURE.read_text(encoding="utf-8"), ("제99조",))
    # a heading that repeats word for word in another chapter is written again under that chapter
    twice = "\n".join(
        ["---", "제목: 상속세 및 증여세법", "시행일자: 2026-01-01", "---", "", "# 상속세 및 증여세법"]
        + ["", "## 제2장 상속세", "", "### 제6절 과세표준과 세율", "", "##### 제26조 (상속세 세율)", "", "본문 26"]
        + ["", "## 제3장 증여세", "", "### 제5절 증여공제", "", "##### 제53조 (증여재산 공제)", "", "본문 53"]
        + ["", "### 제6절 과세표준과 세율", "", "##### 제56조 (증여세 세율)", "", "본문 56", ""]
    )
    headings = {
        d.citation(): d.headings
        for d in parse_law_markdown(make_bundled.trim_law(twice, ("제26조", "제56조")), source="t")
    }
    assert headings == {
        "상속세 및 증여세법 제26조": ["제2장 상속세", "제6절 과세표준과 세율"],
        "상속세 및 증여세법 제56조": ["제3장 증여세", "제6절 과세표준과 세율"],
    }
