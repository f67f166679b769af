"""taskclf.cli."""
