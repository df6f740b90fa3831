"""The package surface: lazy public names, none hidden by a submodule of the same name."""

from __future__ import annotations

import importlib
import pkgutil

import growsearch


def test_no_public_name_is_also_a_submodule() -> None:
    # `import growsearch.X` sets the attribute X on the package: a public function named like a
    # module would silently become that module once anything imports it.
    modules = {m.name.rsplit(".", 1)[-1] for m in pkgutil.walk_packages(growsearch.__path__, prefix="growsearch.")}
    assert not modules & set(growsearch.__all__)


def test_grow_stays_the_function_after_every_module_is_imported() -> None:
    for m in pkgutil.walk_packages(growsearch.__path__, prefix="growsearch."):
        if not m.name.endswith("__main__"):  # running the command is no import
            importlib.import_module(m.name)
    assert callable(growsearch.grow) and growsearch.grow.__module__ == "growsearch.model.ops"
    for name in growsearch.__all__:
        assert not isinstance(getattr(growsearch, name), type(growsearch)), name


def test_the_typed_names_are_the_lazy_ones_and_the_plugin_routes_are_public() -> None:
    import ast

    tree = ast.parse(open(growsearch.__file__).read())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for imp in node.body
        if isinstance(imp, ast.ImportFrom)
        for alias in imp.names
    }
    assert typed == set(growsearch.__all__) - {"__version__"}
    for name in (
        "Objective",
        "CostPruner",
        "tune_pieces",
        "runtime_env",
        "register_cost",
        "register_op",
        "register_family",
        "register_source",
    ):
        assert getattr(growsearch, name).__name__ == name
