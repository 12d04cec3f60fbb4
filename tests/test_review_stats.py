"""The review page's progress, per rule, and `slm data stats` print the same numbers (issue 12)."""

from __future__ import annotations

import io
import re

from rich.console import Console

from slm_datagen.dataset.stats import print_dataset_stats
from slm_datagen.review.state import load_state, record_decision
from slm_datagen.review.views import summary
from tests.test_review_api import held_ids, make_run


def test_data_stats_prints_the_pages_progress_per_rule(tmp_path):
    cfg = make_run(tmp_path)
    state = load_state(cfg, "kim")
    first, second = held_ids(cfg)[:2]
    record_decision(state, first, {"decision": "approve"})
    record_decision(state, second, {"decision": "reject", "reason": "중복 (duplicate)"})
    page = summary(state)["progress"]
    assert page["by_rule"] and page["reviewed"] == 2
    buffer = io.StringIO()
    print_dataset_stats(cfg.run_dir() / "build", Console(file=buffer, width=300))
    text = buffer.getvalue()
    total = re.search(r"human review: (\d+) reviewed / (\d+) held \((\d+) waiting", text)
    assert total and tuple(map(int, total.groups())) == (page["reviewed"], page["held"], page["waiting"])
    for rule, row in page["by_rule"].items():
        assert f"  {rule}: {row['reviewed']} reviewed / {row['held']} held ({row['waiting']} waiting)" in text
