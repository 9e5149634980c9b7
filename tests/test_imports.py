"""The package's import graph: layers, stages apart, no cycle, the project's own imports at the top of files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "behavior"
# Lower layers never import higher ones; within the stages layer, each stage imports only itself.
LAYERS = (
    ("foundation", ("errors", "report", "settings", "cli", "metrics", "fonts", "runtime", "io")),
    ("components", ("detect", "features", "model", "data")),
    ("stages", ("extract", "group", "train", "predict")),
)
LAYER_OF = {part: rank for rank, (_, parts) in enumerate(LAYERS) for part in parts}
STAGES = LAYERS[-1][1]


def _modules() -> dict[str, Path]:
    return {".".join(("behavior",) + p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(project module imported, whether at the top of the file) for each import of ``behavior``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "behavior":
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.append((name if name in MODULES else node.module, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names if a.name.split(".")[0] == "behavior"]
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "behavior"))
def test_every_module_belongs_to_a_layer(module):
    assert _part(module) in LAYER_OF, f"{module}: add its folder to a layer of tests/test_imports.py"


def test_no_import_runs_back_up_a_layer():
    upward = [f"{m} -> {t}" for m, imports in GRAPH.items() for t, _ in imports
              if m != "behavior" and LAYER_OF.get(_part(t), 0) > LAYER_OF[_part(m)]]
    assert not upward


def test_no_stage_imports_another_stage():
    crossing = [f"{m} -> {t}" for m, imports in GRAPH.items() for t, _ in imports
                if _part(m) in STAGES and _part(t) in STAGES and _part(t) != _part(m)]
    assert not crossing


def test_the_project_s_own_modules_are_imported_at_the_top_of_files():
    lazy = [f"{m} -> {t}" for m, imports in GRAPH.items() for t, at_top in imports if not at_top]
    assert not lazy


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(module: str, path: tuple[str, ...]) -> None:
        state[module] = 1
        for target, _ in GRAPH.get(module, ()):
            assert state.get(target) != 1, "import cycle: " + " -> ".join(path + (target,))
            if target not in state:
                visit(target, path + (target,))
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, (module,))
