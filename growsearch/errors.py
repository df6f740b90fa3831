"""One root for every error meant for a user: ``except growsearch.GrowsearchError`` catches them all.

Each module raises its own subclass (``ScheduleError``, ``DataError``, ...), whose message is one
line naming the fix; the ``growsearch`` command prints it and exits with code 2.

Example:
    >>> from growsearch.errors import GrowsearchError
    >>> from growsearch.plan.schedule import ScheduleError
    >>> issubclass(ScheduleError, GrowsearchError) and issubclass(ScheduleError, ValueError)
    True
"""

from __future__ import annotations

__all__ = ["GrowsearchError"]


class GrowsearchError(Exception):
    """A mistake in what growsearch was asked to do (input, files, settings), never a bug in it."""
