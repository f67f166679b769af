"""``python -m taskclf``."""

from taskclf.cli.main import entrypoint

# Guarded: worker processes started with "spawn" (chart rendering) import the parent's main
# module under another name and must not run the command line again.
if __name__ == "__main__":
    entrypoint()
