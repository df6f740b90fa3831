"""The package's layout: wings that follow the data flow, no circle, no shim, examples that run.

The layers, lowest first: the core (errors, files, figures, registrations), then ``model`` and
``data`` (neither imports the other), ``plan``, ``train``, ``robust``, ``search``, ``cli``. A
module imports only from its own layer and the ones below, counting imports made inside
functions; ``growsearch/__init__.py`` is the façade above them all and imports nothing itself.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import growsearch
from helpers import REPO, restored_registries

PKG = Path(growsearch.__file__).parent
MODULES = sorted(m.name for m in pkgutil.walk_packages([str(PKG)], prefix="growsearch.") if not m.ispkg) + [
    m.name + ".__init__" for m in pkgutil.walk_packages([str(PKG)], prefix="growsearch.") if m.ispkg
]
# lowest first; a module's layer is the first of these its dotted name starts with
LAYERS = [
    (
        "core",
        ("growsearch.errors", "growsearch._io", "growsearch._plot", "growsearch._extensions", "growsearch._version"),
    ),
    ("model", ("growsearch.model",)),
    ("data", ("growsearch.data",)),
    ("plan", ("growsearch.plan",)),
    ("train", ("growsearch.train",)),
    ("robust", ("growsearch.robust",)),
    ("search", ("growsearch.search",)),
    ("cli", ("growsearch.cli",)),
]
RANK = {"core": 0, "model": 1, "data": 1, "plan": 2, "train": 3, "robust": 4, "search": 5, "cli": 6}


def _path(module: str) -> Path:
    parts = module.split(".")[1:]
    if parts[-1] == "__init__":
        return PKG.joinpath(*parts[:-1], "__init__.py")
    return PKG.joinpath(*parts).with_suffix(".py")


def _layer(module: str) -> str:
    return next(name for name, prefixes in LAYERS if any(module == p or module.startswith(p + ".") for p in prefixes))


def _imports(path: Path) -> set[str]:
    """The growsearch modules ``path`` imports anywhere (inside functions too), except under
    ``if TYPE_CHECKING:``, which never runs."""
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "growsearch"
            and node.level == 0
        ):
            for a in node.names:  # `from growsearch.data import sources` imports a module
                sub = f"{node.module}.{a.name}"
                found.add(sub if _path_exists(sub) else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "growsearch")
    return {m for m in found if m != "growsearch"}


def _path_exists(module: str) -> bool:
    parts = module.split(".")[1:]
    return bool(parts) and (
        PKG.joinpath(*parts).with_suffix(".py").is_file() or PKG.joinpath(*parts, "__init__.py").is_file()
    )


def _graph() -> dict[str, set[str]]:
    """module -> growsearch modules it imports (a package stands for its ``__init__``)."""

    def norm(m: str) -> str:
        return m + ".__init__" if PKG.joinpath(*m.split(".")[1:], "__init__.py").is_file() else m

    return {m: {norm(i) for i in _imports(_path(m))} for m in MODULES if not m == "growsearch.__init__"}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> list[str] | None:
        if m in path:
            return path[path.index(m) :] + [m]
        if m in done:
            return None
        for n in sorted(graph.get(m, ())):
            if found := visit(n, path + [m]):
                return found
        done.add(m)
        return None

    return next((c for m in sorted(graph) if (c := visit(m, []))), None)


def test_no_import_circle_counting_imports_inside_functions() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " → ".join(cycle)


def test_no_layer_imports_a_higher_one() -> None:
    back = [
        f"{m} ({_layer(m)}) imports {i} ({_layer(i)})"
        for m, deps in _graph().items()
        for i in deps
        if RANK[_layer(i)] > RANK[_layer(m)] or (_layer(i) != _layer(m) and RANK[_layer(i)] == RANK[_layer(m)])
    ]
    assert not back, "a lower layer imports a higher one: " + "; ".join(back)


def test_no_shims() -> None:
    """Each public name has one import path: no module forwards names with ``__getattr__`` (the
    façade's lazy table excepted), and no ``__all__`` lists a name its module does not define."""
    found = []
    for m in MODULES:
        tree = ast.parse(_path(m).read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        defined |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        if m != "growsearch.__init__" and "__getattr__" in defined:
            found.append(f"{m} forwards names with __getattr__")
        for n in tree.body:
            if (
                isinstance(n, ast.Assign)
                and any(getattr(t, "id", "") == "__all__" for t in n.targets)
                and m != "growsearch.__init__"
            ):
                found += [
                    f"{m}.__all__ lists {name!r}, defined elsewhere"
                    for name in ast.literal_eval(n.value)
                    if name not in defined
                ]
    assert not found, "; ".join(found)


def test_the_layering_checks_see_what_they_must(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "from growsearch.plan.schedule import x\nimport growsearch.train.run\n\ndef f():\n    from growsearch.search import study\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from growsearch.cli import commands\n"
    )
    assert _imports(tmp_path / "a.py") == {
        "growsearch.plan.schedule",
        "growsearch.train.run",
        "growsearch.search.study",
    }
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert _layer("growsearch.train.run") == "train" and _layer("growsearch.model.__init__") == "model"


@pytest.mark.parametrize("name", [m for m in MODULES if not m.endswith(("__init__", "__main__"))] + ["growsearch"])
def test_module_examples_run_as_written(name: str) -> None:
    module = importlib.import_module(name)
    with restored_registries():  # examples register families, sources and ops: none may reach other tests
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {name}'s examples failed (python -m doctest -v to see them)"


def test_no_benchmark_script_grows_past_300_lines() -> None:
    """Benchmarks are thin: they call the product for frontiers, ratios, intervals and training,
    and share their helpers (issue 45); a script past 300 lines is doing the product's work or
    another script's."""
    long = {
        p.name: n for p in sorted((REPO / "benchmarks").glob("*.py")) if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long, f"split these benchmark scripts (lines): {long}"
