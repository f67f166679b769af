"""taskclf.synthetic."""
