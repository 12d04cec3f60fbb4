"""GGUF files for llama.cpp / Ollama / LM Studio: llama.cpp's own HF→GGUF converter, run on merged/.

Where the converter comes from, first found wins:
1. an installed llama.cpp: LLAMA_CPP_CONVERT (the script), LLAMA_CPP_DIR (a checkout) or `convert_hf_to_gguf.py` on
   PATH;
2. the pinned llama-cpp-python source distribution from PyPI, which carries llama.cpp's sources in
   `vendor/llama.cpp/` (`convert_hf_to_gguf.py`, its `conversion/` package and `gguf-py`). `pip download --no-deps
   --no-binary :all: llama-cpp-python==LLAMA_CPP_PYTHON` fetches it once into the cache (SLM_CACHE_DIR, default
   ~/.cache/slm-forest), and only those three paths are unpacked (~2 MB). The same sdist is what `pip install
   ".[gguf]"` builds llama-cpp-python from, so converter and runtime are the same llama.cpp.
The converter runs in a child process (`fine_tuning.export.llama_convert`, which also explains its two adjustments)
with this interpreter: it needs torch, numpy, sentencepiece and transformers, all installed with slm-forest.

`export.gguf`: false (off) · "auto" (convert when a converter is already here, never download) · true (convert at
16 bits: bf16 when training ran in bf16, else f16; downloads the converter when needed) · a type or a list of types
(`f16`, `bf16`, `q8_0`, `f32`), e.g. `[f16, q8_0]`: one `model-<type>.gguf` each.

Gemma's converter path reads the SentencePiece `tokenizer.model`, which transformers 5 does not save with the
tokenizer; without it the converter falls back to the BPE path and refuses the vocabulary ("BPE pre-tokenizer was not
recognized"). `copy_sentencepiece_model` puts the base model's file into merged/ when its pieces are the merged
tokenizer's vocabulary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.progress import console

LLAMA_CPP_PYTHON = "0.3.36"  # pinned: its vendor/llama.cpp is the converter; `pip install .[gguf]` builds the same one
CONVERTER_NAMES = ("convert_hf_to_gguf.py", "convert_hf_to_gguf", "convert-hf-to-gguf")
CONVERTER_PATHS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")  # what is unpacked from the sdist
OUTTYPES = ("f16", "bf16", "q8_0", "f32")
SENTENCEPIECE_MODEL = "tokenizer.model"

GGUF_INSTALL_HINT = (
    f"the converter comes from PyPI (llama-cpp-python=={LLAMA_CPP_PYTHON}'s sdist) when pip can reach it; offline, "
    "point LLAMA_CPP_DIR at a llama.cpp checkout (or LLAMA_CPP_CONVERT at convert_hf_to_gguf.py)"
)


@dataclass(frozen=True)
class GgufRequest:
    mode: str  # "off" | "auto" (only a converter already here) | "required"
    outtypes: tuple[str, ...]  # empty: 16-bit, chosen from the training dtype


def gguf_request(value: Any) -> GgufRequest:
    """export.gguf as a request; bad types are an SlmError naming the key."""
    if value is False or value is None or value == "false":
        return GgufRequest("off", ())
    if value is True or value in ("true", "required"):
        return GgufRequest("required", ())
    if value == "auto":
        return GgufRequest("auto", ())
    types = [value] if isinstance(value, str) else list(value)
    unknown = [t for t in types if t not in OUTTYPES]
    if unknown or not types:
        raise SlmError(
            f"export.gguf: {unknown[0] if unknown else '[]'} is not a GGUF type",
            f"use true, false, auto, or one or more of {', '.join(OUTTYPES)} (e.g. [f16, q8_0])",
        )
    return GgufRequest("required", tuple(dict.fromkeys(types)))


def gguf_mode(value: Any) -> str:
    return gguf_request(value).mode


def outtypes_for(request: GgufRequest, training_dtype: str | None) -> tuple[str, ...]:
    return request.outtypes or (("bf16",) if training_dtype == "bf16" else ("f16",))


# ----------------------------------------------------------------------------------------------- the converter
def cache_dir() -> Path:
    root = os.environ.get("SLM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "slm-forest"
    )
    return Path(root) / "llama.cpp"


def _launcher(llama_cpp_dir: Path) -> list[str]:
    return [sys.executable, "-m", "fine_tuning.export.llama_convert", str(llama_cpp_dir)]


def find_installed_converter() -> list[str] | None:
    """The command prefix for a llama.cpp the user installed (environment, PATH), or None."""
    candidates: list[Path] = []
    if os.environ.get("LLAMA_CPP_CONVERT"):
        candidates.append(Path(os.environ["LLAMA_CPP_CONVERT"]))
    if os.environ.get("LLAMA_CPP_DIR"):
        candidates.append(Path(os.environ["LLAMA_CPP_DIR"]) / "convert_hf_to_gguf.py")
    candidates += [Path(found) for name in CONVERTER_NAMES if (found := shutil.which(name))]
    for path in candidates:
        if not path.is_file():
            continue
        if path.suffix == ".py" and (path.parent / "gguf-py").is_dir():
            return _launcher(path.parent)  # a checkout: run through our launcher (llama_convert)
        return [sys.executable, str(path)] if path.suffix == ".py" else [str(path)]
    return None


def unpacked_converter() -> Path | None:
    """The pinned converter unpacked in the cache, or None."""
    root = cache_dir() / f"llama-cpp-python-{LLAMA_CPP_PYTHON}"
    return root if (root / "convert_hf_to_gguf.py").is_file() and (root / "gguf-py").is_dir() else None


def download_sdist() -> Path:
    """The pinned llama-cpp-python sdist in the cache, downloaded with pip when it is not there yet."""
    target = cache_dir()
    existing = sorted(target.glob(f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"))
    if existing:
        return existing[0]
    target.mkdir(parents=True, exist_ok=True)
    console.print(f"export: fetching llama.cpp's converter (llama-cpp-python=={LLAMA_CPP_PYTHON} sdist, ~77 MB)")
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet"]
    proc = subprocess.run(
        [*args, "-d", str(target), f"llama-cpp-python=={LLAMA_CPP_PYTHON}"], capture_output=True, text=True
    )
    found = sorted(target.glob(f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr or proc.stdout or "no output").strip().splitlines()[-1][:300]
        raise SlmError(f"could not download llama-cpp-python=={LLAMA_CPP_PYTHON}'s sdist: {last}", GGUF_INSTALL_HINT)
    return found[0]


def unpack_converter(sdist: Path) -> Path:
    """Unpack only the converter's paths of `vendor/llama.cpp/` from the sdist; atomic (a temp dir renamed)."""
    root = cache_dir() / f"llama-cpp-python-{LLAMA_CPP_PYTHON}"
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache_dir()))
    try:
        with tarfile.open(sdist) as archive:
            members = [
                m
                for m in archive.getmembers()
                if m.name.startswith(prefix) and m.name[len(prefix) :].startswith(CONVERTER_PATHS)
            ]
            for member in members:
                member.name = member.name[len(prefix) :]
            archive.extractall(tmp, members=members, filter="data")
        if not (tmp / "convert_hf_to_gguf.py").is_file():
            raise SlmError(f"{sdist}: no vendor/llama.cpp/convert_hf_to_gguf.py in it", "delete it and retry")
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def converter_command(mode: str) -> list[str] | None:
    """How to run the converter for this export.gguf mode: installed, cached, or (required) fetched; None if none."""
    installed = find_installed_converter()
    if installed is not None:
        return installed
    unpacked = unpacked_converter()
    if unpacked is None and mode == "required":
        unpacked = unpack_converter(download_sdist())
    return _launcher(unpacked) if unpacked is not None else None


def check_convertible(merged_dir: Path) -> None:
    """Refuse, before converting, what llama.cpp would convert but not load.

    Its phi2 architecture writes feed_forward_length = 4 × hidden_size whatever the config says (true of Phi-2 and
    Phi-1.5), so a Phi with another MLP width converts into a file llama.cpp rejects ("wrong shape")."""
    import json

    config = json.loads((merged_dir / "config.json").read_text(encoding="utf-8"))
    hidden, ffn = config.get("hidden_size"), config.get("intermediate_size")
    if config.get("model_type") == "phi" and hidden and ffn and ffn != 4 * hidden:
        raise SlmError(
            f"{merged_dir / 'config.json'}: intermediate_size {ffn} is not 4 × hidden_size ({4 * hidden}); llama.cpp's "
            "phi2 architecture assumes 4 × (as Phi-2 has), so its GGUF would not load",
            f"for the tiny Phi set train.tiny_model.intermediate_size: {4 * hidden} and retrain, or set export.gguf: "
            "false",
        )


def convert_to_gguf(command: list[str], merged_dir: Path, out_file: Path, outtype: str) -> Path:
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    tmp.unlink(missing_ok=True)
    args = [*command, str(merged_dir), "--outfile", str(tmp), "--outtype", outtype]
    console.print(
        f"export: converting {merged_dir.name}/ to {out_file.name} with llama.cpp's converter ({command[-1]})"
    )
    here = str(Path(__file__).resolve().parents[2])  # this checkout's fine_tuning, for the launcher
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        last = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "no output")
        raise SlmError(
            f"GGUF conversion failed (exit {proc.returncode}): {last.strip()[:300]}",
            "run the same command by hand to see the full log: " + " ".join(args[:-4]) + f" {merged_dir}",
        )
    os.replace(tmp, out_file)
    return out_file


# ------------------------------------------------------------------------------------------ tokenizer.model
def _base_sentencepiece_file(base_source: str) -> Path | None:
    local = Path(base_source)
    if local.is_dir():
        return local / SENTENCEPIECE_MODEL if (local / SENTENCEPIECE_MODEL).is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(base_source, SENTENCEPIECE_MODEL))
    except Exception:  # noqa: BLE001 - no such file in the repository, or offline: there is nothing to copy
        return None


def copy_sentencepiece_model(train_dir: Path, summary: dict[str, Any], merged_dir: Path, tokenizer: Any) -> str | None:
    """Copy the base's `tokenizer.model` into merged/ when its pieces are the merged tokenizer's first ids.

    The base is the one train_summary.json names (a tiny model's directory inside train/, or a hub id / path).
    Returns a note when the base has one that does not match (then the converter takes the tokenizer.json path)."""
    if (merged_dir / SENTENCEPIECE_MODEL).is_file():
        return None
    local = summary.get("base_model_dir")
    source = _base_sentencepiece_file(str(Path(train_dir) / local) if local else str(summary.get("base_model_path")))
    if source is None:
        return None
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(source))
    vocab = tokenizer.get_vocab()
    pieces = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]
    mismatched = [p for i, p in enumerate(pieces) if vocab.get(p, i) != i]
    if mismatched:
        return f"{source} was not copied: {len(mismatched)} of its pieces have other ids in the merged tokenizer"
    shutil.copyfile(source, merged_dir / SENTENCEPIECE_MODEL)
    return None
