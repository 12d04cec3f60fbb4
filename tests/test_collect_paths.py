"""Every path a dump source names is read or listed with its reason: links, loops, pipes, sockets, unreadable files."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slm_datagen.collect.listing import glob_regex
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.pipeline import run_stage
from tests.test_collect_stage import FIXTURES, config, documents

REPO = Path(__file__).resolve().parent.parent


def _skipped(run: str = "t") -> dict[str, str]:
    return {
        Path(row["input"]).name: row["reason"] for row in read_jsonl(Path("runs") / run / "collect" / "skipped.jsonl")
    }


def _laws(directory: Path) -> Path:
    directory.mkdir(parents=True)
    shutil.copy(FIXTURES / "lawgo/law_single_dict.json", directory / "single.json")
    return directory


def test_directory_links_are_followed_once_and_broken_paths_are_listed(tmp_path, capsys):
    dump = tmp_path / "dump"
    _laws(dump / "own")
    _laws(tmp_path / "elsewhere")
    shutil.copy(FIXTURES / "lawgo/expc_detail.json", tmp_path / "elsewhere/expc.json")
    (dump / "linked").symlink_to(tmp_path / "elsewhere")  # a linked subdirectory: read
    (dump / "linked_again").symlink_to(tmp_path / "elsewhere")  # the same real directory: read once
    (dump / "own/up").symlink_to(dump)  # a loop back to the root
    (dump / "dangling.json").symlink_to(tmp_path / "gone.json")
    (dump / "a").symlink_to(dump / "b")  # a link loop between two names
    (dump / "b").symlink_to(dump / "a")
    os.mkfifo(dump / "pipe.json")  # never opened: reading it would block
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dump / "sock.json"))
        report = run_stage(config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump)}]}), "collect")
    assert report.counts["documents"] == 2  # expc.json once; single.json three times = one document + duplicates
    assert {d.source.rsplit("/", 2)[-2] for d in documents()} == {"linked"}  # the first path that reached it
    skipped = _skipped()
    assert set(skipped) == {"a", "b", "dangling.json", "up", "pipe.json", "sock.json"}
    assert skipped["a"].startswith("symbolic link loop") and skipped["b"].startswith("symbolic link loop")
    assert skipped["dangling.json"] == f"dangling symbolic link (→ {tmp_path / 'gone.json'}, which does not exist)"
    assert skipped["up"].startswith("symbolic link loop") and "a directory above it" in skipped["up"]
    assert skipped["pipe.json"].startswith("a named pipe") and skipped["sock.json"].startswith("a socket")
    err = capsys.readouterr().err
    assert f"{dump / 'linked_again'} is the same as {dump / 'linked'}" in err
    assert report.manifest.stats["warnings"] == [
        f"collect.sources.0: {dump / 'linked_again'} is the same as {dump / 'linked'} (a symbolic link): read once"
    ]


def test_a_broken_link_stops_the_run_with_on_error_fail(tmp_path):
    dump = _laws(tmp_path / "dump")
    (dump / "z.json").symlink_to(tmp_path / "gone.json")
    cfg = config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump)}], "on_error": "fail"})
    with pytest.raises(SlmError, match=r"z\.json: dangling symbolic link"):
        run_stage(cfg, "collect")


def test_fixing_an_unreadable_path_reruns_collect(tmp_path):
    dump = _laws(tmp_path / "dump")
    (dump / "z.json").symlink_to(tmp_path / "later.json")
    cfg = config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump)}]})
    assert run_stage(cfg, "collect").counts["skipped"] == 1
    shutil.copy(FIXTURES / "lawgo/expc_detail.json", tmp_path / "later.json")  # the link works now
    again = run_stage(cfg, "collect")
    assert not again.skipped and again.counts["documents"] == 2 and again.counts["skipped"] == 0


def test_an_empty_directory_beside_other_sources_is_named_in_a_warning(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/.hidden").write_text("x")
    sources = [{"kind": "dump", "path": str(tmp_path / "empty")}, {"kind": "bundled", "include": ["rulings"]}]
    report = run_stage(config(tmp_path, {"sources": sources}), "collect")
    assert report.counts["documents"] == 96
    warning = f"collect.sources.0: {tmp_path / 'empty'} is an empty directory (no files); nothing read from it"
    assert report.manifest.stats["warnings"] == [warning]
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "empty directory" in line]
    assert line == f"warning: {warning}"


def test_skipped_inputs_are_printed_with_their_reasons(tmp_path, capsys):
    dump = _laws(tmp_path / "dump")
    for index in range(12):
        (dump / f"bad{index:02}.json").write_text("{", encoding="utf-8")
    run_stage(config(tmp_path, {"sources": [{"kind": "dump", "path": str(dump)}]}), "collect")
    err = capsys.readouterr().err.splitlines()
    start = err.index("collect: 12 input(s) skipped:")
    shown = err[start + 1 : start + 11]
    assert (
        shown[0]
        == f"  {dump / 'bad00.json'}:line 1, column 2: truncated JSON (Expecting property name enclosed in double quotes)"
    )
    assert [line.split(":")[0].strip() for line in shown] == [str(dump / f"bad{i:02}.json") for i in range(10)]
    assert err[start + 11] == "  … and 2 more"
    assert err[start + 12] == "  all of them, with reasons: runs/t/collect/skipped.jsonl"


def test_a_file_that_cannot_be_opened_is_listed_even_for_root(tmp_path):
    """chmod 000 stops everyone but root; as root, collect runs without the capabilities that bypass it."""
    dump = _laws(tmp_path / "dump")
    locked = dump / "locked.json"
    shutil.copy(FIXTURES / "lawgo/expc_detail.json", locked)
    locked.chmod(0)
    cfg_path = tmp_path / "t.yaml"
    cfg_path.write_text(
        yaml.safe_dump({"run_name": "t", "collect": {"sources": [{"kind": "dump", "path": str(dump)}]}})
    )
    command = [sys.executable, "-m", "slm_forest.cli", "collect", str(cfg_path)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop the capability that bypasses permissions")
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *command]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _skipped() == {"locked.json": "cannot read (Permission denied)"}
    assert f"  {locked}: cannot read (Permission denied)" in done.stderr.splitlines()


@pytest.mark.parametrize(
    "pattern, matches, not_matches",
    [
        ("**/*", ["a.json", "x/y/a.json"], []),
        ("*.json", ["a.json"], ["x/a.json", "a.xml"]),
        ("**/*.json", ["a.json", "x/y/a.json"], ["a.xml"]),
        ("laws/[!x]?.json", ["laws/ab.json"], ["laws/xb.json", "laws/abc.json"]),
    ],
)
def test_glob_patterns(pattern, matches, not_matches):
    regex = glob_regex(pattern)
    assert all(regex.match(path) for path in matches) and not any(regex.match(path) for path in not_matches)
