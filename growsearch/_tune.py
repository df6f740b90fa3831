"""Kept so that Tune experiments pickled before growsearch.tune existed still restore."""

from growsearch.tune import CostStopper, GrowSearch, TrialLines  # noqa: F401
