"""Publishing the built dataset on the Hugging Face Hub (`build.push_to_hub: user/repo`), as the stage's last step.

The upload cannot leave the stage inconsistent. What can be known before writing (HF_TOKEN set, HF_HUB_OFFLINE not
set) is checked before the stage writes anything, so a missing token is a one-line error that leaves the previous
build as it was. The upload itself runs once every file is written, and a failed upload (network, permissions, a
Hub error) is a warning with the command that retries it: the stage returns, the runner writes the manifest of the
files just written, and the manifest's stats record `hub: {pushed: false, error, retry}`. The token never appears in
a message: the Hub's error bodies can echo the Authorization header, so the text is scrubbed first.

Retry by hand: `python -m slm_datagen.dataset.hub runs/<run>/build user/repo` (same files, same private creation).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.redact import scrub

# The chat JSONL splits with the card and its charts, so the card's `configs` resolve on the Hub.
HUB_FILES = ["train.jsonl", "val.jsonl", "test.jsonl", "README.md", "*.png"]
_TOKEN_SHAPE = re.compile(r"hf_[A-Za-z0-9]{8,}")


def hub_token(repo_id: str) -> str:
    """HF_TOKEN, checked before the build writes anything: without it (or offline) the push cannot happen."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise SlmError(
            f"build.push_to_hub is {repo_id!r} but HF_TOKEN is not set",
            "export HF_TOKEN=<a write token from huggingface.co/settings/tokens>, or set build.push_to_hub: null",
        )
    if os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0"):
        raise SlmError(
            f"build.push_to_hub is {repo_id!r} but HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE to upload the dataset"
        )
    return token


def push_to_hub(stage_dir: Path, repo_id: str, token: str | None = None) -> str:
    """Upload the chat JSONL splits with the card and its charts; returns the dataset's URL.

    The token comes from HF_TOKEN only. A repository that does not exist yet is created private: publishing is a
    decision to make on the Hub, not a side effect of a build.
    """
    token = token or hub_token(repo_id)
    from huggingface_hub import HfApi  # noqa: PLC0415

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
    api.upload_folder(
        folder_path=str(stage_dir),
        repo_id=repo_id,
        repo_type="dataset",
        allow_patterns=HUB_FILES,
        commit_message="slm build: dataset, card and charts",
    )
    return f"https://huggingface.co/datasets/{repo_id}"


def scrub_token(text: str, token: str | None) -> str:
    """`text` on one line without the token (shown as `<HF_TOKEN>`, like every known secret: slm_forest.redact), nor
    anything shaped like a Hugging Face token (one passed in that the environment does not name)."""
    text = scrub(text)
    if token:
        text = text.replace(token, "<HF_TOKEN>")
    return " ".join(_TOKEN_SHAPE.sub("hf_***", text).split())


def retry_command(stage_dir: Path, repo_id: str) -> str:
    return f"python -m slm_datagen.dataset.hub {shlex.quote(str(stage_dir))} {shlex.quote(repo_id)}"


def push_after_build(stage_dir: Path, repo_id: str, token: str) -> dict[str, Any]:
    """The push as the stage's last step: what happened, for the manifest's stats; a failure is reported, not raised.

    Every exception counts: huggingface_hub raises its HTTP errors, httpx/requests network errors, OSError and
    ValueError (a malformed repo id) depending on where the upload stops.
    """
    try:
        url = push_to_hub(stage_dir, repo_id, token)
    except Exception as exc:  # noqa: BLE001 - the dataset is built: a failed upload must not undo that
        reason = scrub_token(f"{type(exc).__name__}: {exc}", token)[:300]
        return {"repo": repo_id, "pushed": False, "error": reason, "retry": retry_command(stage_dir, repo_id)}
    return {"repo": repo_id, "pushed": True, "url": url}


def main(argv: list[str] | None = None) -> int:
    """`python -m slm_datagen.dataset.hub BUILD_DIR REPO_ID`: the upload `slm build` does, on its own."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m slm_datagen.dataset.hub runs/<run>/build user/repo", file=sys.stderr)
        return 2
    stage_dir, repo_id = Path(args[0]), args[1]
    try:
        if not (stage_dir / "train.jsonl").is_file():
            raise SlmError(f"{stage_dir}: no train.jsonl here", "pass the build stage's directory, runs/<run>/build")
        token = hub_token(repo_id)
        result = push_after_build(stage_dir, repo_id, token)
    except SlmError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 1
    if not result["pushed"]:
        print(f"error: push to {repo_id} failed: {result['error']}", file=sys.stderr)
        return 1
    print(f"pushed to {result['url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
