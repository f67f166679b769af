"""One exception tree for the whole product.

``TaskclfError`` is the root; the CLI turns any of them into a one-paragraph message and exit
code 2. Messages say what is wrong, where (file, column, row, user), expected vs got, and what
to do next.

- ``InputError``: the user's input is malformed (export, CSV, dates, options, ids).
  - ``SchemaError``: a feature frame or row does not match its schema.
  - ``LabelError``: a label span or label value is invalid, or conflicts with a stored one.
- ``ArtifactError``: an on-disk artifact (bundle, calibrator store, policy) is missing, corrupt
  or incompatible with what it is used with.
- ``SourceError``: an external data source (the ActivityWatch server) failed.
  - ``SourceUnreachableError``, ``SourceTimeoutError``, ``SourceNotFoundError``.
- ``ConfigError``: configuration (config.toml, taxonomy) is invalid.
"""

from __future__ import annotations


class TaskclfError(Exception):
    """Root of every error taskclf raises on purpose."""


class InputError(TaskclfError):
    """Malformed or unusable user input."""


class SchemaError(InputError):
    """A feature row or frame does not match its declared schema."""


class LabelError(InputError):
    """An invalid label span, an unknown label, or a conflict with a stored span."""


class LabelConflictError(LabelError):
    """A new span overlaps an existing span of the same user."""


class ArtifactError(TaskclfError):
    """A stored artifact is missing, corrupt, or incompatible."""


class SourceError(TaskclfError):
    """An external data source failed."""


class SourceUnreachableError(SourceError):
    """The ActivityWatch server could not be reached."""


class SourceTimeoutError(SourceError):
    """The ActivityWatch server did not answer in time."""


class SourceNotFoundError(SourceError):
    """The requested bucket or resource does not exist on the server."""


class ConfigError(TaskclfError):
    """Invalid configuration."""
