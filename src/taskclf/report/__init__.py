"""taskclf.report."""
