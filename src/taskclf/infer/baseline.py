"""Rule baseline: a day-one classifier for users without a model (no ML, vectorized).

Rules look at the app and domain category, AFK/idle features and input rates of each minute
and are applied in priority order; the first rule that fires decides the minute. A rule's
``strength`` is its confidence: the row's probabilities are ``strength`` for the rule's label
and ``(1 - strength) / 7`` for each other core label (columns in ``LABEL_SET_V1`` order), so
the baseline flows through the same reject -> smooth -> segments -> taxonomy steps as a model.
With the default reject threshold (0.55) the weak rules (strength < 0.55) end up rejected as
Mixed/Unknown; they still name the most plausible core label.

Missing input features (no ``os.hid.input`` watcher: ``keys_per_min`` etc. are NaN) never make
a rule fire on their own: a comparison with NaN is false, and rules that can do without input
say so in the table.

Rule table (priority order; "typing" = ``keys_per_min >= 20``, "idle run" =
``max_idle_run_seconds >= 45``, "inactive" = ``active_seconds_any < 5``):

| rule              | condition                                           | label        | strength|
|-------------------|-----------------------------------------------------|--------------|---------|
| lockscreen        | app_category ``lockscreen``                         | BreakIdle    | 0.95    |
| no_window         | app_category ``none`` (no window time)              | BreakIdle    | 0.85    |
| idle_run          | idle run                                            | BreakIdle    | 0.85    |
| inactive          | inactive (activity known, NaN does not fire)        | BreakIdle    | 0.75    |
| meeting           | app ``meeting``; domain ``meeting``/``video_call``  | Meet         | 0.80    |
| messaging         | app ``chat``/``email``; domain ``chat``/``email_web`` | Communicate | 0.75|
| code_review_web   | browser on domain ``code_hosting``                  | Review       | 0.60    |
| editor_typing     | editor (``is_editor``) and typing                   | Build        | 0.75    |
| terminal_devtools | terminal (``is_terminal``) or app ``devtools``      | Debug        | 0.55    |
| editor            | editor without typing evidence                      | Build        | 0.50    |
| docs_typing       | app ``docs`` or domain ``productivity``, typing     | Write        | 0.70    |
| docs              | app ``docs`` or domain ``productivity``             | Write        | 0.55    |
| reading_web       | browser on domain ``docs``/``search``/``news``      | ReadResearch | 0.60    |
| scrolling_browser | browser, >= 5 scrolls/min, keys < 10/min or unknown | ReadResearch | 0.55    |
| design            | app ``design``                                      | Build        | 0.45    |
| leisure           | app ``media``/``game``; domain ``video``/``social`` | BreakIdle    | 0.50    |
| browser           | any other browser minute                            | ReadResearch | 0.40    |
| typing_elsewhere  | typing in any other app                             | Write        | 0.30    |
| fallback          | anything else                                       | ReadResearch | 0.20    |

Category names follow ``adapters.activitywatch.mapping.APP_CATEGORIES`` and the domain
categories of ``features.domain``; an unrecognized category simply matches no specific rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.errors import SchemaError
from taskclf.core.types import LABEL_SET_V1

BASELINE_IDLE_RUN_SECONDS: Final = 45.0
BASELINE_INACTIVE_SECONDS: Final = 5.0
BASELINE_TYPING_KEYS_PER_MIN: Final = 20.0
BASELINE_LOW_TYPING_KEYS_PER_MIN: Final = 10.0
BASELINE_SCROLL_PER_MIN: Final = 5.0

#: Probability columns of :func:`predict_baseline`, in ``LABEL_SET_V1`` order.
BASELINE_PROB_COLUMNS: Final[tuple[str, ...]] = tuple(f"prob_{label}" for label in LABEL_SET_V1)

REQUIRED_COLUMNS: Final[tuple[str, ...]] = (
    "app_category",
    "domain_category",
    "is_browser",
    "is_editor",
    "is_terminal",
    "active_seconds_any",
    "max_idle_run_seconds",
    "keys_per_min",
    "scroll_events_per_min",
)


@dataclass(frozen=True)
class BaselineRule:
    """One row of the rule table."""

    name: str
    label: str
    strength: float
    description: str


RULES: Final[tuple[BaselineRule, ...]] = (
    BaselineRule("lockscreen", "BreakIdle", 0.95, "screen locked"),
    BaselineRule("no_window", "BreakIdle", 0.85, "no window time in the minute"),
    BaselineRule("idle_run", "BreakIdle", 0.85, "idle run >= 45 s"),
    BaselineRule("inactive", "BreakIdle", 0.75, "active < 5 s"),
    BaselineRule("meeting", "Meet", 0.80, "meeting app or meeting site"),
    BaselineRule("messaging", "Communicate", 0.75, "chat/e-mail app or site"),
    BaselineRule("code_review_web", "Review", 0.60, "browser on a code hosting site"),
    BaselineRule("editor_typing", "Build", 0.75, "typing in an editor"),
    BaselineRule("terminal_devtools", "Debug", 0.55, "terminal or developer tool"),
    BaselineRule("editor", "Build", 0.50, "editor without typing evidence"),
    BaselineRule("docs_typing", "Write", 0.70, "typing in a document"),
    BaselineRule("docs", "Write", 0.55, "document app or site"),
    BaselineRule("reading_web", "ReadResearch", 0.60, "browser on docs/search/news"),
    BaselineRule("scrolling_browser", "ReadResearch", 0.55, "scrolling a page, little typing"),
    BaselineRule("design", "Build", 0.45, "design tool"),
    BaselineRule("leisure", "BreakIdle", 0.50, "media, games, video or social sites"),
    BaselineRule("browser", "ReadResearch", 0.40, "other browsing"),
    BaselineRule("typing_elsewhere", "Write", 0.30, "typing in another app"),
    BaselineRule("fallback", "ReadResearch", 0.20, "no rule applies"),
)
_FALLBACK = len(RULES) - 1


def _text(df: pd.DataFrame, column: str) -> NDArray[np.object_]:
    return np.asarray(df[column].astype(object).where(df[column].notna(), "").to_numpy())


def _flag(df: pd.DataFrame, column: str) -> NDArray[np.bool_]:
    values = df[column].astype(object)
    return np.asarray(values.where(values.notna(), False).astype(bool).to_numpy())


def _number(df: pd.DataFrame, column: str) -> NDArray[np.float64]:
    try:
        return np.asarray(pd.to_numeric(df[column], errors="raise"), dtype=np.float64)
    except (TypeError, ValueError):
        raise SchemaError(
            f"baseline: column {column!r} must be numeric (NaN allowed), got dtype "
            f"{df[column].dtype}"
        ) from None


def _conditions(df: pd.DataFrame) -> Mapping[str, NDArray[np.bool_]]:
    """The condition of every rule (same names as :data:`RULES`), vectorized."""
    cat, dom = _text(df, "app_category"), _text(df, "domain_category")
    browser = _flag(df, "is_browser") | (cat == "browser")
    editor = _flag(df, "is_editor") | (cat == "editor")
    terminal = _flag(df, "is_terminal") | (cat == "terminal")
    keys = _number(df, "keys_per_min")
    scroll = _number(df, "scroll_events_per_min")
    typing = keys >= BASELINE_TYPING_KEYS_PER_MIN
    not_typing = np.isnan(keys) | (keys < BASELINE_LOW_TYPING_KEYS_PER_MIN)
    docs = (cat == "docs") | (dom == "productivity")
    return {
        "lockscreen": cat == "lockscreen",
        "no_window": cat == "none",
        "idle_run": _number(df, "max_idle_run_seconds") >= BASELINE_IDLE_RUN_SECONDS,
        "inactive": _number(df, "active_seconds_any") < BASELINE_INACTIVE_SECONDS,
        "meeting": (cat == "meeting") | np.isin(dom, ["meeting", "video_call"]),
        "messaging": np.isin(cat, ["chat", "email"]) | np.isin(dom, ["chat", "email_web"]),
        "code_review_web": browser & (dom == "code_hosting"),
        "editor_typing": editor & typing,
        "terminal_devtools": terminal | (cat == "devtools"),
        "editor": editor,
        "docs_typing": docs & typing,
        "docs": docs,
        "reading_web": browser & np.isin(dom, ["docs", "search", "news"]),
        "scrolling_browser": browser & (scroll >= BASELINE_SCROLL_PER_MIN) & not_typing,
        "design": cat == "design",
        "leisure": np.isin(cat, ["media", "game"]) | np.isin(dom, ["video", "social"]),
        "browser": browser,
        "typing_elsewhere": typing,
        "fallback": np.ones(len(df), dtype=bool),
    }


def _check_columns(features_df: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in features_df.columns]
    if missing:
        raise SchemaError(
            f"baseline: feature frame lacks columns {missing}; pass feature rows built by "
            "'taskclf features build' (any schema version)"
        )


def baseline_rule_index(features_df: pd.DataFrame) -> NDArray[np.intp]:
    """Index into :data:`RULES` of the rule that decides each row, shape ``(n,)``.

    Raises:
        SchemaError: A required column is missing or not numeric.
    """
    _check_columns(features_df)
    conditions = _conditions(features_df)
    order = [conditions[rule.name] for rule in RULES]
    choices = list(range(len(RULES)))
    return np.asarray(np.select(order, choices, default=_FALLBACK), dtype=np.intp)


def baseline_probabilities(features_df: pd.DataFrame) -> NDArray[np.float64]:
    """Rule probabilities, shape ``(n, 8)``, columns in ``LABEL_SET_V1`` order, rows sum to 1."""
    rule_idx = baseline_rule_index(features_df)
    return _probabilities(rule_idx)


def _probabilities(rule_idx: NDArray[np.intp]) -> NDArray[np.float64]:
    k = len(LABEL_SET_V1)
    label_col = np.array([LABEL_SET_V1.index(rule.label) for rule in RULES])
    strength = np.array([rule.strength for rule in RULES])
    probs = np.repeat(((1.0 - strength[rule_idx]) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(rule_idx.shape[0]), label_col[rule_idx]] = strength[rule_idx]
    return probs


def predict_baseline(features_df: pd.DataFrame) -> pd.DataFrame:
    """Classify every minute by the rule table.

    Args:
        features_df: Feature rows (schema v1/v2/v3 or any frame with
            :data:`REQUIRED_COLUMNS`); input-rate columns may be NaN.

    Returns:
        A frame with the input's index: ``user_id`` and ``bucket_start_ts`` (when present),
        ``core_label`` (the argmax), ``confidence`` (the rule strength), ``rule`` (its name) and
        the probability columns :data:`BASELINE_PROB_COLUMNS`.

    Raises:
        SchemaError: A required column is missing or not numeric.
    """
    rule_idx = baseline_rule_index(features_df)
    probs = _probabilities(rule_idx)
    out = pd.DataFrame(index=features_df.index)
    for column in ("user_id", "bucket_start_ts"):
        if column in features_df.columns:
            out[column] = features_df[column]
    names = np.array([rule.name for rule in RULES], dtype=object)
    labels = np.array([rule.label for rule in RULES], dtype=object)
    out["core_label"] = pd.Series(labels[rule_idx], index=out.index, dtype=object)
    out["confidence"] = probs.max(axis=1) if len(out) else np.zeros(0)
    out["rule"] = pd.Series(names[rule_idx], index=out.index, dtype=object)
    for j, column in enumerate(BASELINE_PROB_COLUMNS):
        out[column] = probs[:, j]
    return out
