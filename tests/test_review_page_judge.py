"""The review page in headless Chromium shows the judge's score and reason and the second teacher's answer."""

from __future__ import annotations

from slm_datagen.review.app import make_app
from slm_datagen.review.state import load_state
from slm_forest.config import RunConfig
from slm_forest.local_server import LocalServer
from slm_forest.pipeline import run_stage
from tests.fake_teacher_server import FakeTeacherServer
from tests.test_build_judge_ledger import UNFAITHFUL_MARK, config, keys, responder, write_run  # noqa: F401
from tests.test_review_page import CHROMIUM, CHROMIUM_ARGS, _playwright


def test_the_judge_card_shows_the_verdict_and_the_second_answer(tmp_path, keys):  # noqa: F811
    sync_playwright = _playwright()
    write_run(tmp_path)
    with FakeTeacherServer(responder) as fake:
        cfg = RunConfig.model_validate(config(tmp_path, fake))
        run_stage(cfg, "build")
    state = load_state(cfg, "park")
    rejected = next(i for i in state.order if UNFAITHFUL_MARK in state.rows[i].pair.question)
    server = LocalServer(make_app(state), "127.0.0.1", 0)
    server.run_in_thread()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            tab = browser.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto(server.url + "/")
            tab.wait_for_selector("[name=queue]")
            tab.uncheck("[name=queue]")  # nothing waits for review here: list every pair
            tab.wait_for_selector(f"#list li[data-id='{rejected}']").click()
            tab.wait_for_function(f"document.querySelector('#pair code')?.textContent === '{rejected}'")
            card = tab.locator("#teacher-checks").inner_text()
            assert "1 / 5" in card and "원문과 다름" in card and "openai:gpt-4o-mini" in card
            assert "not asked" in card  # the judge rejected it before the second teacher
            accepted = next(i for i in state.order if i != rejected)
            tab.locator(f"#list li[data-id='{accepted}']").click()
            tab.wait_for_function(f"document.querySelector('#pair code')?.textContent === '{accepted}'")
            card = tab.locator("#teacher-checks").inner_text()
            assert "5 / 5" in card and "agrees on the amount and the articles" in card and "공익신탁의 이익" in card
            assert errors == []
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
