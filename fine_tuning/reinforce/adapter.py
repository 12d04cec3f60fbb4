"""The RL adapter of a run, as later stages see it: `reinforce/adapter` when the reinforce stage finished on the
current SFT adapter, else the reason it cannot be used (evaluate drops its column, export falls back to SFT or fails).

Reinforce is an optional stage, so evaluate and export do not declare it upstream; its output hashes enter their
fingerprints instead (`slm_forest.pipeline.reinforce_signature`). Pure Python: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slm_forest.manifest import read_manifest


@dataclass(frozen=True)
class RlAdapter:
    path: Path | None  # None: not usable, see `reason`
    reason: str  # why not ("" when usable)
    facts: dict[str, Any]  # steps, first/last reward, from reinforce_summary.json


def rl_adapter(run_dir: Path) -> RlAdapter:
    stage = run_dir / "reinforce"
    manifest = read_manifest(stage)
    adapter = stage / "adapter"
    if manifest is None or not manifest.complete or not (adapter / "adapter_config.json").exists():
        return RlAdapter(None, "the reinforce stage has not finished for this run", {})
    train = read_manifest(run_dir / "train")
    trained_on = {e.path: e.sha256 for e in manifest.inputs if e.path.startswith("train/")}
    current = {e.path: e.sha256 for e in train.outputs} if train is not None else {}
    if trained_on and any(current.get(path) != digest for path, digest in trained_on.items()):
        return RlAdapter(None, "reinforce/adapter was trained from an older train stage (rerun `slm reinforce`)", {})
    return RlAdapter(adapter, "", _summary_facts(stage / "reinforce_summary.json"))


def _summary_facts(path: Path) -> dict[str, Any]:
    import json

    if not path.exists():
        return {}
    summary = json.loads(path.read_text(encoding="utf-8"))
    keys = ("global_step", "reward_first", "reward_last", "zero_variance_groups", "groups", "resumed_from")
    return {key: summary.get(key) for key in keys}
