"""taskclf.labels."""
