"""`slm data stats DIR`: the numbers of a built dataset (the same ones its README.md card shows).

The lead registers `data_stats` on the `data` sub-app. Light module: rich and json only, so `slm --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from slm_datagen.dataset.stats import dataset_stats, print_dataset_stats


def data_stats(
    path: Annotated[Path, typer.Argument(help="a built dataset directory, e.g. runs/<run>/build", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="print the numbers as JSON instead of tables")] = False,
) -> None:
    """Print a built dataset's counts per source kind, law, audience and split, rejections, lengths, teachers, cost."""
    if as_json:
        sys.stdout.write(json.dumps(dataset_stats(path), ensure_ascii=False, indent=2) + "\n")
        return
    print_dataset_stats(path)
