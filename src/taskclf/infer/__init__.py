"""taskclf.infer."""
