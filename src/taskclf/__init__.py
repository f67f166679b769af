"""taskclf: a local-first task-type classifier for ActivityWatch data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("taskclf")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
