"""Files: atomic writes (a result file is either the old one or the complete new one, never
half), output folders held by one command at a time, and paths shown as a user typed them."""

from __future__ import annotations

import json
import os
import sys
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


_HELD: dict[str, int] = {}  # folders this process holds (a re-entrant count): a search holds its demo's folder too
_LOCKS: dict[str, object] = {}


def lock_path(folder: str | Path) -> Path:
    """Where the lock of ``folder`` lives: a hidden file beside it (not inside: an overwritten
    run replaces the folder by renaming, and the lock must outlive that)."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}.growsearch.lock"


@contextmanager
def held(folder: str | Path | None, error: type[Exception]) -> Iterator[None]:
    """Hold ``folder`` for the life of the block: a second growsearch command on the same folder,
    from this machine or another one sharing the disk, gets ``error`` naming the holder instead
    of mixing its files with ours. A maintained lock (``filelock``, an OS-level ``flock``) rather
    than a hand-made one: it is released when the holder dies, however it dies. Re-entrant
    within a process."""
    from filelock import FileLock, Timeout

    if folder is None:  # nothing written: nothing to hold
        yield
        return
    key = str(Path(folder).resolve())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = path.with_suffix(".holder").read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise error(f"{folder} is in use by another growsearch command ({holder}): wait for it to finish, or choose another folder") from None
    _HELD[key], _LOCKS[key] = 1, lock
    try:
        # who holds it, for the error above (beside the lock: filelock owns the lock file itself)
        path.with_suffix(".holder").write_text(f"pid {os.getpid()}: {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))}\n")
        yield
    finally:
        del _HELD[key], _LOCKS[key]
        # removed while still held, then released: a command that opened the old file before the
        # removal still finds it locked; one that comes after takes a new file, once our writes are done
        path.with_suffix(".holder").unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        lock.release()


def read_document(path: str | Path, error: type[Exception], *, yaml_format: bool | None = None) -> object:
    """The JSON or YAML document in the file ``path`` (YAML for .yaml/.yml unless ``yaml_format``
    says otherwise), or ``error`` in one line naming the file: unreadable (a folder, no
    permission), not UTF-8, not parseable, or a mapping that gives one key twice (the parsers
    would keep the last one without a word, so a typo'd duplicate would silently win)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror or e})") from None
    use_yaml = path.suffix.lower() in (".yaml", ".yml") if yaml_format is None else yaml_format
    try:
        return _parse_yaml(text) if use_yaml else json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as e:
        raise error(f"{path}: the key {e.key!r} is given twice: keep one") from None
    except Exception as e:  # noqa: BLE001 - both parsers' errors (and YAML's constructors') become one line
        raise error(f"{path}: cannot parse {'YAML' if use_yaml else 'JSON'}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: object) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _parse_yaml(text: str) -> object:
    import yaml

    class Loader(yaml.SafeLoader):  # PyYAML keeps the last of two equal keys without a word: refuse them
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        keys = [loader.construct_object(k, deep=True) for k, _ in node.value]
        for i, k in enumerate(keys):
            if k in keys[:i]:
                raise _DuplicateKey(k)
        return loader.construct_mapping(node, deep=True)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass: safe_load's constructors only


def printable(v: object) -> str:
    """``v`` as a one-line message may quote it: as it is when printable, else its repr (a key
    holding a newline would otherwise break the line)."""
    text = str(v)
    return text if text.isprintable() else repr(text)
