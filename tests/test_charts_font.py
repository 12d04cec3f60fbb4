"""Every chart draws Hangul: the bundled NanumGothic (koreanize-matplotlib) is found, has the glyphs, and is used."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest


def _has_glyph(font_file: str, char: str) -> bool:
    from fontTools.ttLib import TTFont

    return ord(char) in TTFont(font_file, fontNumber=0)["cmap"].getBestCmap()


def test_bundled_korean_font_is_found_and_has_hangul_glyphs():
    from matplotlib import font_manager

    from slm_datagen.dataset.charts import bundled_font_path, hangul_font

    path = bundled_font_path()
    assert path is not None and path.name == "NanumGothic.ttf"
    family = hangul_font()
    assert family == "NanumGothic"
    chosen = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert Path(chosen).resolve() == path.resolve()
    assert all(_has_glyph(chosen, ch) for ch in "세법소득조항원")
    assert not _has_glyph(font_manager.findfont("DejaVu Sans"), "세")  # what matplotlib would use without it


def _render_without_missing_glyphs(draw) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = draw()
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing
    return result


def test_dataset_card_chart_renders_hangul_law_names(tmp_path):
    from matplotlib import font_manager

    from slm_datagen.dataset import charts

    stats = {
        "by_law": {
            "소득세법": {"train": 3, "val": 1, "test": 1},
            "상속세 및 증여세법": {"train": 2, "val": 0, "test": 1},
        }
    }
    seen: list[str] = []
    real_save = charts._save

    def spy(fig, path):  # the law chart's y tick labels as drawn: their font file must have every character
        for label in fig.axes[0].get_yticklabels() if path.name == charts.LAWS_PNG else []:
            font_file = font_manager.findfont(label.get_fontproperties(), fallback_to_default=False)
            assert all(_has_glyph(font_file, ch) for ch in label.get_text() if not ch.isspace()), label.get_text()
            seen.append(label.get_text())
        return real_save(fig, path)

    charts._save = spy
    try:
        paths, font = _render_without_missing_glyphs(lambda: charts.write_charts(_stats_with_lengths(stats), tmp_path))
    finally:
        charts._save = real_save
    assert font == "NanumGothic" and set(seen) == {"소득세법", "상속세 및 증여세법"}  # not romanised
    assert all(p.stat().st_size > 1000 for p in paths)


def _stats_with_lengths(stats: dict) -> dict:
    hist = {"histogram": {"edges": [0, 10, 20], "counts": [1, 2]}, "median": 12}
    return stats | {"question_chars": hist, "answer_chars": hist}


def test_evaluation_charts_render_hangul_labels(tmp_path):
    from fine_tuning.evaluate.report import group_chart, metric_chart

    metrics = {
        "headline": [
            {"metric": "citation F1 (law + 조 + 항)", "base": 0.1, "tuned": 0.4},
            {"metric": "chrF", "base": 10.0, "tuned": 20.0},
        ],
        "generation": {
            which: {g: {"chrf": 5.0} for g in ("all", "law:소득세법", "kind:interpretation")}
            for which in ("base", "tuned")
        },
    }
    made = _render_without_missing_glyphs(
        lambda: [metric_chart(metrics, tmp_path / "m.png"), group_chart(metrics, tmp_path / "g.png")]
    )
    assert all(p is not None and p.stat().st_size > 1000 for p in made)


@pytest.mark.parametrize("text", ["소득세법", "상속세 및 증여세법"])
def test_romanisation_is_only_the_fallback(text):
    from slm_datagen.dataset.charts import chart_label

    assert chart_label(text, "NanumGothic") == text and chart_label(text, None).isascii()
