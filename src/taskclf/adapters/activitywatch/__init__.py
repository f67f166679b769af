"""taskclf.adapters.activitywatch."""
