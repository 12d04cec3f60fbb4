"""Test isolation: no network to any hub, no real API keys, every test in its own working directory.

The Hugging Face variables must be set before anything imports transformers/datasets, hence at module import.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"

_SECRET_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LAWGO_OC", "HF_TOKEN", "WANDB_API_KEY", "GROQ_API_KEY")


@pytest.fixture(autouse=True)
def _isolate(tmp_path, monkeypatch):
    """Each test runs in a fresh cwd with no real secrets in the environment."""
    for name in _SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout (real corpus, benchmarks); tests that need it skip when it is absent."""
    if not SHARED.exists():
        pytest.skip("../shared is not beside the checkout")
    return SHARED
