"""How `slm <command> --help` reads: flags as flags, arguments as arguments, value placeholders in capitals.

Typer 0.29 (with its own copy of Click) shows every parameter's Python type: `--force <bool>`, `--set <list[str]>`,
`--port <int>`, and a required argument as `{config}` in the usage line. A new user reads those as literal syntax. Every
`slm` command is built with `SlmCommand`, which renders them the way command-line tools usually do:

    Usage: slm train [OPTIONS] CONFIG          (was: slm train [OPTIONS] {config})
    --force                                    (was: --force <bool>)
    --set KEY=VALUE                            (an explicit metavar; was: --set <list[str]>)
    --port INTEGER                             (was: --port <int>)

An explicit `metavar=` on a parameter always wins. Choices (`auto|transformers|vllm`) are kept as Typer shows them.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand

# Typer's type labels → the placeholder words Click itself uses.
_PLACEHOLDERS = {
    "<int>": "INTEGER",
    "<float>": "FLOAT",
    "<str>": "TEXT",
    "<path>": "PATH",
    "<file>": "FILE",
    "<directory>": "DIRECTORY",
    "<list[str]>": "TEXT",
    "<list[int]>": "INTEGER",
    "<list[float]>": "FLOAT",
    "<list[Path]>": "PATH",
}
# Options that mean the same in every command get the same placeholder.
_BY_NAME = {"--set": "KEY=VALUE"}


def placeholder(type_label: str | None) -> str | None:
    """A value placeholder for a Typer type label (`<int>` → INTEGER); unknown labels (choices, ranges) unchanged."""
    if type_label is None:
        return None
    if type_label in _PLACEHOLDERS:
        return _PLACEHOLDERS[type_label]
    if type_label.endswith(" range>"):  # "<int range>": the range itself is printed beside it
        return _PLACEHOLDERS.get(type_label.replace(" range", ""), type_label)
    return type_label


class SlmArgument(TyperArgument):
    """An argument named in capitals in the usage line (`CONFIG`, `[QUESTION]`) with a placeholder for its type."""

    @property
    def display_name_raw(self) -> str:  # the name column of the help page and "Missing argument 'CONFIG'"
        return (self.metavar or self.name or "").upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Any) -> str | None:
        return placeholder(self.display_type(ctx))


class SlmCommand(TyperCommand):
    """A Typer command whose help shows flags without a type and values with a placeholder (module docstring)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # includes --help, added by Click after __init__
        for param in params:
            if isinstance(param, TyperArgument) and not isinstance(param, SlmArgument):
                param.__class__ = SlmArgument  # the same object, with the two display methods above
            elif param.param_type_name == "option" and param.metavar is None:
                if getattr(param, "is_flag", False):
                    param.metavar = ""  # a flag takes no value: show none
                else:
                    named = next((_BY_NAME[o] for o in param.opts if o in _BY_NAME), None)
                    param.metavar = named or placeholder(param.display_type(ctx))
        return params
