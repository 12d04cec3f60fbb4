"""The one error type users see: a message that names the file, line or key, and a hint with the fix.

The CLI's error boundary prints `error: <message>` and `hint: <hint>` without a traceback (SLM_DEBUG=1 shows it).
"""

from __future__ import annotations


class SlmError(Exception):
    """A failure the user can fix. `message` says what and where; `hint` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, as printed by the CLI
        return f"{self.message} — {self.hint}" if self.hint else self.message
