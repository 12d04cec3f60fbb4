"""Atomic writes never leave a half-written file; JSONL errors name file and line."""

from __future__ import annotations

import pytest

from slm_forest.errors import SlmError
from slm_forest.files import atomic_writer, read_jsonl, write_jsonl


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "data.jsonl"
    write_jsonl(target, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_jsonl(target, rows())
    assert list(read_jsonl(target)) == [{"a": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]  # no temp file left behind


def test_korean_is_written_readably(tmp_path):
    target = tmp_path / "k.jsonl"
    write_jsonl(target, [{"q": "부가가치세 신고는 언제 하나요?"}])
    assert "부가가치세" in target.read_text(encoding="utf-8")


def test_bad_line_names_file_and_line(tmp_path):
    target = tmp_path / "bad.jsonl"
    target.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(SlmError, match=r"bad\.jsonl:2"):
        list(read_jsonl(target))


def test_atomic_writer_binary(tmp_path):
    target = tmp_path / "b.bin"
    with atomic_writer(target, "wb") as out:
        out.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_artifacts_get_the_usual_file_mode(tmp_path):
    import os
    import stat

    target = tmp_path / "shared.jsonl"
    write_jsonl(target, [{"a": 1}])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
