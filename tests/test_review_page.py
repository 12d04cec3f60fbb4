"""The review page in a real headless browser (Debian's Chromium driven by Playwright; never `playwright install`).

It approves one pair, rejects one with a reason, edits one (an English edit is refused first, with the reason),
reloads, and then `slm build` shows exactly those three decisions applied. Skips when no Chromium is installed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from slm_datagen.review.app import make_app
from slm_datagen.review.state import load_state
from slm_forest.files import read_jsonl
from slm_forest.local_server import LocalServer
from slm_forest.pipeline import run_stage
from tests.test_review_api import GOOD_EDIT, held_ids, make_run

CHROMIUM = os.environ.get("SLM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The system browser, with nothing that reaches the network (without these flags Chromium stalls offline).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("SLM_REVIEW_SCREENSHOTS")  # a directory: also write the README's screenshots there


def _playwright():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e .[dev])")
    return sync_playwright


@pytest.fixture
def page(tmp_path):
    sync_playwright = _playwright()
    cfg = make_run(tmp_path)
    server = LocalServer(make_app(load_state(cfg, "park")), "127.0.0.1", 0)
    server.run_in_thread()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 820},
        )
        tab = browser.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto(server.url + "/")
        tab.wait_for_selector("#answer")
        yield tab, cfg, errors
        browser.close()
    server.shutdown()
    server.server_close()


def _current(tab) -> str:
    return tab.locator("#list li.current").get_attribute("data-id")


def _wait_for(tab, selector: str, text: str) -> None:
    tab.wait_for_function(
        "([s, t]) => document.querySelector(s) && document.querySelector(s).textContent.includes(t)",
        arg=[selector, text],
    )


def test_approve_reject_edit_reload_then_build_applies_exactly_those(page):
    tab, cfg, errors = page
    held = held_ids(cfg)
    assert tab.locator("#list li").count() == 4 and _current(tab) == held[0]
    assert "법인세법 제55조" in tab.locator("#answer mark").all_inner_texts()  # the citation is highlighted
    assert "citation_unverified" in tab.locator("#findings").inner_text()

    tab.keyboard.press("a")  # approve the first pair: the next one loads
    _wait_for(tab, "#reviewed", "1")
    tab.wait_for_function(f"document.querySelector('#list li.current')?.dataset.id === '{held[1]}'")

    tab.keyboard.press("r")  # reject with the second reason from the list
    tab.keyboard.press("2")
    tab.keyboard.press("Enter")
    _wait_for(tab, "#reviewed", "2")
    tab.wait_for_function(f"document.querySelector('#list li.current')?.dataset.id === '{held[2]}'")

    tab.keyboard.press("e")  # an English edit is refused with the reason; a Korean one is accepted
    tab.fill("#edit-answer", "This answer is in English only.")
    tab.keyboard.press("Control+Enter")
    _wait_for(tab, "#message", "not_korean")
    if SCREENSHOTS:
        tab.screenshot(path=str(Path(SCREENSHOTS) / "review-pair-findings.png"))
    edited = GOOD_EDIT.format(cite="소득세법 제14조")
    tab.fill("#edit-answer", edited)
    tab.keyboard.press("Control+Enter")
    _wait_for(tab, "#reviewed", "3")

    tab.reload()
    tab.wait_for_selector("#answer")
    _wait_for(tab, "#reviewed", "3")
    assert tab.locator("#list li").count() == 1 and _current(tab) == held[3]  # only the undecided pair waits
    tab.uncheck("[name=queue]")
    tab.select_option("[name=status]", "decided")
    tab.wait_for_function("document.querySelectorAll('#list li').length === 3")
    tab.wait_for_function(f"document.querySelector('#pair code')?.textContent === '{held[0]}'")
    if SCREENSHOTS:
        tab.screenshot(path=str(Path(SCREENSHOTS) / "review-list-filters.png"))
    assert errors == []

    run_stage(cfg, "build")
    build = cfg.run_dir() / "build"
    examples = {r["meta"]["pair_id"]: r for s in ("train", "val", "test") for r in read_jsonl(build / f"{s}.jsonl")}
    rejected = {r["pair"]["id"]: r for r in read_jsonl(build / "rejected.jsonl")}
    assert held[0] in examples and examples[held[2]]["messages"][-1]["content"] == edited
    assert rejected[held[1]]["rule"] == "human_rejected" and "출처와 무관" in rejected[held[1]]["details"]
    assert set(rejected) == {held[1]}
    assert [r["pair"]["id"] for r in read_jsonl(build / "review.jsonl")] == [held[3]]
