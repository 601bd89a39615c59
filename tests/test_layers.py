"""The layout holds the architecture (STYLE.md, issue 11): the pure core imports nothing above
it, the store nothing from the layers that call it, and only the store speaks to SQLite: no
other module imports sqlite3, and the audit and the services hold no SQL and touch no connection."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "empower_cli"
LAYERS = ("core", "policy", "store", "services", "imports", "audit", "render", "cli")


def imported(path: Path) -> set[str]:
    """Every module a file imports when it runs, at any depth (function-level imports
    included; imports only for the type checker, under `if TYPE_CHECKING:`, left out)."""
    names: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
        pending.extend(ast.iter_child_nodes(node))
    return names


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


def test_every_module_lives_in_a_layer() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert loose == set(), f"modules outside the layer packages: {sorted(loose)}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


def test_every_package_init_is_free_of_imports() -> None:
    for layer in LAYERS:
        assert imported(PACKAGE / layer / "__init__.py") == set(), layer


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.name)
def test_the_core_imports_nothing_above_it(path: Path) -> None:
    above = {f"empower_cli.{layer}" for layer in LAYERS if layer != "core"}
    forbidden = above | {"rich", "typer", "sqlite3", "sqlite_utils", "click"}
    bad = {m for m in imported(path) if m.split(".")[0] in forbidden or ".".join(m.split(".")[:2]) in forbidden}
    assert bad == set(), f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules("store"), ids=lambda p: p.name)
def test_the_store_imports_nothing_from_its_callers(path: Path) -> None:
    callers = {f"empower_cli.{layer}" for layer in ("services", "imports", "audit", "render", "cli")}
    bad = {m for m in imported(path) if ".".join(m.split(".")[:2]) in callers}
    assert bad == set(), f"{path.name} imports {sorted(bad)}"


def test_only_the_store_imports_sqlite3() -> None:
    outside = [p for layer in LAYERS if layer != "store" for p in modules(layer)
               if {"sqlite3", "sqlite_utils"} & {m.split(".")[0] for m in imported(p)}]  # fmt: skip
    assert outside == [], f"sqlite3 outside store/: {[str(p.relative_to(PACKAGE)) for p in outside]}"


def test_only_the_postgresql_backend_imports_psycopg() -> None:
    """A backend is one module under store/: the driver stays behind it (and a SQLite user
    never needs it installed)."""
    importing = sorted(str(p.relative_to(PACKAGE)) for layer in LAYERS for p in modules(layer)
                       if "psycopg" in {m.split(".")[0] for m in imported(p)})  # fmt: skip
    assert importing == ["store/postgres.py"]


SQL_START = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|WITH|PRAGMA)\b", re.IGNORECASE)


def sql_and_connections(path: Path) -> list[str]:
    """Where a module touches a connection (an attribute named `conn`), holds a statement (a
    string that starts like SQL; docstrings left out) or borrows a store's SQL fragment (a
    name ending in `_SQL`), as `line: what`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "conn":
            found.append((node.lineno, ".conn"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if SQL_START.match(node.value):
                found.append((node.lineno, repr(node.value.strip()[:40])))
        elif isinstance(node, ast.Name) and node.id.endswith("_SQL"):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.alias) and (node.asname or node.name).endswith("_SQL"):
            found.append((node.lineno, f"imports {node.name}"))
    return [f"{line}: {what}" for line, what in sorted(found)]


@pytest.mark.parametrize("path", modules("audit") + modules("services") + modules("imports"),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_audit_services_and_imports_hold_no_sql_and_touch_no_connection(path: Path) -> None:
    found = sql_and_connections(path)
    assert found == [], f"{path.relative_to(PACKAGE)}: SQL belongs in store/: {found}"


ABOVE = {
    "policy": ("store", "services", "imports", "audit", "render", "cli"),
    "services": ("imports", "audit", "render", "cli"),
    "imports": ("services", "audit", "render", "cli"),
    "audit": ("services", "imports", "render", "cli"),
    "render": ("services", "imports", "audit", "cli"),
}


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_no_layer_imports_one_that_calls_it_or_stands_beside_it(layer: str) -> None:
    """Helpers sit in their layer's home: a use case never reaches up to rendering, the import
    never borrows from a use case, rendering never calls back into the work it shows."""
    forbidden = {f"empower_cli.{other}" for other in ABOVE[layer]}
    bad = {f"{p.name}: {m}" for p in modules(layer) for m in imported(p) if ".".join(m.split(".")[:2]) in forbidden}
    assert bad == set(), f"{layer}/ imports {sorted(bad)}"
