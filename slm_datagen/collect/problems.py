"""`InputProblem`: one malformed input (a file, a record in it, or an API response), with where it is.

Parsers raise it with a position ("line 3", "byte 1024", "법령.조문.조문단위[4].조문번호"); the stage decides, per
`collect.on_error`, whether that skips the file (counted and listed in the manifest) or stops the run as an
SlmError that names the file and the position.
"""

from __future__ import annotations


class InputProblem(Exception):
    def __init__(self, message: str, where: str = "", *, unreadable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.unreadable = unreadable  # the file could not be opened or read at all (not a content problem)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message
