"""Connecting to Ray: a fresh local instance on a laptop, or an existing cluster by address.

Either way the answer to a mistake is one line in seconds: an address nothing listens on, or
per-trial resources no node has (Ray would otherwise leave every trial pending forever).

Example:
    >>> init_ray(None, cpus_per_trial=1, gpus_per_trial=0)  # doctest: +SKIP
"""

from __future__ import annotations

import os

from growsearch.study import SearchError

__all__ = ["init_ray"]


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
        raise SearchError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}): is `ray start --head --port {port}` running there?") from None


def init_ray(address: str | None, cpus_per_trial: float, gpus_per_trial: float, *, quiet: bool = True) -> None:
    import logging

    import ray

    level = logging.ERROR if quiet else logging.INFO

    if not ray.is_initialized():
        if address:
            _reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, logging_level=level)
            except (ConnectionError, RuntimeError) as e:
                raise SearchError(f"cannot connect to the Ray cluster at {address}: {str(e).splitlines()[0]} (is `ray start --head` running there?)") from None
        else:
            # A laptop run: a local Ray with this machine's CPUs and no dashboard.
            # address="local": always a fresh instance of our own, never a cluster some earlier run
            # left recorded in /tmp/ray (ray.init() would try to join that and refuse num_cpus)
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level=level)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    max_cpu = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
    max_gpu = max((n["Resources"].get("GPU", 0) for n in nodes), default=0)
    if cpus_per_trial > max_cpu:
        raise SearchError(f"--cpus-per-trial {cpus_per_trial:g} exceeds the largest node's {max_cpu:g} CPUs: no trial could ever start")
    if gpus_per_trial > max_gpu:
        raise SearchError(f"--gpus-per-trial {gpus_per_trial:g} but the largest node has {max_gpu:g} GPUs: no trial could ever start")
