"""Connecting to Ray: a fresh local instance on a laptop, or an existing cluster by address.

Either way the answer to a mistake is one line in seconds: an address nothing listens on, or
per-trial resources no node has (Ray would otherwise leave every trial pending forever).

Example:
    >>> init_ray(None, cpus_per_trial=1, gpus_per_trial=0)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from growsearch._extensions import made, worker_setup_hook
from growsearch.search import reaper
from growsearch.search.judge import SearchError

__all__ = ["init_ray", "ray_runner", "runtime_env"]


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at a ``HOST:PORT`` cluster address."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://..." and the like: let Ray judge them
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise SearchError(
            f"cannot reach the Ray cluster at {address} ({e.strerror or e}): is `ray start --head --port {port}` running there?"
        ) from None


def init_ray(address: str | None, cpus_per_trial: float, gpus_per_trial: float, *, quiet: bool = True) -> int:
    """Start (or join) Ray and check a trial fits on some node; returns how many trials the
    cluster runs at once. Without ``address``, ``$RAY_ADDRESS`` names the cluster to join (as
    for ``ray.init()``); without either, a fresh local Ray is started."""
    import logging

    import ray

    level = logging.ERROR if quiet else logging.INFO
    if not address and os.environ.get("RAY_ADDRESS"):  # the cluster convention ray.init() itself follows
        address = os.environ["RAY_ADDRESS"]
        print(f"ray: joining the cluster at {address} (RAY_ADDRESS)", flush=True)

    if not ray.is_initialized():
        sigterm = _sigterm()  # ray.init replaces it
        env = runtime_env()  # what this process registered (families, ops, sources) reaches every worker
        if address:
            _reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, logging_level=level, runtime_env=env)
            except (ConnectionError, RuntimeError) as e:
                raise SearchError(
                    f"cannot connect to the Ray cluster at {address}: {str(e).splitlines()[0]} (is `ray start --head` running there?)"
                ) from None
        else:
            # A laptop run: a local Ray with this machine's CPUs and no dashboard.
            # address="local": always a fresh instance of our own, never a cluster some earlier run
            # left recorded in /tmp/ray (ray.init() would try to join that and refuse num_cpus)
            print(f"ray: starting a local Ray with {os.cpu_count()} CPUs", flush=True)
            _private_token()
            before = reaper.children()
            ray.init(
                address="local",
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                log_to_driver=False,
                logging_level=level,
                runtime_env=env,
            )
            # the Ray this process started dies with it, even when it is killed
            reaper.start({p: t for p, t in reaper.children().items() if p not in before})
        _sigterm(sigterm)
    elif made():
        print(
            f"ray: already started, so its workers may not know what this process registered ({', '.join(made())}): "
            "start it with ray.init(runtime_env=growsearch.search.cluster.runtime_env())",
            flush=True,
        )
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    max_cpu = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
    max_gpu = max((n["Resources"].get("GPU", 0) for n in nodes), default=0)
    if cpus_per_trial > max_cpu:
        raise SearchError(
            f"--cpus-per-trial {cpus_per_trial:g} exceeds the largest node's {max_cpu:g} CPUs: no trial could ever start"
        )
    if gpus_per_trial > max_gpu:
        raise SearchError(
            f"--gpus-per-trial {gpus_per_trial:g} but the largest node has {max_gpu:g} GPUs: no trial could ever start"
        )
    fits = [int(n["Resources"].get("CPU", 0) // cpus_per_trial) for n in nodes]
    if gpus_per_trial > 0:
        fits = [min(f, int(n["Resources"].get("GPU", 0) // gpus_per_trial)) for f, n in zip(fits, nodes)]
    return max(1, sum(fits))


def _sigterm(handler: Any = None) -> Any:
    """SIGTERM's Python handler now; with ``handler``, set it again. ``ray.init`` replaces the
    handler (``growsearch``'s stops the command cleanly, exit code 143) with its own, and Ray's
    core worker installs a C++ failure handler under it that prints a stack dump first: setting
    a Python handler again removes both (a caller without one keeps Ray's, minus the dump)."""
    import signal
    import threading

    current = signal.getsignal(signal.SIGTERM)
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler if callable(handler) else current)
    return current


def _private_token() -> None:
    """Guard a local Ray's ports with a token no other user can read. Ray's own default writes a
    token to ~/.ray/auth_token with the umask's mode (0644: readable by any local user who can
    enter the home folder); a token of our own in this process's environment reaches the Ray
    processes it starts and is written nowhere. A token or token file the user set is theirs
    to keep, and so is RAY_AUTH_MODE=disabled."""
    import secrets

    if (
        os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled"
        or os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
    ):
        return
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def runtime_env() -> dict:
    """The ``runtime_env`` a Ray cluster's workers need to know the families, growth ops and
    dataset sources this process registered from outside growsearch (``{}`` when none): pass it to
    your own ``ray.init(runtime_env=...)`` after your ``register_*`` calls; ``growsearch search``
    does so itself. Ray runs its ``worker_process_setup_hook`` in each worker as it starts.

    Example:
        >>> import ray
        >>> ray.init(runtime_env=runtime_env())  # doctest: +SKIP
    """
    hook = worker_setup_hook()
    return {} if hook is None else {"worker_process_setup_hook": hook}


def ray_runner(cpus: float, gpus: float = 0.0):
    """A :func:`growsearch.train.baseline.run_frontier` runner that trains each run as a Ray task with
    ``cpus``/``gpus`` (a trial's resources), yielding results as they finish: the frontier keeps
    every worker busy, as the trials do. Each task loads the dataset by name (through its decode
    cache) rather than receiving it from the driver."""

    def run(fn, jobs, dataset):
        import ray

        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(fn)
        from growsearch.train.baseline import longest_first

        order = longest_first(jobs)
        pending = {task.remote({**job, "progress": False}): j for j, job in order}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                yield pending.pop(ref), ray.get(ref)

    return run
