"""The stage runner: manifests written last, skipping, --force, missing upstream, incomplete stages."""

from __future__ import annotations

import json
import os
import sys
import types

import pytest

from slm_forest import pipeline
from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, write_jsonl
from slm_forest.pipeline import StageResult, StageSpec, run_stage, stage_range

CALLS: list[str] = []


def _first(ctx):
    CALLS.append("first")
    out = ctx.stage_dir / "rows.jsonl"
    write_jsonl(out, [{"n": i, "text": "한국어"} for i in range(ctx.option("rows", 3))])
    return StageResult(outputs=[out], counts={"rows": ctx.option("rows", 3)})


def _second(ctx):
    CALLS.append("second")
    rows = list(read_jsonl(ctx.upstream_dir("collect") / "rows.jsonl"))
    out = ctx.stage_dir / "double.jsonl"
    write_jsonl(out, [{"n": r["n"] * 2} for r in rows])
    return StageResult(outputs=[out], counts={"rows": len(rows)}, complete=ctx.option("complete", True))


def _boom(ctx):
    CALLS.append("boom")
    raise RuntimeError("killed half-way")


@pytest.fixture
def fake_stages(monkeypatch):
    module = types.ModuleType("fake_stages_mod")
    module.first, module.second, module.boom = _first, _second, _boom
    monkeypatch.setitem(sys.modules, "fake_stages_mod", module)
    specs = {
        "collect": StageSpec("collect", "fake_stages_mod:first", (), "first"),
        "prepare": StageSpec("prepare", "fake_stages_mod:second", ("collect",), "second"),
    }
    monkeypatch.setattr(pipeline, "STAGES", specs)
    CALLS.clear()
    return specs


def _cfg(*overrides):
    return load_config(None, ["run_name=t", *overrides])


def test_manifest_records_inputs_outputs_and_versions(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    report = run_stage(cfg, "prepare")
    manifest = json.loads((cfg.run_dir() / "prepare" / "manifest.json").read_text())
    assert manifest["stage"] == "prepare" and manifest["complete"] is True
    assert manifest["inputs"][0]["path"] == "collect/rows.jsonl" and manifest["inputs"][0]["rows"] == 3
    assert manifest["outputs"][0]["path"] == "prepare/double.jsonl" and len(manifest["outputs"][0]["sha256"]) == 64
    assert "python" in manifest["versions"] and "pydantic" in manifest["versions"]
    assert report.counts == {"rows": 3}


def test_second_run_skips_and_force_redoes(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    run_stage(cfg, "prepare")
    assert CALLS == ["first", "second"]
    assert run_stage(cfg, "collect").skipped and run_stage(cfg, "prepare").skipped
    assert CALLS == ["first", "second"]
    assert not run_stage(cfg, "prepare", force=True).skipped
    assert CALLS == ["first", "second", "second"]


def test_changed_config_or_upstream_output_reruns_downstream(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    run_stage(cfg, "prepare")
    # A config change in the upstream section reruns it; its new output then reruns the downstream stage.
    cfg2 = _cfg("collect.on_error=fail")
    assert not run_stage(cfg2, "collect", options={"rows": 5}).skipped
    assert not run_stage(cfg2, "prepare").skipped
    assert CALLS == ["first", "second", "first", "second"]


def test_missing_upstream_names_the_command(fake_stages):
    with pytest.raises(SlmError, match=r"run `slm collect"):
        run_stage(_cfg(), "prepare")


def test_deleted_output_is_redone(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    (cfg.run_dir() / "collect" / "rows.jsonl").unlink()
    assert not run_stage(cfg, "collect").skipped


def test_failed_stage_keeps_the_finished_result(fake_stages, monkeypatch):
    cfg = _cfg()
    run_stage(cfg, "collect")
    run_stage(cfg, "prepare")
    fake_stages["collect"] = StageSpec("collect", "fake_stages_mod:boom", (), "boom")
    with pytest.raises(RuntimeError):
        run_stage(cfg, "collect", force=True)  # fails before writing anything
    fake_stages["collect"] = StageSpec("collect", "fake_stages_mod:first", (), "first")
    assert run_stage(cfg, "collect").skipped and run_stage(cfg, "prepare").skipped


def test_half_replaced_outputs_are_not_trusted(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    run_stage(cfg, "prepare")
    rows = cfg.run_dir() / "collect" / "rows.jsonl"
    stat = rows.stat()
    rows.write_text(rows.read_text())  # same bytes, rewritten: as a run that died after replacing this file
    os.utime(rows, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(SlmError, match=r"rows\.jsonl: it was rewritten .* after stage 'collect' wrote its manifest"):
        run_stage(cfg, "prepare", force=True)
    assert not run_stage(cfg, "collect").skipped  # redone, so prepare can run again
    assert run_stage(cfg, "prepare").skipped  # the redone collect wrote the same content: nothing to redo


def test_incomplete_stage_is_not_skipped_and_blocks_downstream(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    report = run_stage(cfg, "prepare", options={"complete": False})
    assert not report.complete
    assert not run_stage(cfg, "prepare").skipped  # reruns to resume


def test_stage_range():
    assert stage_range(None, None)[0] == "collect" and stage_range(None, None)[-1] == "export"
    assert stage_range("distill", "build") == ["distill", "build"]
    with pytest.raises(SlmError, match="unknown stage"):
        stage_range("trian", None)
    with pytest.raises(SlmError, match="comes after"):
        stage_range("train", "collect")


def test_limited_trial_run_does_not_pass_for_the_full_run(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    assert not run_stage(cfg, "prepare", options={"limit": 2}).skipped
    assert run_stage(cfg, "prepare", options={"limit": 2}).skipped
    assert not run_stage(cfg, "prepare").skipped  # the full run is a different fingerprint


def test_dry_run_keeps_the_previous_manifest(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    run_stage(cfg, "prepare")
    before = (cfg.run_dir() / "prepare" / "manifest.json").read_text()
    report = run_stage(cfg, "prepare", options={"dry_run": True})
    assert report.dry_run and report.manifest is None
    assert (cfg.run_dir() / "prepare" / "manifest.json").read_text() == before


def _edit_in_place(path, old: bytes, new: bytes) -> None:
    """Change bytes without changing the length, then put the modification time back (what `touch -r` does)."""
    stat = path.stat()
    data = path.read_bytes()
    assert old in data and len(old) == len(new)
    path.write_bytes(data.replace(old, new, 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_same_size_edit_with_the_mtime_restored_is_refused_downstream(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    rows = cfg.run_dir() / "collect" / "rows.jsonl"
    _edit_in_place(rows, b'"n":1', b'"n":9')
    with pytest.raises(SlmError) as info:
        run_stage(cfg, "prepare")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{rows}: its contents changed (sha256 differs")
    assert "rerun `slm collect CONFIG --force`" in message
    assert not (cfg.run_dir() / "prepare" / "manifest.json").exists()


def test_same_size_edit_of_its_own_output_redoes_the_stage(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    rows = cfg.run_dir() / "collect" / "rows.jsonl"
    _edit_in_place(rows, b'"n":1', b'"n":9')
    report = run_stage(cfg, "collect")
    assert not report.skipped and "redoing" in report.summary and "sha256" in report.summary
    assert b'"n":1' in rows.read_bytes()  # remade from its inputs
    assert run_stage(cfg, "collect").skipped


def _weights_stage(ctx):
    out = ctx.stage_dir / "adapter_model.safetensors"
    out.write_bytes(b"\x00" * 64)
    return StageResult(outputs=[out])


def test_weights_files_keep_the_size_and_mtime_check(fake_stages, monkeypatch):
    monkeypatch.setattr(sys.modules["fake_stages_mod"], "weights", _weights_stage, raising=False)
    fake_stages["collect"] = StageSpec("collect", "fake_stages_mod:weights", (), "weights")
    cfg = _cfg()
    run_stage(cfg, "collect")
    _edit_in_place(cfg.run_dir() / "collect" / "adapter_model.safetensors", b"\x00", b"\x01")
    assert run_stage(cfg, "collect").skipped  # gigabytes are not re-hashed on every run: size + mtime only


def test_temporaries_of_a_killed_run_are_swept_at_the_start_of_the_next(fake_stages):
    cfg = _cfg()
    run_stage(cfg, "collect")
    stage = cfg.run_dir() / "collect"
    stale = [stage / ".rows.jsonl.k3x_9a0q.tmp", stage / "cache" / ".page-1.json.abcdefgh.tmp"]
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half a file")
    (stage / ".base_model.tmp").mkdir()
    (stage / ".base_model.tmp" / "config.json").write_text("{}")
    (stage / ".model.gguf.tmp").write_bytes(b"half a GGUF")
    stale.append(stage / ".model.gguf.tmp")
    kept = [stage / ".gitignore", stage / "notes.tmp", stage / ".notes.tmp", stage / "cache" / "page-1.json"]
    for path in kept:
        path.write_text("keep")
    assert run_stage(cfg, "collect").skipped  # swept even when the stage has nothing to redo
    assert not any(path.exists() for path in stale) and not (stage / ".base_model.tmp").exists()
    assert all(path.exists() for path in kept)


def test_a_stage_already_running_in_its_directory_is_refused(fake_stages):
    import fcntl

    cfg = _cfg()
    run_stage(cfg, "collect")
    stage = cfg.run_dir() / "collect"
    held = os.open(stage, os.O_RDONLY)  # what a second `slm collect` in another terminal would hold
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SlmError, match=r"stage 'collect' is already running here"):
            run_stage(cfg, "collect", force=True)
    finally:
        os.close(held)
    assert not run_stage(cfg, "collect", force=True).skipped  # released: runs again
    assert not [p for p in stage.iterdir() if p.name.startswith(".")]  # the lock leaves no file


def test_a_rebuilt_index_changes_evaluates_signature_unless_retrieval_is_off(tmp_path):
    from slm_forest.config import RunConfig
    from slm_forest.manifest import FileEntry, Manifest, write_manifest
    from slm_forest.pipeline import evaluate_signature

    cfg = RunConfig(runs_dir=str(tmp_path), run_name="r")
    without_index = evaluate_signature(cfg)

    def index_built(sha: str) -> None:
        entry = FileEntry(path="index/index.json", sha256=sha, bytes=1)
        write_manifest(
            cfg.run_dir() / "index",
            Manifest(
                stage="index",
                run_name="r",
                fingerprint="f",
                config={},
                outputs=[entry],
                started_at="t",
                finished_at="t",
                seconds=0.0,
            ),
        )

    index_built("a" * 64)
    first = evaluate_signature(cfg)
    index_built("b" * 64)
    assert without_index != first != evaluate_signature(cfg)
    off = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"retrieve": False})})
    assert "index" not in evaluate_signature(off)
