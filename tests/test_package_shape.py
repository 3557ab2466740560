"""The shape the packages keep: imports point one way, no import cycles, and each shared fact has one home."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lower layers never import higher ones; orca_intake sits on orca_core and orca_resources only.
LAYERS = {"orca_core": 0, "orca_resources": 1, "orca_assets": 2, "sensors": 3, "schedules": 3, "orca": 4}
INTAKE_MAY_IMPORT = {"orca_core", "orca_resources", "orca_intake"}
PACKAGES = [*LAYERS, "orca_intake"]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path) -> list[str]:
    """Every module `path` imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_imports_point_one_way():
    wrong = []
    for name, path in modules().items():
        own = name.split(".")[0]
        for imported in imports(path):
            other = imported.split(".")[0]
            if other not in PACKAGES or other == own:
                continue
            if own == "orca_intake":
                allowed = other in INTAKE_MAY_IMPORT
            elif other == "orca_intake":
                allowed = own == "orca"  # `orca up` checks the intake's settings before starting it
            else:
                allowed = LAYERS[other] < LAYERS[own]
            if not allowed:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, wrong


def test_no_import_cycles():
    found = modules()
    graph = {name: {i for i in imports(path) if i in found and i != name} for name, path in found.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycles.append(stack[stack.index(other):] + [other])
            elif other not in state:
                visit(other, [*stack, other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_tag_names_and_paths_under_orca_home_have_one_home():
    """Run tags are spelled only in orca_core/tags.py, and paths under ORCA_HOME only in orca_core/layout.py."""
    tag = re.compile(r"""["'](?:dagster/partition|orca/[a-z_]+)["']""")
    joined = re.compile(r"""/ ["'](?:inbox|warehouse|intake|dagster)["']|["'](?:inbox|warehouse)/\{""")
    stray = []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if name != "orca_core.tags" and tag.search(text):
            stray.append(f"{name}: a run tag literal")
        if name != "orca_core.layout" and joined.search(text):
            stray.append(f"{name}: a path under ORCA_HOME put together by hand")
    assert not stray, stray
