"""``python -m taskclf``."""

from taskclf.cli.main import entrypoint

entrypoint()
