"""Weak labeling rules: bootstrap a new user's labels from unambiguous minutes.

A weak rule looks at a feature row's app category, domain category or idle features and,
when it fires, proposes the row's minute for one label. Rules are tried in order and the first
that fires decides; contiguous minutes (same user, same rule, buckets back to back) merge into
one :class:`~taskclf.core.types.LabelSpan` with provenance ``weak:<rule>`` and the rule's
confidence. Only high-precision rules are defaults (the ML baseline in ``infer.baseline`` has
the broad table):

| rule          | fires when                                              | label       | conf |
|---------------|---------------------------------------------------------|-------------|------|
| lockscreen    | ``app_category`` is ``lockscreen``                      | BreakIdle   | 0.95 |
| afk           | ``app_category`` is ``none`` (no window time: away)     | BreakIdle   | 0.90 |
| idle          | ``max_idle_run_seconds`` >= 55 (idle all minute long)   | BreakIdle   | 0.85 |
| meeting       | ``app_category`` or ``domain_category`` is ``meeting``  | Meet        | 0.80 |
| communicate   | ``app_category`` or ``domain_category`` in email, chat  | Communicate | 0.75 |

Category names follow ``adapters.activitywatch.mapping.APP_CATEGORIES`` and
``features.domain.DOMAIN_CATEGORIES``. A missing value (NaN) never fires a rule.

Weak spans never mix silently with manual ones: they keep their ``weak:`` provenance, are
stored only into unlabeled time (:meth:`LabelStore.fill_gaps`), a manual span added later
cuts them, and listings can filter them (``provenance="weak:"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.defaults import DEFAULT_BUCKET_SECONDS
from taskclf.core.errors import SchemaError
from taskclf.core.types import LabelSpan, validate_label, validate_user_id
from taskclf.labels._db import from_us
from taskclf.labels.projection import object_values, utc_microseconds
from taskclf.labels.store import WEAK_PREFIX

__all__ = ["DEFAULT_WEAK_RULES", "Condition", "WeakRule", "propose_weak_spans", "summarize"]


@dataclass(frozen=True)
class Condition:
    """``column`` is one of ``values`` (``op="in"``) or is >= ``threshold`` (``op=">="``)."""

    column: str
    op: Literal["in", ">="]
    values: frozenset[str] = frozenset()
    threshold: float = 0.0

    def mask(self, df: pd.DataFrame) -> NDArray[np.bool_]:
        """Rows where the condition holds (missing values never match)."""
        if self.column not in df.columns:
            raise SchemaError(f"weak rules need column {self.column!r}; the feature frame lacks it")
        col = df[self.column]
        if self.op == "in":
            vals = object_values(col)
            return np.fromiter((v in self.values for v in vals), dtype=bool, count=len(vals))
        num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return np.asarray(num >= self.threshold, dtype=bool)


@dataclass(frozen=True)
class WeakRule:
    """A rule: fires when any of its conditions holds; proposes ``label``."""

    name: str
    label: str
    confidence: float
    conditions: tuple[Condition, ...]

    def __post_init__(self) -> None:
        validate_label(self.label, where=f"in weak rule {self.name!r}")
        if not self.name or not self.name.replace("_", "").isalnum():
            raise SchemaError(f"weak rule name must be [A-Za-z0-9_]+, got {self.name!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise SchemaError(f"weak rule {self.name!r}: confidence must be in [0, 1]")

    @property
    def provenance(self) -> str:
        """``weak:<name>``."""
        return f"{WEAK_PREFIX}{self.name}"

    def mask(self, df: pd.DataFrame) -> NDArray[np.bool_]:
        """Rows where the rule fires."""
        out = np.zeros(len(df), dtype=bool)
        for cond in self.conditions:
            out |= cond.mask(df)
        return out


def _in(column: str, *values: str) -> Condition:
    return Condition(column, "in", values=frozenset(values))


DEFAULT_WEAK_RULES: Final[tuple[WeakRule, ...]] = (
    WeakRule("lockscreen", "BreakIdle", 0.95, (_in("app_category", "lockscreen"),)),
    WeakRule("afk", "BreakIdle", 0.90, (_in("app_category", "none"),)),
    WeakRule("idle", "BreakIdle", 0.85, (Condition("max_idle_run_seconds", ">=", threshold=55),)),
    WeakRule(
        "meeting", "Meet", 0.80, (_in("app_category", "meeting"), _in("domain_category", "meeting"))
    ),
    WeakRule(
        "communicate",
        "Communicate",
        0.75,
        (_in("app_category", "email", "chat"), _in("domain_category", "email", "chat")),
    ),
)


def _row_users(df: pd.DataFrame, user_id: str | None) -> NDArray[np.object_]:
    if user_id is not None:
        validate_user_id(user_id, where="for weak rules")
        return np.full(len(df), user_id, dtype=object)
    if "user_id" not in df.columns:
        raise SchemaError("weak rules need a 'user_id' column or an explicit user_id")
    users = object_values(df["user_id"])
    for i, u in enumerate(users):
        if u is None:
            raise SchemaError(f"weak rules: feature row {i} has no user_id")
        validate_user_id(str(u), where=f"in feature row {i}")
    return users


def propose_weak_spans(
    features_df: pd.DataFrame,
    rules: Sequence[WeakRule] = DEFAULT_WEAK_RULES,
    *,
    user_id: str | None = None,
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
    min_minutes: int = 1,
) -> list[LabelSpan]:
    """Spans proposed by ``rules`` over ``features_df`` (pure; nothing is stored).

    Args:
        features_df: Feature rows with ``bucket_start_ts`` (tz-aware), ``user_id`` (unless
            ``user_id`` is given) and the columns the rules read.
        rules: Rules in priority order (first that fires wins).
        user_id: Owner of every row (overrides the column).
        bucket_seconds: Row width; rows ``bucket_seconds`` apart are contiguous.
        min_minutes: Drop merged runs shorter than this many rows.

    Returns:
        Spans sorted by user then start, with provenance ``weak:<rule>``.
    """
    if len(features_df) == 0:
        return []
    if "bucket_start_ts" not in features_df.columns:
        raise SchemaError("weak rules need column 'bucket_start_ts'")
    users = _row_users(features_df, user_id)
    t = utc_microseconds(features_df["bucket_start_ts"], column="bucket_start_ts")
    rule_idx = np.full(len(features_df), -1, dtype=np.int64)
    for i, rule in enumerate(rules):
        rule_idx[(rule_idx < 0) & rule.mask(features_df)] = i
    user_codes, user_names = pd.factorize(pd.Series(users, dtype=object), sort=True)
    order = np.lexsort((t, user_codes))
    t, codes, rix = t[order], np.asarray(user_codes)[order], rule_idx[order]
    width = int(bucket_seconds) * 1_000_000
    fired = rix >= 0
    new_run = np.ones(len(t), dtype=bool)
    new_run[1:] = (codes[1:] != codes[:-1]) | (rix[1:] != rix[:-1]) | (t[1:] - t[:-1] != width)
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], len(t)) - 1
    spans: list[LabelSpan] = []
    for first, last in zip(starts, ends, strict=True):
        if not fired[first] or last - first + 1 < min_minutes:
            continue
        rule = rules[int(rix[first])]
        spans.append(
            LabelSpan(
                start_ts=from_us(int(t[first])),
                end_ts=from_us(int(t[last]) + width),
                label=rule.label,
                provenance=rule.provenance,
                user_id=str(user_names[int(codes[first])]),
                confidence=rule.confidence,
            )
        )
    return spans


def summarize(spans: Sequence[LabelSpan]) -> pd.DataFrame:
    """Spans and minutes per user, rule (provenance) and label, sorted."""
    frame = pd.DataFrame(
        {
            "user_id": [s.user_id or "(all)" for s in spans],
            "provenance": [s.provenance for s in spans],
            "label": [s.label for s in spans],
            "minutes": [(s.end_ts - s.start_ts).total_seconds() / 60 for s in spans],
        }
    )
    if frame.empty:
        return pd.DataFrame(columns=["user_id", "provenance", "label", "spans", "minutes"])
    out = (
        frame.groupby(["user_id", "provenance", "label"], sort=True)
        .agg(spans=("minutes", "size"), minutes=("minutes", "sum"))
        .reset_index()
    )
    return out
