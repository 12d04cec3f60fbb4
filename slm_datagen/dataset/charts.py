"""The dataset card's PNG charts (matplotlib, Agg backend): length histograms and examples per law.

matplotlib ships no Hangul font and renders Korean as empty boxes. The charts use NanumGothic from the
`koreanize-matplotlib` package (a dependency; the font is © NAVER under the SIL Open Font License 1.1), registered
with matplotlib from the package's directory — the package itself is not imported, as it changes global rcParams and
imports `distutils`. Failing that, an installed Korean font (Nanum, Noto CJK, Malgun, AppleGothic …); with none at
all, labels are romanised (Revised Romanization, syllable by syllable, without sound-change rules: 소득세법 ->
"sodeuksebeop") and the card's tables give the Korean next to it. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_INITIALS = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
_MEDIALS = (
    "a",
    "ae",
    "ya",
    "yae",
    "eo",
    "e",
    "yeo",
    "ye",
    "o",
    "wa",
    "wae",
    "oe",
    "yo",
    "u",
    "wo",
    "we",
    "wi",
    "yu",
    "eu",
    "ui",
    "i",
)
_FINALS = (
    "",
    "k",
    "k",
    "k",
    "n",
    "n",
    "n",
    "t",
    "l",
    "k",
    "m",
    "l",
    "l",
    "l",
    "p",
    "l",
    "m",
    "p",
    "p",
    "t",
    "t",
    "ng",
    "t",
    "t",
    "k",
    "t",
    "p",
    "t",
)
_KOREAN_FONT_HINTS = (
    "Nanum",
    "Noto Sans CJK",
    "Noto Serif CJK",
    "Noto Sans KR",
    "Noto Serif KR",
    "Malgun",
    "AppleGothic",
    "Apple SD Gothic",
    "UnDotum",
    "UnBatang",
    "Baekmuk",
    "D2Coding",
    "Source Han Sans",
)
LENGTHS_PNG = "lengths.png"
LAWS_PNG = "laws.png"
MAX_LAWS_IN_CHART = 20


def romanize(text: str) -> str:
    """Hangul syllables -> Revised Romanization letters; everything else unchanged. "상속세 및 증여세법" ->
    "sangsokse mit jeungyeosebeop"."""
    out = []
    for ch in text:
        code = ord(ch) - 0xAC00
        if 0 <= code <= 11171:
            initial, rest = divmod(code, 21 * 28)
            medial, final = divmod(rest, 28)
            out.append(_INITIALS[initial] + _MEDIALS[medial] + _FINALS[final])
        else:
            out.append(ch)
    return "".join(out)


BUNDLED_FONT_PACKAGE, BUNDLED_FONT_FILE = "koreanize_matplotlib", "fonts/NanumGothic.ttf"


def bundled_font_path() -> Path | None:
    """NanumGothic.ttf inside the installed koreanize-matplotlib package, found without importing it."""
    from importlib.util import find_spec  # noqa: PLC0415

    spec = find_spec(BUNDLED_FONT_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / BUNDLED_FONT_FILE
        if path.is_file():
            return path
    return None


def hangul_font() -> str | None:
    """The family name of a font that can draw Hangul (the bundled NanumGothic first), or None."""
    from matplotlib import font_manager  # noqa: PLC0415

    bundled = bundled_font_path()
    if bundled is not None:
        if not any(Path(entry.fname) == bundled for entry in font_manager.fontManager.ttflist):
            font_manager.fontManager.addfont(str(bundled))
        return font_manager.FontProperties(fname=str(bundled)).get_name()
    for entry in font_manager.fontManager.ttflist:
        if any(hint in entry.name for hint in _KOREAN_FONT_HINTS):
            return entry.name
    return None


def chart_label(text: str, font: str | None) -> str:
    return text if font else romanize(text)


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _save(fig: Any, path: Path) -> Path:
    from slm_forest.files import atomic_path  # noqa: PLC0415

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def plot_lengths(stats: dict[str, Any], path: Path) -> Path:
    """Question and answer length histograms side by side, from the bins in `stats`."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, title in ((axes[0], "question_chars", "question length"), (axes[1], "answer_chars", "answer length")):
        hist = stats[key]["histogram"]
        edges, counts = hist["edges"], hist["counts"]
        if counts:
            widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
            ax.bar(edges[:-1], counts, width=widths, align="edge", color="#4C72B0", edgecolor="white")
        ax.set_title(f"{title} (characters), median {stats[key]['median']}")
        ax.set_xlabel("characters")
        ax.set_ylabel("examples")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_laws(stats: dict[str, Any], path: Path, font: str | None) -> Path:
    """Examples per law (top 20), stacked by split; Korean labels when a Hangul font exists, else romanised."""
    plt = _pyplot()
    rows = list(stats["by_law"].items())[:MAX_LAWS_IN_CHART]
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(rows), 2) + 1.2))
    labels = [chart_label(law, font) for law, _ in rows][::-1]
    left = [0] * len(rows)
    colors = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}
    for split in ("train", "val", "test"):
        values = [counts[split] for _, counts in rows][::-1]
        ax.barh(labels, values, left=left, color=colors[split], label=split)
        left = [a + b for a, b in zip(left, values)]
    if font:
        for label in ax.get_yticklabels():
            label.set_fontfamily(font)
    ax.set_xlabel("examples")
    ax.set_title("examples per law" + ("" if font else " (law names romanised: no Hangul font installed)"))
    ax.legend(loc="lower right")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def write_charts(stats: dict[str, Any], directory: Path) -> tuple[list[Path], str | None]:
    """Both charts; returns their paths and the Hangul font used (None = romanised labels)."""
    font = hangul_font()
    return [plot_lengths(stats, directory / LENGTHS_PNG), plot_laws(stats, directory / LAWS_PNG, font)], font
