"""The layering of issue 12, checked on the source: data flows API -> sync -> store ->
frames/grid/exports and the Workbench orchestrates; nothing below it reaches back."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa

import sellerbench
from sellerbench.cache.store import Store
from sellerbench.schema import RUN, SELLER

PACKAGE = Path(sellerbench.__file__).parent
# The engine: works on the store and client it is given (modules by dotted name).
BELOW = ("api.client", "api.pages", "reports.exports", "cache.filters", "cache.frames",
         "cache.store", "cache.sync", "changes.mutations", "changes.outcomes", "changes.push",
         "schema", "settings", "grid.viewport", "runs.watch", "errors")


def _tree(name: str) -> ast.Module:
    path = PACKAGE.joinpath(*name.split(".")).with_suffix(".py")
    return ast.parse(path.read_text(), filename=str(path))


def _runtime_imports(name: str) -> set[str]:
    """Absolute names of what module ``name`` imports outside ``if TYPE_CHECKING:``
    blocks (``from . import x`` counts both the package and ``package.x``)."""
    package = ["sellerbench", *name.split(".")[:-1]]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(_tree(name))
    return found


def _reaches(imports: set[str], *modules: str) -> set[str]:
    """Which of ``modules`` (or anything inside them) ``imports`` names."""
    return {i for i in imports for m in modules if i == m or i.startswith(m + ".")}


def test_the_import_check_sees_relative_imports() -> None:
    """The checks below would pass on any module if relative names were lost."""
    assert "sellerbench.grid.viewport" in _runtime_imports("grid.widget")
    assert "sellerbench.errors" in _runtime_imports("grid.widget")


def test_no_module_below_the_workbench_imports_it_or_reaches_into_it() -> None:
    for name in BELOW:
        imports = _runtime_imports(name)
        upward = ("sellerbench.workbench", "sellerbench.grid.widget", "sellerbench.runs.control")
        assert not _reaches(imports, *upward), name
        source = ast.unparse(_tree(name))
        for reach in ("wb._", "._changed(", "__dict__", "_watchers"):
            assert reach not in source, f"{name}.py reaches into the workbench: {reach}"


def test_sync_does_not_reach_push_and_push_does_not_reach_sync() -> None:
    """The Workbench orchestrates push-then-pull; neither module imports the other."""
    assert not _reaches(_runtime_imports("cache.sync"), "sellerbench.changes")
    assert not _reaches(_runtime_imports("changes.push"), "sellerbench.cache.sync")
    assert "ImportError" not in ast.unparse(_tree("cache.sync"))


def test_the_cache_tables_have_the_records_columns(tmp_path: Path) -> None:
    """schema.py is the one definition: the cache a migration builds has exactly its
    columns and types (a new field without a migration, or the reverse, fails here)."""
    store = Store(tmp_path / "cache.duckdb")
    with store.connect() as con:
        for table, record in (("sellers", SELLER), ("collection_runs", RUN)):
            described = {
                name: kind for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()
            }
            assert described == record.duckdb_types(), table


def test_page_schemas_and_export_types_derive_from_the_records() -> None:
    from sellerbench.api import pages
    from sellerbench.reports import exports

    assert SELLER.arrow_schema() == pages.SELLER_SCHEMA
    assert RUN.arrow_schema() == pages.RUN_SCHEMA
    assert SELLER.duckdb_types() == exports.SELLER_TYPES
    assert pages.SELLER_SCHEMA.field("times_seen").type == pa.int32()
