"""What was registered from outside growsearch (families, growth ops, dataset sources), kept so
that the Ray workers a search starts can register it too.

Ray runs trials (and a search's frontier) in worker processes that import growsearch afresh:
the shipped families, ops and sources register there on import, but whatever a user's script
registered in the driver does not (a schedule naming it would fail in every trial with "unknown
arch"). Every ``register_*`` function records its call here when the caller is not growsearch
itself; :func:`worker_setup_hook` turns the record into Ray's ``runtime_env``
``worker_process_setup_hook`` (a callable Ray pickles and runs in each worker as it starts),
which makes the same calls there. The user's objects travel by value, so a worker need not be
able to import the module that defined them. :func:`digest` names what is registered now, for
the stage-prefix cache's keys.

Example:
    >>> from growsearch._extensions import digest
    >>> digest({"depths": (1, 2)}) == digest({"depths": (1, 2)}) != digest({"depths": (2, 2)})
    True
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from typing import Any, Callable

__all__ = ["caller", "digest", "forget", "made", "record", "worker_setup_hook"]

# (register function, its arguments, keyword arguments, the module that called it), in call order
_MADE: list[tuple[Callable[..., Any], tuple, dict, str]] = []


def caller(depth: int = 1) -> str:
    """The module name of the code ``depth`` frames above the function that calls this."""
    frame = inspect.currentframe()  # public (inspect), unlike sys._getframe
    for _ in range(depth + 1):
        frame = frame.f_back if frame is not None else None
    return str(frame.f_globals.get("__name__", "")) if frame is not None else ""


def _name(obj: Any) -> Any:
    return getattr(obj, "name", obj)


def record(register: Callable[..., Any], *args: Any, by: str, **kwargs: Any) -> None:
    """Note the call ``register(*args, **kwargs)``, made by module ``by``, unless growsearch made
    it (those happen on import in every process). A later call for the same name replaces it."""
    if by == "growsearch" or by.startswith("growsearch."):
        return
    forget(register, args[0])
    _MADE.append((register, args, kwargs, by))


def forget(register: Callable[..., Any], key: Any) -> None:
    """Drop the recorded ``register`` call for ``key`` (a name, or an object with a ``name``)."""
    name = _name(key)
    _MADE[:] = [m for m in _MADE if not (m[0] is register and _name(m[1][0]) == name)]


def made() -> list[str]:
    """The recorded registrations, as ``"register_family slimvgg"``-style labels."""
    return [f"{register.__name__} {_name(args[0])}" for register, args, _, _ in _MADE]


def worker_setup_hook() -> Callable[[], None] | None:
    """A callable for ``ray.init(runtime_env={"worker_process_setup_hook": ...})`` that repeats
    every recorded registration in each Ray worker; None when nothing was registered.

    Your own ``ray.init`` needs it for a schedule that names your family, op or source::

        import ray
        from growsearch._extensions import worker_setup_hook
        ray.init(runtime_env={"worker_process_setup_hook": worker_setup_hook()})  # after your register_* calls
    """
    if not _MADE:
        return None
    from ray import cloudpickle

    for name in sorted({m for register, args, kwargs, by in _MADE for m in (by, *_modules_of(args, kwargs))}):
        if _user_module(name):  # __main__ always travels by value; installed packages are importable everywhere
            cloudpickle.register_pickle_by_value(sys.modules[name])
    calls = [(register, args, kwargs) for register, args, kwargs, _ in _MADE]

    def replay() -> None:
        for register, args, kwargs in calls:
            register(*args, **kwargs)

    return replay


def _modules_of(*objects: Any) -> set[str]:
    """The modules that define ``objects``, their classes, and (for dataclasses such as a
    ``Family``, and containers) what they hold: an op's class may live in a helper module other
    than the one that registered it."""
    found: set[str] = set()

    def walk(obj: Any, depth: int = 0) -> None:
        if depth > 3:
            return
        for m in (getattr(obj, "__module__", None), getattr(type(obj), "__module__", None)):
            if isinstance(m, str):
                found.add(m)
        if hasattr(obj, "__dataclass_fields__"):
            for f in obj.__dataclass_fields__:
                walk(getattr(obj, f), depth + 1)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v, depth + 1)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v, depth + 1)

    for obj in objects:
        walk(obj)
    return found


def _user_module(name: str) -> bool:
    """A module of the user's own code (not growsearch, not the standard library or an installed
    package): a Ray worker may be unable to import it, so its objects travel by value."""
    import sysconfig

    mod = sys.modules.get(name)
    path = getattr(mod, "__file__", None)
    if (
        mod is None
        or name in ("__main__", "builtins")
        or name == "growsearch"
        or name.startswith("growsearch.")
        or not path
    ):
        return False
    installed = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")} | {
        sys.prefix,
        sys.base_prefix,
    }
    return not any(str(path).startswith(str(p)) for p in installed)


def digest(*objects: Any) -> str:
    """A short hash of what defines ``objects``: their fields, and the compiled code of every
    function among them (not its source file, which a Ray worker given the function by value
    does not have: the driver and its workers must agree). A family or op changed under the same
    name gets another digest, so nothing cached under the old one is served for it."""
    h = hashlib.sha256()

    def code(c: Any) -> None:
        h.update(c.co_code)
        h.update(repr(c.co_names).encode())
        for const in c.co_consts:
            code(const) if hasattr(const, "co_code") else h.update(repr(const).encode())

    def feed(obj: Any) -> None:
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if callable(obj) and not isinstance(obj, type) and hasattr(obj, "__code__"):
            h.update(getattr(obj, "__qualname__", "").encode())
            code(obj.__code__)
        elif hasattr(obj, "__dataclass_fields__"):
            h.update(type(obj).__qualname__.encode())
            for f in obj.__dataclass_fields__:
                feed(getattr(obj, f))
        elif isinstance(obj, dict):
            for k in sorted(obj, key=repr):
                h.update(repr(k).encode())
                feed(obj[k])
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                feed(v)
        elif hasattr(obj, "__dict__") and not isinstance(
            obj, type
        ):  # an op instance: its class's code and its settings
            h.update(type(obj).__qualname__.encode())
            for name, member in sorted(vars(type(obj)).items()):
                if callable(member):
                    feed(member)
            feed(vars(obj))
        else:
            h.update(repr(obj).encode())

    for obj in objects:
        feed(obj)
    return h.hexdigest()[:16]
