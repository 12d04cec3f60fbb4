"""Progress without a terminal (nohup logs, CI) is printed as plain lines with counts, rate, ETA and dollars."""

from __future__ import annotations

from slm_forest import progress


def test_log_lines_without_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    with progress.progress_bar("distill: gpt-4o", 4, show_cost=True) as bar:
        bar.advance(1, cost_usd=0.01)
        bar.advance(1, cost_usd=0.02)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("distill: gpt-4o")]
    assert lines[0].startswith("distill: gpt-4o: 1/4") and "$0.0100" in lines[0]
    assert lines[-1].startswith("distill: gpt-4o: 2/4") and "$0.0200" in lines[-1]


def test_no_flood_of_lines(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 3600.0)
    with progress.progress_bar("prepare", 1000) as bar:
        for _ in range(1000):
            bar.advance()
    err = capsys.readouterr().err
    assert err.count("prepare: ") == 1 and "prepare: 1000/1000" in err  # only the final line
