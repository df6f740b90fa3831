"""growsearch reaches Ray, Optuna, torch and the standard library through their public APIs only:
no ``obj._name`` on anything but its own ``self``/``cls``, no ``getattr(obj, "_name")``. A private
attribute is a break waiting for a minor release (Ray's OptunaSearch kept its study in one)."""

from __future__ import annotations

import ast

from helpers import REPO


def _private_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value.startswith("_"):
                if not name.value.startswith("__"):
                    found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_check_finds_private_access() -> None:
    code = "s._ot_study\nsys._getframe(1)\ngetattr(t, '_trial_id')\nself._mine\nx.__name__\nx.public\n"
    assert sorted(u.split(": ")[1] for u in _private_uses(ast.parse(code))) == [
        "getattr(t, '_trial_id')",
        "s._ot_study",
        "sys._getframe",
    ]


def test_no_module_touches_another_librarys_private_attributes() -> None:
    files = sorted((REPO / "growsearch").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))
    assert len(files) > 30
    found = {
        str(f.relative_to(REPO)): uses
        for f in files
        if (uses := _private_uses(ast.parse(f.read_text(encoding="utf-8"))))
    }
    assert not found, f"private attributes used (find a public API): {found}"
