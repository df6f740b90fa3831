"""The package version, in one place: the façade and every module that records it read it here."""

__version__ = "0.4.0"
