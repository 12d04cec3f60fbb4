"""The law.go.kr client and source logic, driven through a local replay server (real httpx, nothing patched)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from slm_datagen.collect.catalogue import all_names, resolve_laws, suggest
from slm_datagen.collect.lawgo_client import LawgoClient, LawgoError
from slm_datagen.collect.lawgo_source import _choose_version, collect_lawgo
from slm_datagen.collect.lawgo_xml import xml_to_dict
from slm_forest.config import LawgoSource
from slm_forest.errors import SlmError
from tests.lawgo_replay_server import ReplayServer, Reply

FIXTURES = Path(__file__).parent / "fixtures" / "collect" / "lawgo"
OC = "secret-oc-4821"


def client_for(server: ReplayServer, tmp_path: Path, **kw) -> LawgoClient:
    options = dict(
        base_url=server.base_url,
        oc=OC,
        requests_per_second=1000.0,
        timeout_s=2.0,
        max_retries=3,
        backoff_s=0.01,
        cache_dir=tmp_path / "cache",
    )
    options.update(kw)
    return LawgoClient(**options)


def search_page(
    rows: list[dict], total: int, target: str = "eflaw", root: str = "LawSearch", key: str = "law"
) -> Reply:
    return Reply.json({root: {"target": target, "totalCnt": str(total), "page": "1", key: rows}})


def law_row(name: str, mst: int, effective: str, state: str = "현행", promulgated: str = "20250101") -> dict:
    return {
        "법령일련번호": str(mst),
        "법령명한글": name,
        "법령ID": "001565",
        "시행일자": effective,
        "공포일자": promulgated,
        "현행연혁코드": state,
    }


@pytest.fixture
def server():
    with ReplayServer() as replay:
        yield replay


def run(client: LawgoClient, source: LawgoSource, counts: Counter | None = None):
    return list(collect_lawgo(client, source, "collect.sources.0", counts if counts is not None else Counter()))


# ------------------------------------------------------------------------------------------- request basics
def test_headers_params_and_parsing(server, tmp_path):
    server.route("lawService.do", {"target": "eflaw", "MST": "1"}, Reply.file(FIXTURES / "law_pair.json"))
    with client_for(server, tmp_path) as client:
        data = client.detail("eflaw", MST=1)
    assert data["법령"]["기본정보"]["법령명_한글"] == "소득세법"
    (request,) = server.requests
    assert request.params["OC"] == OC and request.params["type"] == "JSON"
    assert request.headers["Referer"] == "https://www.law.go.kr/"
    assert request.headers["User-Agent"].startswith("Mozilla/5.0")


def test_xml_response_type(server, tmp_path):
    server.route("lawService.do", {"target": "eflaw", "type": "XML"}, Reply.file(FIXTURES / "law_pair.xml"))
    with client_for(server, tmp_path, response_type="XML") as client:
        data = client.detail("eflaw", MST=1)
    assert data["법령"]["법령키"] == "0015652025122321221"
    assert list((tmp_path / "cache").rglob("*.xml"))


# ---------------------------------------------------------------------------------------- search and paging
def test_exact_name_match_over_pages_then_detail_by_mst(server, tmp_path, shared_dir):
    # Page 1: 100 rows that only contain the name; page 2: the exact rows (current + a stale 시행예정) and more.
    page1 = [law_row(f"소득세법 시행{'령' if i % 2 else '규칙'} 부칙{i}", 900000 + i, "20260101") for i in range(100)]
    page2 = [
        law_row("소득세법", 286000, "20260701"),
        law_row("소득세법", 283000, "20270101", "시행예정"),
        law_row("소득세법 시행령", 286211, "20260701"),
    ]
    server.route("lawSearch.do", {"target": "eflaw", "query": "소득세법", "page": "1"}, search_page(page1, 103))
    server.route("lawSearch.do", {"target": "eflaw", "query": "소득세법", "page": "2"}, search_page(page2, 103))
    server.route(
        "lawService.do",
        {"target": "eflaw", "MST": "286000", "efYd": "20260701"},
        Reply.file(shared_dir / "corpus/lawgo/eflaw_JO_소득세법_제12조.json"),
    )
    with client_for(server, tmp_path) as client:
        items = run(client, LawgoSource(laws=["소득세법"]))
    ((label, docs, problem),) = items
    assert problem is None and label == "eflaw 소득세법 MST=286000"
    assert docs[0].mst == "286000" and docs[0].source == "lawgo:eflaw?MST=286000&efYd=20260701"
    searches = server.requests_to("lawSearch.do")
    assert [r.params["page"] for r in searches] == ["1", "2"]  # page*100 >= totalCnt: no page 3
    assert all(r.params["display"] == "100" for r in searches)


def test_paging_stops_at_max_pages_and_counts_truncation(server, tmp_path):
    rows = [law_row("소득세법", 1000 + i, "20260701", "연혁") for i in range(100)]
    server.route("lawSearch.do", {"query": "소득세법"}, search_page(rows, 5000))
    server.route("lawService.do", {"target": "eflaw"}, Reply.file(FIXTURES / "law_pair.json"))
    counts: Counter = Counter()
    with client_for(server, tmp_path) as client:
        run(client, LawgoSource(laws=["소득세법"], max_pages=3), counts)
    assert len(server.requests_to("lawSearch.do")) == 3 and counts["lawgo_truncated_searches"] == 1


def test_no_exact_name_lists_close_names(server, tmp_path):
    server.route(
        "lawSearch.do", {"query": "종합부동산세법"}, search_page([law_row("종합부동산세법 시행령", 1, "20250101")], 1)
    )
    with client_for(server, tmp_path) as client, pytest.raises(SlmError) as info:
        run(client, LawgoSource(laws=["종합부동산세법"]))
    assert "no law named exactly '종합부동산세법'" in info.value.message and "종합부동산세법 시행령" in info.value.hint


def test_version_choice_on_the_real_search_list(shared_dir):
    text = (shared_dir / "corpus/lawgo/eflaw_search_소득세법시행령_trimmed_real.xml").read_text(encoding="utf-8")
    rows = xml_to_dict(text)["LawSearch"]["law"]
    assert _choose_version(rows, "eflaw", None)["법령일련번호"] == "286211"  # the row marked 현행
    # on 2027-01-01 several versions take effect: the latest promulgated one wins
    assert _choose_version(rows, "eflaw", "20270101")["법령일련번호"] == "283631"
    assert _choose_version(rows, "eflaw", "20260301")["법령일련번호"] == "283631"  # 시행 20260227


def test_law_ids_and_msts(server, tmp_path):
    server.route("lawService.do", {"target": "law", "ID": "001565"}, Reply.file(FIXTURES / "law_pair.json"))
    server.route("lawService.do", {"target": "law", "MST": "77"}, Reply.file(FIXTURES / "law_single_dict.json"))
    with client_for(server, tmp_path) as client:
        items = run(client, LawgoSource(target="law", law_ids=["001565"], msts=["77"]))
    assert [label for label, _, _ in items] == ["law 법령ID=001565", "law MST=77"]
    assert items[1][1][0].mst == "77" and items[1][1][0].law_name == "인지세법"


def test_a_law_whose_search_keeps_failing_is_skipped_and_the_others_are_collected(server, tmp_path):
    server.route("lawSearch.do", {"query": "소득세법"}, Reply.error(503))
    server.route("lawService.do", {"target": "law", "MST": "77"}, Reply.file(FIXTURES / "law_single_dict.json"))
    with client_for(server, tmp_path, max_retries=1) as client:
        items = run(client, LawgoSource(target="law", laws=["소득세법"], msts=["77"]))
    assert [(label, len(docs)) for label, docs, _ in items] == [("law 소득세법", 0), ("law MST=77", 1)]
    assert str(items[0][2]).startswith("search failed: law.go.kr: HTTP 503 (gave up after 2 attempts)")


def test_a_body_cut_short_is_asked_again(server, tmp_path):
    body = (FIXTURES / "law_pair.json").read_bytes()
    server.route(
        "lawService.do", {"MST": "1"}, Reply(body=body[:200]), Reply(body=body, send_bytes=100), Reply(body=body)
    )
    with client_for(server, tmp_path) as client:
        assert "법령" in client.detail("eflaw", MST=1)
        assert client.stats.retries == 2
    server.route("lawService.do", {"MST": "2"}, Reply(body=body[:200]))
    with client_for(server, tmp_path, max_retries=1) as client, pytest.raises(LawgoError) as info:
        client.detail("eflaw", MST=2)
    assert info.value.kind == "malformed" and "(gave up after 2 attempts)" in info.value.message


# ------------------------------------------------------------------------------------------- prec and expc
def test_precedent_search_filters_and_detail_failures(server, tmp_path):
    rows = [
        {"판례일련번호": "241591", "사건번호": "2022두64143", "데이터출처명": "대법원"},
        {"판례일련번호": "999", "사건번호": "2023두1", "데이터출처명": "대법원"},
        {"판례일련번호": "555", "사건번호": "국승2024", "데이터출처명": "국세청"},
    ]
    server.route("lawSearch.do", {"target": "prec"}, search_page(rows, 3, "prec", "PrecSearch", "prec"))
    server.route("lawService.do", {"target": "prec", "ID": "241591"}, Reply.file(FIXTURES / "prec_detail.json"))
    server.route("lawService.do", {"target": "prec", "ID": "999"}, Reply.file(FIXTURES / "errors/no_prec.json"))
    counts: Counter = Counter()
    source = LawgoSource(target="prec", query="상속세", court="대법원", date_from="2024-01-01", date_to="20241231")
    with client_for(server, tmp_path) as client:
        items = run(client, source, counts)
    (search,) = server.requests_to("lawSearch.do")
    assert search.params["prncYd"] == "20240101~20241231" and search.params["curt"] == "대법원"
    assert [(label, len(docs), problem is None) for label, docs, problem in items] == [
        ("prec ID=241591", 1, True),
        ("prec ID=999", 0, False),
    ]
    assert "일치하는 판례가 없습니다" in str(items[1][2]) and OC not in str(items[1][2])
    assert counts["lawgo_html_only_skipped"] == 1 and not server.requests_to("lawService.do", ID="555")


def test_expc_by_ids(server, tmp_path):
    server.route("lawService.do", {"target": "expc", "ID": "333393"}, Reply.file(FIXTURES / "expc_detail.xml"))
    with client_for(server, tmp_path) as client:
        ((_, (doc,), _),) = run(client, LawgoSource(target="expc", ids=["333393"]))
    assert doc.answer == "포함됩니다." and doc.source == "lawgo:expc?ID=333393"


def test_prec_source_needs_a_query_or_ids(server, tmp_path):
    with client_for(server, tmp_path) as client, pytest.raises(SlmError, match="needs ids or a search"):
        run(client, LawgoSource(target="prec"))


# ----------------------------------------------------------------------------------------------------- cache
def test_second_collect_is_served_from_cache(server, tmp_path):
    server.route("lawSearch.do", {"query": "소득세법"}, search_page([law_row("소득세법", 5, "20260701")], 1))
    server.route("lawService.do", {"MST": "5"}, Reply.file(FIXTURES / "law_pair.json"))
    source = LawgoSource(laws=["소득세법"])
    with client_for(server, tmp_path) as client:
        first = run(client, source)
    sent = len(server.requests)
    with client_for(server, tmp_path, oc=None) as client:  # no OC needed: nothing goes to the network
        second = run(client, source)
        assert client.stats.requests == 0 and client.stats.cache_hits == 2
    assert len(server.requests) == sent == 2
    assert [d.id for _, docs, _ in second for d in docs] == [d.id for _, docs, _ in first for d in docs]
    for path in (tmp_path / "cache").rglob("*"):
        assert OC not in str(path) and (path.is_dir() or OC not in path.read_text(encoding="utf-8"))


def test_not_found_answers_are_cached_transient_failures_are_not(server, tmp_path):
    server.route("lawService.do", {"ID": "9"}, Reply.file(FIXTURES / "errors/no_prec.json"))
    server.route("lawService.do", {"ID": "8"}, Reply.error(500), Reply.file(FIXTURES / "prec_detail.json"))
    with client_for(server, tmp_path, max_retries=0) as client:
        for _ in range(2):
            with pytest.raises(LawgoError, match="일치하는 판례가 없습니다"):
                client.detail("prec", ID=9)
        with pytest.raises(LawgoError, match="HTTP 500"):
            client.detail("prec", ID=8)
        assert client.detail("prec", ID=8)["PrecService"]["사건번호"] == "2022두64143"
    assert (
        len(server.requests_to("lawService.do", ID="9")) == 1 and len(server.requests_to("lawService.do", ID="8")) == 2
    )
    with client_for(server, tmp_path) as client, pytest.raises(LawgoError) as info:
        client.detail("prec", ID=9)
    assert "(cached answer)" in str(info.value) and client.stats.requests == 0


# ---------------------------------------------------------------------------------------- error envelopes
@pytest.mark.parametrize(
    "fixture, kind, message",
    [
        ("errors/auth_failure.json", "auth", "사용자 정보 검증에 실패하였습니다. OPEN API 호출 시"),
        ("errors/auth_failure.xml", "auth", "사용자 정보 검증에 실패하였습니다. IP주소 및 도메인주소를 등록해 주세요."),
        ("errors/missing_oc.json", "auth", "필수입력요소 검증에 실패하였습니다."),
        ("errors/no_prec.json", "not_found", "일치하는 판례가 없습니다. 판례명을 확인하여 주십시오."),
        ("errors/no_law.xml", "not_found", "일치하는 법령이 없습니다."),
        ("errors/empty_object.json", "empty", "empty response body {}"),
        ("errors/not_approved.html", "not_approved", "미신청된 목록/본문"),
    ],
)
def test_http_200_error_bodies(server, tmp_path, fixture, kind, message):
    server.route("lawService.do", {}, Reply.file(FIXTURES / fixture))
    with client_for(server, tmp_path) as client, pytest.raises(LawgoError) as info:
        client.detail("prec", ID=123)
    error = info.value
    assert error.kind == kind and message in error.message
    assert "OC=***" in str(error) and "ID=123" in str(error) and OC not in str(error)
    assert error.fatal == (kind in ("auth", "not_approved"))
    assert len(server.requests) == 1  # a definite answer is not retried


@pytest.mark.parametrize(
    "reply, message",
    [
        (Reply(body=b""), "empty response (0 bytes)"),
        (Reply.file(FIXTURES / "errors/maintenance.html"), "서비스 점검 중입니다"),
    ],
)
def test_empty_and_maintenance_pages_are_retried_then_reported(server, tmp_path, reply, message):
    server.route("lawService.do", {}, reply)
    with client_for(server, tmp_path, max_retries=2) as client, pytest.raises(LawgoError) as info:
        client.detail("eflaw", MST=1)
    assert message in info.value.message and "gave up after 3 attempts" in info.value.message
    assert len(server.requests) == 3 and OC not in str(info.value)


def test_fatal_errors_stop_collection_with_masked_oc(server, tmp_path):
    server.route("lawSearch.do", {}, Reply.file(FIXTURES / "errors/auth_failure.json"))
    with client_for(server, tmp_path) as client, pytest.raises(SlmError) as info:
        run(client, LawgoSource(laws=["소득세법"]))
    assert "사용자 정보 검증에 실패하였습니다" in info.value.message and "OC=***" in info.value.message
    assert OC not in str(info.value) and "IP address" in info.value.hint


def test_missing_oc_is_reported_before_any_request(server, tmp_path):
    with client_for(server, tmp_path, oc=None, oc_env="MY_OC") as client, pytest.raises(LawgoError) as info:
        client.detail("eflaw", MST=1)
    assert info.value.kind == "no_oc" and "MY_OC" in info.value.message and not server.requests


# --------------------------------------------------------------------------------------------------- retries
def test_429_honours_retry_after(server, tmp_path):
    server.route("lawService.do", {}, Reply.error(429, retry_after="1"), Reply.file(FIXTURES / "law_pair.json"))
    with client_for(server, tmp_path) as client:
        started = time.monotonic()
        client.detail("eflaw", MST=1)
        elapsed = time.monotonic() - started
        assert client.stats.retries == 1 and client.stats.requests == 2
    assert elapsed >= 1.0


def test_retry_after_longer_than_allowed_is_reported(server, tmp_path):
    server.route("lawService.do", {}, Reply.error(503, retry_after="3600"))
    with client_for(server, tmp_path) as client, pytest.raises(LawgoError, match="Retry-After 3600s"):
        client.detail("eflaw", MST=1)


def test_5xx_are_retried_with_backoff(server, tmp_path):
    server.route("lawService.do", {}, Reply.error(500), Reply.error(503), Reply.file(FIXTURES / "law_pair.json"))
    with client_for(server, tmp_path) as client:
        assert "법령" in client.detail("eflaw", MST=1)
        assert client.stats.retries == 2
    assert len(server.requests) == 3


def test_gives_up_after_max_retries(server, tmp_path):
    server.route("lawService.do", {}, Reply.error(500))
    with client_for(server, tmp_path, max_retries=2) as client, pytest.raises(LawgoError) as info:
        client.detail("eflaw", MST=1)
    assert info.value.kind == "unavailable" and "HTTP 500" in info.value.message and len(server.requests) == 3


def test_a_hang_times_out_and_is_retried(server, tmp_path):
    server.route("lawService.do", {}, Reply.hang(1.5), Reply.file(FIXTURES / "law_pair.json"))
    with client_for(server, tmp_path, timeout_s=0.3) as client:
        assert "법령" in client.detail("eflaw", MST=1)
        assert client.stats.retries == 1


def test_other_http_status_is_not_retried(server, tmp_path):
    with client_for(server, tmp_path) as client, pytest.raises(LawgoError) as info:
        client.detail("eflaw", MST=1)  # no route: the replay server answers 404
    assert info.value.kind == "http" and "HTTP 404" in info.value.message and len(server.requests) == 1


def test_request_rate_is_limited(server, tmp_path):
    server.route("lawService.do", {}, Reply.file(FIXTURES / "law_pair.json"))
    with client_for(server, tmp_path, requests_per_second=20.0, cache_dir=None) as client:
        started = time.monotonic()
        for mst in range(5):
            client.detail("eflaw", MST=mst)
        assert time.monotonic() - started >= 4 / 20.0


# ------------------------------------------------------------------------------------------------- catalogue
def test_catalogue():
    names = resolve_laws("tax-all")
    assert len(names) == 42 and names == all_names()
    assert {"상속세 및 증여세법 시행령", "교통ㆍ에너지ㆍ환경세법", "국제조세조정에 관한 법률 시행령"} <= set(names)
    assert resolve_laws(["상증법", "교통·에너지·환경세법", "소득세법 시행령", "소득세법시행령"]) == [
        "상속세 및 증여세법",
        "교통ㆍ에너지ㆍ환경세법",
        "소득세법 시행령",
    ]
    # 시행규칙 are catalogue names (aliases and spacing included) but not part of tax-all
    assert resolve_laws(["소득세법시행규칙", "상증법 시행규칙", "관세법 시행규칙"]) == [
        "소득세법 시행규칙",
        "상속세 및 증여세법 시행규칙",
        "관세법 시행규칙",
    ]
    assert not any(name.endswith("시행규칙") for name in names)
    # any other name is passed on as written (to be searched on law.go.kr), with did-you-mean hints at hand
    assert resolve_laws(["소득세법", "  부동산 거래신고  등에 관한 법률", "법인새법"]) == [
        "소득세법",
        "부동산 거래신고 등에 관한 법률",
        "법인새법",
    ]
    assert suggest("법인새법")[0] == "법인세법" and suggest("소득세법 시행규칫")[0] == "소득세법 시행규칙"
    with pytest.raises(SlmError, match="an empty law name"):
        resolve_laws([" "], "collect.sources.0.laws")


def test_a_law_outside_the_catalogue_is_searched_and_matched_exactly_over_all_pages(server, tmp_path):
    name = "부동산 거래신고 등에 관한 법률"
    page1 = [law_row(f"{name} 시행{'령' if i % 2 else '규칙'}", 700000 + i, "20250101") for i in range(100)]
    page2 = [
        law_row("부동산 거래신고 등에 관한 법률 시행령", 800001, "20250101"),
        law_row(name, 271000, "20250101", "연혁"),
        law_row(name, 272000, "20260101"),
    ]
    server.route("lawSearch.do", {"query": name, "page": "1"}, search_page(page1, 103))
    server.route("lawSearch.do", {"query": name, "page": "2"}, search_page(page2, 103))
    server.route("lawService.do", {"target": "eflaw", "MST": "272000"}, Reply.file(FIXTURES / "law_pair.json"))
    with client_for(server, tmp_path) as client:
        ((label, docs, problem),) = run(client, LawgoSource(laws=["부동산 거래신고  등에 관한 법률"]))
    assert problem is None and label == f"eflaw {name} MST=272000" and docs
    assert [r.params["page"] for r in server.requests_to("lawSearch.do")] == ["1", "2"]


def test_a_tax_rule_is_collected_by_name(server, tmp_path):
    rows = [law_row("소득세법 시행규칙", 290000, "20260320"), law_row("소득세법 시행령", 286211, "20260701")]
    server.route("lawSearch.do", {"query": "소득세법 시행규칙"}, search_page(rows, 2))
    server.route("lawService.do", {"MST": "290000"}, Reply.file(FIXTURES / "law_pair.json"))
    with client_for(server, tmp_path) as client:
        ((label, docs, _),) = run(client, LawgoSource(target="law", laws=["소득세법시행규칙"]))
    assert label == "law 소득세법 시행규칙 MST=290000" and docs


def test_a_name_without_exact_match_fails_with_the_closest_names(server, tmp_path):
    server.route("lawSearch.do", {"query": "부가가치새법"}, Reply.file(FIXTURES / "errors/zero_hits.json"))
    server.route(
        "lawSearch.do",
        {"query": "상법"},
        search_page(
            [
                law_row("상법 시행령", 1, "20250101"),
                law_row("상법 시행법", 2, "20250101"),
                law_row("보험업법", 3, "20250101"),
            ],
            3,
        ),
    )
    with client_for(server, tmp_path) as client:
        with pytest.raises(SlmError) as typo:
            run(client, LawgoSource(laws=["부가가치새법"]))
        with pytest.raises(SlmError) as listed:
            run(client, LawgoSource(laws=["상법"]))
    assert server.requests_to("lawSearch.do", query="부가가치새법")  # searched, not refused up front
    assert "no law named exactly '부가가치새법' (0 rows searched)" in typo.value.message
    assert "in the tax catalogue: '부가가치세법'" in typo.value.hint
    assert "closest names on law.go.kr: '상법 시행법', '상법 시행령'" in listed.value.hint
    assert "보험업법" not in listed.value.hint


def test_replay_server_serves_shared_recordings(server, tmp_path, shared_dir):
    """The recorded real XML list goes through the client like a live answer."""
    server.route(
        "lawSearch.do",
        {"query": "소득세법 시행령"},
        Reply.file(shared_dir / "corpus/lawgo/eflaw_search_소득세법시행령_trimmed_real.xml"),
    )
    server.route("lawService.do", {"MST": "286211"}, Reply.file(FIXTURES / "law_pair.json"))
    with client_for(server, tmp_path) as client:
        ((label, docs, _),) = run(client, LawgoSource(laws=["소득세법 시행령"]))
    assert label == "eflaw 소득세법 시행령 MST=286211" and docs
    assert json.loads(json.dumps(server.requests_to("lawService.do")[0].params))["efYd"] == "20260701"


# ------------------------------------------------------------------------------------------------ OC masking
def _page_echoing_oc(phrase: str, oc: str = OC) -> Reply:
    """An HTML error page that quotes the request back, OC included (raw and URL-encoded)."""
    return Reply.text(
        f"<!DOCTYPE html><html><head><title>오류 OC={oc}</title></head><body><p>{phrase} (OC={oc}, "
        f"요청 /DRF/lawService.do?OC={oc.replace('-', '%2D')}&amp;target=prec)</p></body></html>"
    )


@pytest.mark.parametrize(
    "reply, kind",
    [
        (_page_echoing_oc("미신청된 목록/본문에 대한 접근입니다."), "not_approved"),
        (_page_echoing_oc("일치하는 판례가 없습니다."), "not_found"),
        (_page_echoing_oc("사용자 정보 검증에 실패하였습니다."), "auth"),
        (_page_echoing_oc("서비스 점검 중입니다"), "html"),  # retried, then reported with the page title
        (Reply(status=404, body=f"not found: OC={OC}".encode(), content_type="text/plain"), "http"),
        (Reply.json({"result": "사용자 정보 검증에 실패하였습니다.", "msg": f"OC {OC} 미등록"}), "auth"),
    ],
)
def test_the_oc_is_masked_in_every_error_text(server, tmp_path, reply, kind):
    server.route("lawService.do", {}, reply)
    with client_for(server, tmp_path, max_retries=1) as client, pytest.raises(LawgoError) as info:
        client.detail("prec", ID=7)
    error = info.value
    assert error.kind == kind
    texts = [str(error), error.message, error.request, error.body or "", repr(error.args)]
    assert all(OC not in text and "secret%2Doc%2D4821" not in text for text in texts), texts
    assert "***" in error.message or kind == "http" and "***" in str(error)
    for path in (tmp_path / "cache").rglob("*"):
        assert path.is_dir() or OC not in path.read_text(encoding="utf-8")


def test_a_data_response_echoing_the_oc_is_masked_before_caching_and_parsing(server, tmp_path):
    """law.go.kr list rows carry `법령상세링크` URLs with the caller's OC in them."""
    row = law_row("소득세법", 5, "20260701") | {"법령상세링크": f"/DRF/lawService.do?OC={OC}&target=eflaw&MST=5"}
    server.route("lawSearch.do", {"query": "소득세법"}, search_page([row], 1))
    with client_for(server, tmp_path) as client:
        data = client.search("eflaw", query="소득세법")
    assert data["LawSearch"]["law"][0]["법령상세링크"] == "/DRF/lawService.do?OC=***&target=eflaw&MST=5"
    cached = [p for p in (tmp_path / "cache").rglob("*.json")]
    assert cached and all(OC not in p.read_text(encoding="utf-8") for p in cached)
