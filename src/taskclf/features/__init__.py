"""taskclf.features."""
