"""taskclf.labels: the label store and what is built on it.

- :mod:`taskclf.labels.store` - label spans in SQLite (``Layout.labels_db``): scope and
  overlap rules, overwrite, weak spans, ``extend_forward``, CSV/Parquet import and export.
- :mod:`taskclf.labels.projection` - spans onto per-minute feature rows (vectorized).
- :mod:`taskclf.labels.queue` - minutes worth asking the user about.
- :mod:`taskclf.labels.weak_rules` - rule-based ``weak:<rule>`` proposals for new users.
"""
