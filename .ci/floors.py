"""The floors of pyproject.toml as pip constraints: every dependency's ``>=X`` as ``==X``.

``.ci/floors`` installs growsearch (with its test extra) under these constraints in a fresh
virtual environment and runs the default test suite, so each declared floor is one that was
tested, not guessed. A requirement without a ``>=`` floor is an error: it could not be tested.

    python .ci/floors.py [pyproject.toml] > floors.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

_FLOOR = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)\s*(?:,\s*<\s*[0-9][0-9.]*\s*)?$"
)


def floors(pyproject: Path) -> list[str]:
    """``name==floor`` for every requirement of the project and of its extras, in the file's order
    (extras that name the project itself are skipped)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(project["dependencies"]) + [
        r for extra in project.get("optional-dependencies", {}).values() for r in extra
    ]
    out: list[str] = []
    for req in reqs:
        if re.match(rf"^\s*{re.escape(project['name'])}\s*\[", req):
            continue
        m = _FLOOR.match(req)
        if not m:
            raise SystemExit(f"{pyproject}: {req!r} has no testable floor: write it as name>=X (optionally ,<Y)")
        out.append(f"{m.group(1)}=={m.group(2)}")
    return out


if __name__ == "__main__":
    print(
        "\n".join(
            floors(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "pyproject.toml"))
        )
    )
