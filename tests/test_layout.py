"""The package's layout: module examples run as written, no module-level import cycle, modules a reader finishes."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import growsearch

PKG = Path(growsearch.__file__).parent
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(PKG)]))


@pytest.fixture
def _registries():
    """Examples register families and sources; what they add must not reach other tests."""
    from growsearch import arch, dataset

    saved = dict(arch._FAMILIES), dict(dataset._SOURCES)
    yield
    for registry, before in zip((arch._FAMILIES, dataset._SOURCES), saved):
        registry.clear()
        registry.update(before)


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run_as_written(name: str, _registries) -> None:
    module = importlib.import_module(f"growsearch.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of growsearch.{name}'s examples failed (python -m doctest -v to see them)"


def _module_level_imports(path: Path) -> set[str]:
    """growsearch modules imported when ``path`` is loaded (not inside functions, not under TYPE_CHECKING)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("growsearch"):
            parts = node.module.split(".")
            if len(parts) > 1:
                out.add(parts[1])
            else:  # from growsearch import x
                out.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("growsearch."))
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> list[str] | None:
        if m in path:
            return path[path.index(m):] + [m]
        if m in done:
            return None
        for n in sorted(graph[m]):
            if found := visit(n, path + [m]):
                return found
        done.add(m)
        return None

    return next((c for m in sorted(graph) if (c := visit(m, []))), None)


def test_no_module_level_import_cycle() -> None:
    graph = {m: _module_level_imports(PKG / f"{m}.py") & set(MODULES) for m in MODULES}
    assert _cycle(graph) is None, "import cycle: " + " → ".join(_cycle(graph))


def test_the_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from growsearch.b import x\nimport growsearch.c\n\ndef f():\n    from growsearch import d\n")
    assert _module_level_imports(tmp_path / "a.py") == {"b", "c"}
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None

