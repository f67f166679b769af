"""One library call per ``taskclf labels`` command that needs more than one store method.

These glue the store, the projection, the weak rules, the feature partitions
(``features.build.load_features``) and the ActivityWatch server together; the CLI only parses
options and renders the returned values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from taskclf.core._atomic import atomic_write_with
from taskclf.core.defaults import DEFAULT_BUCKET_SECONDS, DEFAULT_SCHEMA_VERSION
from taskclf.core.errors import InputError, SourceError
from taskclf.core.paths import Layout
from taskclf.core.types import LabelSpan
from taskclf.labels._activity import AppTime, window_activity
from taskclf.labels._db import from_us
from taskclf.labels.projection import coverage_table, project_blocks_to_windows, utc_microseconds
from taskclf.labels.store import FillResult, LabelStore
from taskclf.labels.weak_rules import DEFAULT_WEAK_RULES, WeakRule, propose_weak_spans, summarize

#: Longest "last N minutes" label-now accepts (one day).
MAX_LABEL_NOW_MINUTES = 24 * 60


@dataclass(frozen=True)
class LabelNowResult:
    """The stored span and what ActivityWatch saw (or why it could not be asked)."""

    span_id: int
    span: LabelSpan
    activity: list[AppTime] | None
    aw_error: str | None


def label_now(
    store: LabelStore,
    *,
    minutes: int,
    label: str,
    user_id: str | None,
    now: datetime,
    aw_host: str,
) -> LabelNowResult:
    """Label ``[now - minutes, now)`` and then summarize that time from ActivityWatch.

    The span is stored first (the label must not depend on the server); a server that cannot
    be reached only leaves ``activity`` None with the reason in ``aw_error``. The partly
    covered minute at the start is labeled by projection only if an adjacent span agrees.
    """
    if not 1 <= minutes <= MAX_LABEL_NOW_MINUTES:
        raise InputError(f"--minutes must be 1..{MAX_LABEL_NOW_MINUTES}, got {minutes}")
    span = LabelSpan(
        start_ts=now - timedelta(minutes=minutes),
        end_ts=now,
        label=label,
        user_id=user_id,
        provenance="manual",
    )
    result = store.add(span)
    try:
        activity: list[AppTime] | None = window_activity(aw_host, span.start_ts, span.end_ts)
        error = None
    except (SourceError, InputError) as exc:
        activity, error = None, str(exc)
    except ImportError:  # the REST client ships with taskclf; guard a broken install anyway
        activity, error = None, "the ActivityWatch client is not available in this install"
    return LabelNowResult(result.span_id, span, activity, error)


def _load_features(
    layout: Layout,
    date_from: date,
    date_to: date,
    user_ids: Sequence[str] | None,
    schema_version: str,
) -> pd.DataFrame:
    from taskclf.features.build import load_features

    return load_features(
        layout, date_from, date_to, user_ids=user_ids, schema_version=schema_version
    )


def _spans_for(store: LabelStore, features: pd.DataFrame) -> pd.DataFrame:
    if features.empty:
        return store.spans_frame(start=from_us(0), end=from_us(1))
    t = utc_microseconds(features["bucket_start_ts"], column="bucket_start_ts")
    return store.spans_frame(
        start=from_us(int(t.min())),
        end=from_us(int(t.max()) + DEFAULT_BUCKET_SECONDS * 1_000_000),
    )


@dataclass(frozen=True)
class ProjectionRun:
    """Projected feature rows and their coverage per user and label."""

    projected: pd.DataFrame
    coverage: pd.DataFrame
    written: Path | None
    labeled_rows: int


def project_range(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    schema_version: str = DEFAULT_SCHEMA_VERSION,
    out: Path | None = None,
) -> ProjectionRun:
    """Project the stored spans onto the feature minutes of ``date_from..date_to``.

    With ``out``, the labeled rows (features plus ``label``) are written there as Parquet,
    atomically, sorted by user and minute.
    """
    features = _load_features(layout, date_from, date_to, user_ids, schema_version)
    store = LabelStore.for_layout(layout)
    projected = project_blocks_to_windows(features, _spans_for(store, features))
    labeled = projected.loc[projected["label"].notna()].reset_index(drop=True)
    if out is not None:
        atomic_write_with(out, lambda tmp: labeled.to_parquet(tmp, index=False))
    return ProjectionRun(projected, coverage_table(projected), out, len(labeled))


@dataclass(frozen=True)
class WeakRun:
    """Weak-rule proposals over a date range and, when applied, what was stored."""

    proposals: list[LabelSpan]
    summary: pd.DataFrame
    fill: FillResult | None


def weak_rules_range(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    apply: bool = False,
    rules: Sequence[WeakRule] = DEFAULT_WEAK_RULES,
    schema_version: str = DEFAULT_SCHEMA_VERSION,
) -> WeakRun:
    """Propose weak spans over the feature minutes; with ``apply`` store them into gaps only."""
    features = _load_features(layout, date_from, date_to, user_ids, schema_version)
    proposals = propose_weak_spans(features, rules)
    fill = LabelStore.for_layout(layout).fill_gaps(proposals) if apply else None
    return WeakRun(proposals, summarize(proposals), fill)
