"""Files: atomic writes (a result file is either the old one or the complete new one, never
half), output folders held by one command at a time, and paths shown as a user typed them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


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
    return prefix + shown(url[len(prefix) :]) if url.startswith(prefix) else url


_HELD: dict[str, int] = {}  # folders this process holds (a re-entrant count): a search holds its demo's folder too
_LOCKS: dict[str, object] = {}

# The ownership rule (one place, every writing command calls it): an output folder records in
# MANIFEST the names growsearch wrote there. growsearch never replaces or removes a name the
# manifest does not list, --overwrite included; a user's own file under one of growsearch's
# output names refuses the command before anything is written.
MANIFEST = ".growsearch.json"
# every name growsearch writes into an output folder (what a user's file must not be called there)
OUTPUT_NAMES = re.compile(
    r"(result\.json|curve\.png|stage\d+\.pt|subnet\.pt|network\.pt|best_schedule\.json|family\.json|family\.png|frontier\.json"
    r"|frontier\.png|runs|robustness\.json|(noise|ablation|fgsm|tnr_fnr)\.png|demo\.json|study\.db|trials\.csv|pareto\.png|tune"
    r"|prefix_cache|frontier|artifacts|.+\.\d+\.tmp(\.[^.]+)?)"
)
# a folder written before manifests existed is growsearch's when it holds one of these
_LEGACY_MARKS = ("result.json", "frontier.json", "demo.json", "study.db")


def lock_path(folder: str | Path) -> Path:
    """Where the lock of ``folder`` lives: a hidden file beside it (not inside: an overwritten
    run replaces the folder by renaming, and the lock must outlive that), named by a digest of
    the folder's real path so the name stays short however long the folder's is."""
    folder = Path(folder).resolve()
    return folder.parent / f".growsearch-{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}.lock"


def _manifest(folder: Path) -> dict | None:
    try:
        m = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and isinstance(m.get("ours", []), list) else None


def owned(folder: str | Path) -> set[str]:
    """The names in ``folder`` that growsearch wrote: those its manifest lists; while a command
    holds the folder (or after one was killed holding it), everything but what was there before
    it claimed it; in a folder from before manifests, growsearch's output names beside a result."""
    folder = Path(folder)
    if not folder.is_dir():
        return set()
    names = {p.name for p in folder.iterdir()} - {MANIFEST}
    m = _manifest(folder)
    if m is None:
        if (folder / MANIFEST).exists():
            return set()  # a manifest we cannot read: own nothing
        legacy = any((folder / n).is_file() for n in _LEGACY_MARKS)
        return {n for n in names if OUTPUT_NAMES.fullmatch(n)} if legacy else set()
    if isinstance(m.get("claimed"), dict):
        return names - set(m["claimed"].get("foreign", [])) - set(m.get("foreign", []))
    return names & set(m.get("ours", []))


def foreign(folder: str | Path) -> list[str]:
    """Names in ``folder`` that growsearch did not write (what it must never replace or remove)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    mine = owned(folder)
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and p.name not in mine)


def _listed(names: list[str]) -> str:
    return ", ".join(printable(n)[:60] for n in names[:3]) + (", ..." if len(names) > 3 else "")


def check_owned(folder: str | Path, error: type[Exception], *, replace_all: bool = False) -> None:
    """Refuse (``error``) a folder where growsearch would write over a file it did not write:
    one of the user's files bears a growsearch output name; with ``replace_all`` (a command
    that replaces the folder as a whole), any file of the user's at all."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise error(f"--out {folder} is a file, not a folder: choose a folder path")
    theirs = foreign(folder)
    clash = theirs if replace_all else [n for n in theirs if OUTPUT_NAMES.fullmatch(n)]
    if clash:
        why = (
            "--overwrite replaces only what growsearch wrote"
            if replace_all
            else "growsearch writes files of those names there"
        )
        raise error(
            f"{folder} holds files growsearch did not write ({_listed(clash)}): {why}; move them or choose another folder (nothing was changed)"
        )


def remove_owned(folder: str | Path) -> None:
    """Remove what growsearch wrote in ``folder`` (its manifest's names), nothing else."""
    import shutil

    folder = Path(folder)
    for name in owned(folder):
        p = folder / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    if str(folder.resolve()) not in _HELD:  # a holder records its folder when it lets go
        record(folder)


def _write_manifest(folder: Path, m: dict) -> None:
    if folder.is_dir():
        with atomic_path(folder / MANIFEST) as tmp:
            tmp.write_text(json.dumps(m, indent=1) + "\n")


def record(folder: str | Path) -> None:
    """Write ``folder``'s manifest now: every name in it that growsearch wrote (see :func:`owned`)."""
    folder = Path(folder)
    _write_manifest(folder, {"ours": sorted(owned(folder))})


@contextmanager
def held(
    folder: str | Path | None, error: type[Exception], *, check: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold ``folder`` for the life of the block: a second growsearch command on the same folder,
    from this machine or another one sharing the disk, gets ``error`` naming the holder instead
    of mixing its files with ours. ``check`` (the command's own refusals: a finished run, a
    user's file under an output name) runs inside the lock, so checking and claiming the folder
    are one step. What the block writes is recorded in the folder's manifest (:func:`owned`),
    also when it is killed. A maintained lock (``filelock``, an OS-level ``flock``) rather than a
    hand-made one: it is released when the holder dies, however it dies. Re-entrant within a
    process. A symlinked folder is followed, never replaced."""
    from filelock import FileLock, Timeout

    if folder is None:  # nothing written: nothing to hold
        yield
        return
    real = Path(folder).resolve()
    key = str(real)
    if key in _HELD:
        if check is not None:
            check()
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path = lock_path(real)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = path.with_suffix(".holder").read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise error(
            f"{folder} is in use by another growsearch command ({holder[:200]}): wait for it to finish, or choose another folder"
        ) from None
    _HELD[key], _LOCKS[key] = 1, lock
    try:
        # who holds it, for the error above (beside the lock: filelock owns the lock file itself)
        path.with_suffix(".holder").write_text(
            f"pid {os.getpid()}: {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))}\n"[:500]
        )
        if check is not None:
            check()
        before, theirs = sorted(owned(real)), foreign(real)
        real.mkdir(parents=True, exist_ok=True)
        # the claim: a killed command's files stay ours (all but what was there before it)
        _write_manifest(real, {"ours": before, "claimed": {"pid": os.getpid(), "foreign": theirs}})
        try:
            yield
        finally:
            if real.is_dir():  # ours: all but what was there before (a folder swapped in whole holds only ours)
                now = {p.name for p in real.iterdir()} - {MANIFEST}
                _write_manifest(real, {"ours": sorted(now - set(theirs))})
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
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")  # a BOM, read alike for JSON and YAML
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
        raise error(
            f"{path}: cannot parse {'YAML' if use_yaml else 'JSON'}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None


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


MAX_YAML_ALIASES = 100  # a file with more is refused before it is expanded


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
    # aliases are counted before anything is built: nested ones expand exponentially (a
    # "billion laughs" file would exhaust memory); a schedule or space needs few, if any
    aliases = sum(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader))
    if aliases > MAX_YAML_ALIASES:
        raise ValueError(
            f"{aliases} YAML aliases (*name), more than the {MAX_YAML_ALIASES} growsearch expands: write the values out"
        )
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass: safe_load's constructors only


def cut_short(text: str, longest: int = 200) -> str:
    """``text`` with every run of non-blank characters longer than ``longest`` cut in its middle,
    saying how much went: a message that echoes a 2 MB value stays one readable line, its fix kept."""
    import re

    def cut(m: re.Match) -> str:
        w = m.group(0)
        return f"{w[: longest // 2]}...[{len(w) - longest // 2 - longest // 4} characters]...{w[-(longest // 4) :]}"

    return re.sub(rf"\S{{{longest + 1},}}", cut, text)


def printable(v: object) -> str:
    """``v`` as a one-line message may quote it: as it is when printable, else its repr (a key
    holding a newline would otherwise break the line)."""
    text = str(v)
    return text if text.isprintable() else repr(text)
