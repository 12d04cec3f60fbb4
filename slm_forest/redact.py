"""Secrets never reach a message, a log line, a traceback or an artifact.

Keys live only in environment variables (the config names them). Whatever text leaves the process — the CLI's
error lines and tracebacks (SLM_DEBUG=1 too), anything written to stdout/stderr (rich, tqdm, warnings, the default
excepthook), every log record, and every text artifact written through slm_forest.files (manifests, cards, JSONL) —
has each known secret's value replaced by `<NAME>`, the variable that holds it. A server that echoes the bearer
token back in a 401 body therefore shows `Bearer <HF_TOKEN>`.

Known secrets: the variables in KNOWN_SECRET_ENVS, the ones a loaded config names (teachers' `api_key_env`, the
law.go.kr `oc_env`), the ones commands register (`slm serve --api-key-env`), the token huggingface_hub stored on
disk, and any variable whose name ends like a credential (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`).
Values shorter than 6 characters (8 for names only guessed from their shape) are left alone: replacing "test"
everywhere would garble every message.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

KNOWN_SECRET_ENVS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "LAWGO_OC",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "WANDB_API_KEY",
)
_CREDENTIAL_NAME = re.compile(r"(?:API_KEY|ACCESS_KEY|_TOKEN|_SECRET|_PASSWORD)$")
MIN_NAMED = 6
MIN_GUESSED = 8

_registered: set[str] = set()

Secrets = list[tuple[str, str]]  # (value, the variable's name), longest value first


def register_secret_envs(names: Iterable[str | None]) -> None:
    """Treat these environment variables as secrets from now on (a config's api_key_env, serve's key variable)."""
    _registered.update(name for name in names if name)


def _hf_stored_token() -> str | None:
    """The token `huggingface-cli login` saved, read the way huggingface_hub finds it (without importing it)."""
    path = os.environ.get("HF_TOKEN_PATH") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "token"
    )
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def known_secrets() -> Secrets:
    """The secret values in this process's environment now, each with the name shown in its place."""
    named = set(KNOWN_SECRET_ENVS) | _registered
    found: dict[str, str] = {}
    for name, raw in os.environ.items():
        value = raw.strip()
        if name in named:
            if len(value) >= MIN_NAMED:
                found.setdefault(value, name)
        elif _CREDENTIAL_NAME.search(name) and len(value) >= MIN_GUESSED and not re.search(r"[\s/]", value):
            found.setdefault(value, name)
    stored = _hf_stored_token()
    if stored and len(stored) >= MIN_NAMED:
        found.setdefault(stored, "HF_TOKEN")
    for value, name in list(found.items()):
        encoded = quote(value, safe="")  # as it appears in a URL query (law.go.kr's OC=…)
        if encoded != value:
            found.setdefault(encoded, name)
    return sorted(found.items(), key=lambda item: -len(item[0]))


def scrub(text: str, secrets: Secrets | None = None) -> str:
    """`text` with every secret value replaced by `<NAME>`."""
    for value, name in known_secrets() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, f"<{name}>")
    return text


class ScrubbingWriter:
    """A text stream that scrubs every write before passing it on; everything else is the wrapped stream's."""

    def __init__(self, stream: Any, secrets: Secrets | None = None) -> None:
        self._stream = stream
        self._secrets = secrets  # None: look the secrets up at each write (stdout/stderr live for the whole run)

    def write(self, text: str) -> int:
        self._stream.write(scrub(text, self._secrets))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer, close …
        return getattr(self._stream, name)


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Bake a log record's message (and traceback) into scrubbed text, whatever handler formats it later."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string still must not leak its arguments
        message = str(record.msg)
    record.msg, record.args = scrub(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


class SecretFilter(logging.Filter):
    """For handlers of their own (attach with handler.addFilter); `install` covers every logger already."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_installed = False


def install() -> None:
    """Scrub stdout, stderr and every log record for the rest of the process (the CLI calls this first)."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.stdout = ScrubbingWriter(sys.stdout)  # type: ignore[assignment]
    sys.stderr = ScrubbingWriter(sys.stderr)  # type: ignore[assignment]
    make_record = logging.getLogRecordFactory()

    def scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(make_record(*args, **kwargs))

    logging.setLogRecordFactory(scrubbed_record)
