"""llama.cpp's HF→GGUF converter: found through LLAMA_CPP_CONVERT, LLAMA_CPP_DIR or PATH, run on merged/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.progress import console

CONVERTER_NAMES = ("convert_hf_to_gguf.py", "convert_hf_to_gguf", "convert-hf-to-gguf")


GGUF_INSTALL_HINT = (
    "install llama.cpp's converter: `git clone https://github.com/ggml-org/llama.cpp && pip install -r "
    "llama.cpp/requirements/requirements-convert_hf_to_gguf.txt`, then `export LLAMA_CPP_DIR=$PWD/llama.cpp` "
    "(or set LLAMA_CPP_CONVERT to the script)"
)


def gguf_mode(value: Any) -> str:
    """export.gguf: false → off; true → required (error when llama.cpp is missing); "auto" → when installed."""
    if value is True or value in ("true", "required"):
        return "required"
    if value == "auto":
        return "auto"
    return "off"


def find_gguf_converter() -> list[str] | None:
    """The command prefix that runs llama.cpp's HF→GGUF converter, or None."""
    candidates: list[Path] = []
    if os.environ.get("LLAMA_CPP_CONVERT"):
        candidates.append(Path(os.environ["LLAMA_CPP_CONVERT"]))
    if os.environ.get("LLAMA_CPP_DIR"):
        candidates.append(Path(os.environ["LLAMA_CPP_DIR"]) / "convert_hf_to_gguf.py")
    for name in CONVERTER_NAMES:
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    for path in candidates:
        if path.is_file():
            return [sys.executable, str(path)] if path.suffix == ".py" else [str(path)]
    return None


def convert_to_gguf(command: list[str], merged_dir: Path, out_file: Path, outtype: str) -> Path:
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    tmp.unlink(missing_ok=True)
    args = [*command, str(merged_dir), "--outfile", str(tmp), "--outtype", outtype]
    console.print(f"export: converting to GGUF ({outtype}) with {command[-1]}")
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise SlmError(
            f"GGUF conversion failed (exit {proc.returncode}): {last[0][:300]}",
            "run the same command by hand to see the full log: "
            + " ".join(args[:2])
            + f" {merged_dir} --outtype {outtype}",
        )
    os.replace(tmp, out_file)
    return out_file
