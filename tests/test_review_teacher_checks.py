"""The review page shows the judge's verdict and the second teacher's answer on each pair, read from build's ledger."""

from __future__ import annotations

from slm_datagen.review.state import load_state
from slm_datagen.review.teacher_checks import teacher_checks
from slm_datagen.review.views import pair_detail
from slm_forest.config import RunConfig
from slm_forest.pipeline import run_stage
from tests.fake_teacher_server import FakeTeacherServer
from tests.test_build_judge_ledger import UNFAITHFUL_MARK, config, keys, responder, sent, write_run  # noqa: F401


def test_each_pair_shows_the_verdict_build_used_and_nothing_is_sent(tmp_path, keys):  # noqa: F811
    write_run(tmp_path)
    with FakeTeacherServer(responder) as server:
        cfg = RunConfig.model_validate(config(tmp_path, server))
        run_stage(cfg, "build")
        before = sent(server)
        state = load_state(cfg, "kim")
        details = [pair_detail(state, pair_id) for pair_id in state.order]
        assert sent(server) == before  # the page only reads the ledger
    for detail in details:
        judge, second = detail["teacher_checks"]["judge"], detail["teacher_checks"].get("second_teacher")
        assert judge["status"] == "judged" and judge["model"] == "openai:gpt-4o-mini"
        if UNFAITHFUL_MARK in detail["pair"]["question"]:
            assert judge["score"] == 1 and judge["reason"] == "원문과 다름" and detail["status"] == "rejected"
            assert second["status"] == "not asked"  # rejected by the judge before the second teacher
        else:
            assert judge["score"] == 5 and second["status"] == "answered" and second["disagreement"] is None
            assert "공익신탁의 이익" in second["answer"]
    # a pair whose answer changed since is not shown the old verdict; the second teacher was asked the question only
    row = state.rows[state.order[0]]
    changed = row.pair.model_copy(update={"answer": row.pair.answer + " 추가 설명입니다."})
    checks = teacher_checks(state.build_dir, cfg.build, changed, state.chunks[row.pair.chunk_id])
    assert checks["judge"]["status"] == "not judged" and checks["second_teacher"]["status"] == "answered"
    asked = row.pair.model_copy(update={"question": row.pair.question + " 다시"})
    checks = teacher_checks(state.build_dir, cfg.build, asked, state.chunks[row.pair.chunk_id])
    assert checks["second_teacher"]["status"] == "not asked"
