"""The data: sources found by name and their decode cache, nested class subsets, the validation
split, and the in-memory batch loader.

Importing this package registers the shipped sources (:mod:`growsearch.data.sources`);
everything is found by name through :func:`growsearch.data.dataset.create_dataset`.
"""

from growsearch.data import sources as _sources  # noqa: F401 - registers the shipped sources
