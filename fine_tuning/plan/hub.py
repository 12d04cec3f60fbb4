"""A Hugging Face repo's ``config.json`` without transformers: the local cache first, else that one file downloaded.

Used by `fine_tuning.plan.registry.get_model_spec` for hub ids outside the registry. The environment
(HF_HUB_CACHE, HF_HOME, HF_HUB_OFFLINE …) is read at call time, not at import, so tests and callers may change it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["hub_config"]


def _hub_cache_dir() -> str:
    """The hub cache directory as the environment says *now* (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return os.path.expanduser(os.environ["HUGGINGFACE_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "huggingface", "hub")


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub interprets it, read at call time."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def _hf_cache_config(repo_id: str) -> Path | None:
    """config.json of a repo already in a local Hugging Face cache (no network), newest snapshot first.

    Also finds snapshots without a ``refs/main`` file (copied caches), which huggingface_hub's own lookup skips.
    """
    roots = [_hub_cache_dir(), os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub")]
    folder = "models--" + repo_id.replace("/", "--")
    for root in dict.fromkeys(roots):
        snapshots = Path(root) / folder / "snapshots"
        if snapshots.is_dir():
            found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
            if found:
                return found[0]
    return None


def hub_config(repo_id: str) -> Path:
    """config.json of a Hugging Face repo: from the local cache, else downloaded (only that file, a few kB).

    Honours HF_HUB_OFFLINE: offline, a repo that is not cached is a ValueError saying how to get it. Any hub error
    (unknown or gated repo, no network) is a ValueError too.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    cache_dir = _hub_cache_dir()
    try:  # the cache first: no network round trip for a model that is already here
        return Path(hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    copied = _hf_cache_config(repo_id)
    if copied is not None:
        return copied
    if _hub_offline():
        raise ValueError(
            f"model {repo_id!r} is not in the local Hugging Face cache ({cache_dir}) and HF_HUB_OFFLINE is set, so "
            "its config.json cannot be downloaded. Run once online (unset HF_HUB_OFFLINE) to cache it, pass a local "
            "model directory instead, or plan with `slm plan CONFIG --model-config path/to/config.json`"
        )
    try:
        return Path(hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, etag_timeout=10))
    except GatedRepoError:
        raise ValueError(
            f"{repo_id!r} is a gated model on the Hugging Face Hub: accept its license on the model page and set "
            "HF_TOKEN to a token of that account"
        ) from None
    except RepositoryNotFoundError:
        raise ValueError(f"{repo_id!r} was not found on the Hugging Face Hub (a private repo needs HF_TOKEN)") from None
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:  # no network, hub down, no config.json
        raise ValueError(
            f"cannot fetch config.json of {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}); check the id and the network, or pass a "
            "local model directory"
        ) from None
