"""Reading a run config: the YAML file (with line numbers), `--set` overrides, and one-line errors for both.

Every mistake is an SlmError that names where it was made: `<file>:<line>` for the YAML, `--set <key>=<value>`
for an override. Duplicate keys are errors (YAML would silently keep the last one), syntax errors point at the
line the mistake is on (PyYAML often notices it one line later), an empty file or a directory says so.
config.py holds the models; this module knows nothing of them except the root model it is handed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from slm_forest.errors import SlmError

# The union tags pydantic puts into error locations; dropped so users see "collect.sources.0.path".
UNION_TAGS = {"bundled", "dump", "lawgo"}
EXAMPLE = "configs/smoke.yaml"


@dataclass
class YamlSource:
    path: Path
    text: str
    data: dict
    lines: dict[str, int]  # dotted key → 1-based line


# ------------------------------------------------------------------------------------------------------ the file
def read_yaml_config(path: Path) -> YamlSource:
    """Read and parse one config file; every failure is an SlmError naming the file (and line)."""
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.y*ml"))[:3]
        example = f"e.g. {path / found[0]}" if found else f"e.g. {EXAMPLE}"
        raise SlmError(f"{path}: is a directory, not a config file", f"pass one YAML file ({example})")
    if not path.exists():
        raise SlmError(f"{path}: config file not found", f"pass a YAML file, e.g. {EXAMPLE}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SlmError(f"{path}: not UTF-8 text", "save the config as UTF-8") from None
    except OSError as exc:
        raise SlmError(
            f"{path}: cannot read the config ({exc.strerror or exc})", "check the path and its permissions"
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise SlmError(
                f"{path}: the config is empty",
                f"write at least `run_name: <name>`; every other key has a default (see {EXAMPLE})",
            )
        lines = _key_lines(root, path)
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise _syntax_error(path, text, exc) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SlmError(f"{path}: the top level must be a mapping of sections", f"see {EXAMPLE}")
    return YamlSource(path, text, data, lines)


def _key_lines(root: yaml.Node, path: Path) -> dict[str, int]:
    """Dotted key path → 1-based line, for every key and list entry; a key written twice in a mapping is an error."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                name = str(key_node.value)
                line = key_node.start_mark.line + 1
                key = f"{prefix}.{name}" if prefix else name
                if name in seen and name != "<<":
                    raise SlmError(
                        f"{path}:{line}: duplicate key '{key}' (also at line {seen[name]})",
                        "keep one of the two; YAML would silently use the last one",
                    )
                seen[name] = line
                lines[key] = line
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                key = f"{prefix}.{index}"
                lines[key] = item.start_mark.line + 1
                walk(item, key)

    walk(root, "")
    return lines


# Contexts whose mark is where the unfinished construct starts: that line holds the mistake (an unclosed bracket or
# quote, a key without ':'); the problem mark is only where PyYAML gave up, often the next line.
_OPENING_CONTEXTS = (
    "while scanning a simple key",
    "while parsing a flow",
    "while scanning a quoted",
    "while scanning a block scalar",
)


def _syntax_error(path: Path, text: str, exc: yaml.YAMLError) -> SlmError:
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None) or ""
    if problem_mark is None:
        return SlmError(f"{path}: YAML syntax error ({problem})", "fix the YAML")
    problem_line = problem_mark.line + 1
    source_lines = text.splitlines()
    if context_mark is not None and context.startswith(_OPENING_CONTEXTS):
        line = context_mark.line + 1
        where = f"; noticed at line {problem_line}" if problem_line != line else ""
        hint = {"simple key": "add the missing ':' after the key", "flow": "close the bracket"}.get(
            next((k for k in ("simple key", "flow") if k in context), ""), "close the quote or fix the block scalar"
        )
        return SlmError(f"{path}:{line}: YAML syntax error ({problem}, {context}{where})", hint)
    if problem == "mapping values are not allowed here":
        previous = _previous_content_line(source_lines, problem_line)
        if previous is not None and ":" not in source_lines[previous - 1].split("#")[0]:
            return SlmError(
                f"{path}:{previous}: YAML syntax error (the key on this line has no ':', so line {problem_line} "
                "continues it)",
                f"write `{source_lines[previous - 1].strip()}:` or check the indentation of line {problem_line}",
            )
        return SlmError(
            f"{path}:{problem_line}: YAML syntax error ({problem})",
            "check this line's indentation, or quote a value that contains ': '",
        )
    return SlmError(f"{path}:{problem_line}: YAML syntax error ({problem})", "fix the YAML on that line")


def _previous_content_line(lines: list[str], before: int) -> int | None:
    """1-based number of the last line before line `before` (1-based) that is not blank or a comment."""
    for number in range(before - 1, 0, -1):
        stripped = lines[number - 1].strip()
        if stripped and not stripped.startswith("#"):
            return number
    return None


# ------------------------------------------------------------------------------------------------------ --set
def parse_override(assignment: str) -> tuple[list[str], Any]:
    """`train.lora.r=16` -> (['train','lora','r'], 16). Values are parsed as YAML, so 1e-4, true, [a, b] work."""
    if "=" not in assignment:
        raise SlmError(f"--set {assignment!r}: expected KEY=VALUE", "for example --set train.lora.r=16")
    key, raw = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise SlmError(f"--set {assignment!r}: empty key", "for example --set train.lora.r=16")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def _list_index(assignment: str, parts: list[str], index: int, target: list) -> int:
    """The list position `parts[index]` names, or an SlmError saying which positions exist."""
    part, where = parts[index], ".".join(parts[:index])
    if not part.isdigit():
        example = ".".join([*parts[:index], "0", *parts[index + 1 :]])
        raise SlmError(
            f"--set {assignment}: '{where}' is a list, so '{part}' must be a position (0, 1, …)",
            f"for example --set {example}=…",
        )
    if int(part) >= len(target):
        if not target:
            raise SlmError(f"--set {assignment}: '{where}' is an empty list", f"add the entry to {where} in the YAML")
        raise SlmError(
            f"--set {assignment}: '{where}' has {len(target)} entr{'y' if len(target) == 1 else 'ies'}, so there is "
            f"no entry {part}",
            f"use a position from 0 to {len(target) - 1}, or add the entry to {where} in the YAML file",
        )
    return int(part)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `--set` assignments in order (the last one wins); a path that cannot exist is an SlmError naming it."""
    for assignment in overrides:
        parts, value = parse_override(assignment)
        target: Any = data
        for index, part in enumerate(parts[:-1]):
            if isinstance(target, list):
                target = target[_list_index(assignment, parts, index, target)]
            elif part not in target and parts[index + 1].isdigit():
                where = ".".join(parts[: index + 1])
                raise SlmError(
                    f"--set {assignment}: '{where}' is not written in the config, so it has no entry {parts[index + 1]}",
                    f"write the list {where} in the YAML file (`slm config show CONFIG` prints its default)",
                )
            else:
                target = target.setdefault(part, {})
            if not isinstance(target, (dict, list)):
                where = ".".join(parts[: index + 1])
                raise SlmError(
                    f"--set {assignment}: '{where}' is a value ({target!r}), not a section with keys",
                    f"set it directly: --set {where}=…",
                )
        if isinstance(target, list):
            target[_list_index(assignment, parts, len(parts) - 1, target)] = value
        else:
            target[parts[-1]] = value
    return data


# ------------------------------------------------------------------------------------------------ validation errors
def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model reachable through list[...], Annotated[...], unions and Optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for inner in getattr(annotation, "__args__", ()) or ():
        found += _nested_models(inner)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and not getattr(annotation, "__args__", None):
        found += _nested_models(origin)
    return found


def _model_fields_at(root: type[BaseModel], raw_loc: list[str]) -> list[str]:
    """Known field names at an error location (pydantic's loc, union tags included), for 'did you mean' hints."""
    models: list[type[BaseModel]] = [root]
    for part in raw_loc:
        if part.isdigit():
            continue
        tagged = [
            m for m in models if m.model_fields.get("kind") is not None and m.model_fields["kind"].default == part
        ]
        if tagged:
            models = tagged
            continue
        field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if field is None:
            return []
        models = _nested_models(field.annotation)
        if not models:
            return []
    return sorted({name for m in models for name in m.model_fields})


def _blamed_override(dotted: str, overrides: list[str], yaml_lines: dict[str, int]) -> str | None:
    """The `--set` that caused an error at `dotted`: the last one that set that key (or one inside it), or one that
    created the key when the YAML does not have it."""
    for assignment in reversed(overrides):
        key = ".".join(parse_override(assignment)[0])
        if dotted == key or dotted.startswith(key + "."):
            return assignment
        if key.startswith(dotted + ".") and dotted not in yaml_lines:
            return assignment
    return None


def format_validation_error(
    exc: ValidationError, root: type[BaseModel], source: YamlSource | None, overrides: list[str]
) -> SlmError:
    # Unknown keys first: a typo usually also causes a "field required" error for the key that was meant.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc = [str(p) for p in error["loc"] if str(p) not in UNION_TAGS]
    dotted = ".".join(loc)
    yaml_lines = source.lines if source else {}
    blamed = _blamed_override(dotted, overrides, yaml_lines)
    line = None
    for depth in range(len(loc), 0, -1):  # the key itself, or the nearest parent written in the file
        line = yaml_lines.get(".".join(loc[:depth]))
        if line:
            break
    if blamed:
        shown = blamed if len(blamed) <= 80 else blamed[:77] + "…"
        where, fix = f"--set {shown}", f"fix the --set {shown}"
    elif source is not None:
        where = f"{source.path}:{line}" if line else str(source.path)
        fix = f"fix the value at {where}"
    else:
        where, fix = "<defaults>", "set the key in a config file"
    if error["type"] == "extra_forbidden":
        known = [k for k in _model_fields_at(root, [str(p) for p in error["loc"]][:-1]) if k != "source_path"]
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean '{'.'.join(loc[:-1] + close)}'?" if close else f"known keys here: {', '.join(known)}"
        return SlmError(f"{where}: unknown key '{dotted}'", hint)
    if error["type"] == "union_tag_invalid":
        return SlmError(f"{where}: '{dotted}' has an unknown kind", error["msg"])
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return SlmError(f"{where}: invalid value for '{dotted or '<root>'}': {error['msg']}{more}", fix)
