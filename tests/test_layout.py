"""The layout rules a reader (and a fork's tooling) relies on, checked on the tracked tree.

1. No tracked path has a component named `build` outside `runs/`: GitHub's Python .gitignore has an unanchored
   `build/` line and black's default exclude matches any `build` component, so such a folder would silently drop
   source files in a fork (the build stage's code lives in `slm_datagen/dataset/`; only its run folder is `build`).
2. Imports run one way: nothing under `slm_datagen/` or `slm_forest/` imports the ML stack (torch, transformers, peft,
   trl) or `fine_tuning`, so `slm --help` and the data stages start without torch. The exceptions are listed here by
   name: the CLI's lazy command imports, and the runner's stage table, which names the ML stages as strings.
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest

from tests.conftest import REPO_ROOT

FORBIDDEN = ("torch", "transformers", "peft", "trl", "fine_tuning")
TORCH_FREE_PACKAGES = ("slm_datagen", "slm_forest")

# (file, enclosing function, imported module): imports inside these functions run only when the command does.
ALLOWED_LAZY_IMPORTS = {
    ("slm_forest/cli.py", "_register_tool_commands", "fine_tuning.plan.cli"),
    ("slm_forest/cli.py", "_register_tool_commands", "fine_tuning.serve"),
    # `slm config validate` checks train.base_model and its dtype against the model registry, which is torch-free
    ("slm_forest/validate.py", "_base_model_findings", "fine_tuning.plan"),
    # ... and, only when train.attn_implementation is flash_attention_2, what the installed transformers declares
    ("slm_forest/validate.py", "_base_model_findings", "fine_tuning.train.attention"),
}
# "module:function" strings the runner imports when that stage runs (slm_forest/pipeline.py, STAGES).
ALLOWED_STAGE_TABLE = {
    ("slm_forest/pipeline.py", "STAGES", "fine_tuning.train.stage:run_train"),
    ("slm_forest/pipeline.py", "STAGES", "fine_tuning.reinforce.stage:run_reinforce"),
    ("slm_forest/pipeline.py", "STAGES", "fine_tuning.evaluate.stage:run_evaluate"),
    ("slm_forest/pipeline.py", "STAGES", "fine_tuning.export.stage:run_export"),
}
# A string that names a module of a forbidden package ("fine_tuning.x.y" or "fine_tuning.x:func"): what
# importlib.import_module would be given.
_MODULE_STRING = re.compile(rf"(?:{'|'.join(FORBIDDEN)})(?:\.\w+)*(?::\w+)?")


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc})")
    return [path for path in out.split("\0") if path]


def build_components(paths: list[str]) -> list[str]:
    """The paths an unanchored `build/` ignore line (or black's exclude) would catch, `runs/` aside."""
    return [path for path in paths if not path.startswith("runs/") and "build" in path.split("/")]


def test_no_tracked_path_has_a_build_component_outside_runs():
    paths = tracked_files()
    assert len(paths) > 50, "git ls-files listed almost nothing: is this the checkout?"
    assert build_components(paths) == []


def test_the_build_component_check_catches_what_gitignore_would_drop():
    caught = build_components(
        ["slm_datagen/build/stage.py", "docs/build", "a/b/build/c.md", "runs/x/build/train.jsonl", "slm_build.py"]
    )
    assert caught == ["slm_datagen/build/stage.py", "docs/build", "a/b/build/c.md"]


def _forbidden(module: str) -> bool:
    return module.split(".")[0].split(":")[0] in FORBIDDEN


def _scopes(tree: ast.AST) -> dict[ast.AST, str]:
    """Each node's enclosing function, or the name it is assigned to at module level, or "<module>"."""
    scope: dict[ast.AST, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                child_name = child.name
            elif isinstance(child, ast.Assign) and name == "<module>" and isinstance(child.targets[0], ast.Name):
                child_name = child.targets[0].id
            elif isinstance(child, ast.AnnAssign) and name == "<module>" and isinstance(child.target, ast.Name):
                child_name = child.target.id
            else:
                child_name = name
            scope[child] = child_name
            visit(child, child_name)

    visit(tree, "<module>")
    return scope


def forbidden_imports(source: str, path: str) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(imports, module strings) of forbidden packages in one file, each as (path, scope, module)."""
    tree = ast.parse(source, filename=path)
    scope = _scopes(tree)
    imports: set[tuple[str, str, str]] = set()
    strings: set[tuple[str, str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports |= {(path, scope[node], alias.name) for alias in node.names if _forbidden(alias.name)}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _forbidden(node.module):
            imports.add((path, scope[node], node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.fullmatch(node.value):
            # Package names alone ("torch" in the manifest's version list) are not imports; a dotted or
            # module:function string is what importlib.import_module / the stage runner would import.
            if "." in node.value or ":" in node.value:
                strings.add((path, scope[node], node.value))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            imports.add((path, scope[node], node.args[0].value))  # type: ignore[attr-defined]
    return imports, strings


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return (
        name in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and _forbidden(node.args[0].value)
    )


def test_slm_datagen_and_slm_forest_never_import_the_ml_stack_or_fine_tuning():
    imports: set[tuple[str, str, str]] = set()
    strings: set[tuple[str, str, str]] = set()
    scanned = 0
    for package in TORCH_FREE_PACKAGES:
        for file in sorted((REPO_ROOT / package).rglob("*.py")):
            path = file.relative_to(REPO_ROOT).as_posix()
            found_imports, found_strings = forbidden_imports(file.read_text(encoding="utf-8"), path)
            imports |= found_imports
            strings |= found_strings
            scanned += 1
    assert scanned > 50
    assert imports - ALLOWED_LAZY_IMPORTS == set(), "import the ML stack / fine_tuning only from fine_tuning/"
    assert strings - ALLOWED_STAGE_TABLE == set(), "only the runner's stage table may name fine_tuning modules"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch\n", {("m.py", "<module>", "torch")}),
        ("from transformers import AutoModel\n", {("m.py", "<module>", "transformers")}),
        ("def f():\n    import peft.tuners\n", {("m.py", "f", "peft.tuners")}),
        ("def g():\n    from fine_tuning.serve import ask_cli\n", {("m.py", "g", "fine_tuning.serve")}),
        ("import importlib\nimportlib.import_module('trl')\n", {("m.py", "<module>", "trl")}),
        ("import torchvision, trl_extra\nfrom .torch import x\n", set()),
    ],
)
def test_the_import_scan_sees_every_form(source, expected):
    assert forbidden_imports(source, "m.py")[0] == expected


def test_the_import_scan_sees_module_strings_but_not_package_names():
    source = 'RUN = "fine_tuning.train.stage:run_train"\nPACKAGES = ("torch", "trl")\nDOC = "see fine_tuning/ docs"\n'
    assert forbidden_imports(source, "m.py")[1] == {("m.py", "RUN", "fine_tuning.train.stage:run_train")}


def test_the_allowed_exceptions_are_still_where_they_are_listed():
    """A stale allowance would hide a new import in the same place: each listed one must still exist."""
    found: set[tuple[str, str, str]] = set()
    for path in {p for p, _, _ in ALLOWED_LAZY_IMPORTS | ALLOWED_STAGE_TABLE}:
        imports, strings = forbidden_imports((REPO_ROOT / path).read_text(encoding="utf-8"), path)
        found |= imports | strings
    assert ALLOWED_LAZY_IMPORTS | ALLOWED_STAGE_TABLE <= found
    assert all(scope != "<module>" for _, scope, _ in ALLOWED_LAZY_IMPORTS)
