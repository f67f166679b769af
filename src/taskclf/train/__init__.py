"""taskclf.train."""
