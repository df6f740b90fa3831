"""Files: atomic writes (a result file is either the old one or the complete new one, never
half), and paths shown as a user typed them."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The temporary name keeps the suffix (matplotlib picks the format from it) and carries the
    process id, so several processes may write the same file (a shared prefix cache).
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def shown(path) -> str:
    """``path`` as a user typed it: relative to the working folder when it lies inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path) if not path.is_absolute() else os.path.normpath(path)


def shown_url(url: str) -> str:
    """An SQLite storage URL with its path :func:`shown` (``sqlite:///runs/demo/study.db``); other URLs as they are."""
    prefix = "sqlite:///"
    return prefix + shown(url[len(prefix):]) if url.startswith(prefix) else url
