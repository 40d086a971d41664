"""Interoperability with real peers written by others (issue 5): ``nox -s interop``."""
