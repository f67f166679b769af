"""taskclf.adapters."""
