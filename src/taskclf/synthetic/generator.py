"""Realistic multi-user ActivityWatch exports with ground-truth label spans.

``generate_dataset(out_dir, users=6, days=14, seed=0)`` writes, for users ``user-01`` ...:

- ``<user_id>.json``: an ActivityWatch export exactly like ``GET /api/0/export`` (buckets
  ``aw-watcher-window_<host>``, ``aw-watcher-afk_<host>``, ``aw-watcher-web-<browser>_<host>``
  and, for users who run it, ``aw-watcher-input_<host>``; events newest-first). It imports into
  aw-server 0.12 via ``POST /api/0/import``.
- ``labels.csv``: ground-truth spans with the seven DESIGN §4.1 columns, provenance
  ``synthetic``. Spans cover the activity blocks; short transitions between blocks stay
  unlabeled; breaks and lunch are ``BreakIdle``; calendar meetings are ``Meet``.
- ``users.json``: each user's habits and style parameters.

How a day is made: the user's archetype gives a workday rhythm in their own time zone (start
time, length, lunch, recurring and ad-hoc meetings at fixed local times, breaks every so often,
weekends mostly off); free time is filled with task blocks of the archetype's length range;
inside a block the user switches between the windows of that task (editor, terminal, browser
tabs, chat, ...) with cross-task interruptions; a hidden keyboard/mouse process per window
mode yields the input watcher counts and, through the 180 s AFK timeout, the AFK events.

How users differ in labeling: spans cover the planned blocks exactly, except for *coarse
labelers*, who label the way many people do, in big blocks from memory: they spend part of a
block on other tasks for minutes at a time (reading docs in a Build block, chat in a Write
block; ``drift_share``) and still label the whole block with one label, and some write block
bounds on a 15- or 30-minute grid (``label_grid_minutes``; meetings and breaks keep their
calendar times). *Focused* users (``focus`` > 1) stick to each task's main windows. Because all
users share one user-agnostic model, it ends up over-confident for coarse labelers and
under-confident for focused, clean ones: per-user calibration has something real to fix
(``taskclf demo``, seeds 0-2: per-user temperatures fitted on validation days about 0.65-0.85
for ``regular``/``night_owl``/``ide_reviewer`` and 1.05-1.3 for ``researcher``/``manager``/
``noisy``, around a global temperature of about 0.95).

User archetypes (user ``i`` gets archetype ``i mod 6``; later cycles get other time zones and
jittered style parameters):

- ``regular`` (Europe/Warsaw, Windows, Chrome, VS Code, Slack, Zoom, Google Docs): very regular
  day, long clean blocks (30-90 min, long dwells), focused on each task's main windows, specific
  titles, little cross-task noise (2 %), exact labels: a textbook worker for whom the global
  model is *under*-confident.
- ``noisy`` (America/New_York, macOS, Firefox, Slack, Google Meet, Notion, GitLab): a loose
  labeler. Short blocks (10-35 min), 30 % of dwells are interruptions or other tasks' windows
  (lasting up to ~1.5 min), 30 % of a labeled block spent on other tasks (~8 min at a time),
  block bounds written on a 15-minute grid, 30 % of titles generic ("New Tab", "Untitled", a
  search page), breaks partly spent browsing at the desk, no screen lock. The global model is
  markedly less accurate and *over*-confident for this user.
- ``ide_reviewer`` (Asia/Tokyo, Linux, Firefox, PyCharm, Thunderbird, Markdown docs): reviews
  code inside the IDE (diff windows) instead of the browser and writes docs as Markdown in the
  IDE, so Review and Write look like Build to a model trained on the others; 10 s input polls.
- ``researcher`` (America/Los_Angeles, macOS, Chrome, Teams, Outlook, Word, PDF app): mostly
  ReadResearch and Write, and a coarse labeler (25 % of a block on other tasks, ~4 min at a
  time: papers read inside a Write block are still "Write"); no input watcher (input features
  missing); the global model is *over*-confident for this user.
- ``manager`` (Europe/London, Windows, Teams for chat *and* meetings, Outlook, Confluence):
  meeting-heavy calendar, much Communicate and Write; writes work blocks down in half-hours
  (30-minute grid); no input watcher.
- ``night_owl`` (Asia/Kolkata, Linux, Chrome, vim in the terminal, Slack, Google Meet): starts
  late, codes in the terminal only (editor and shell are the same app), works some weekends,
  focused on each task's main windows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from taskclf.core._atomic import atomic_write_json, atomic_write_text
from taskclf.core.defaults import DEFAULT_SYNTH_DAYS, DEFAULT_SYNTH_USERS
from taskclf.core.errors import InputError
from taskclf.core.paths import encode_user_id
from taskclf.core.types import LabelSpan
from taskclf.synthetic._activities import activity_tables
from taskclf.synthetic._export import build_export
from taskclf.synthetic._profiles import UserProfile, make_profile
from taskclf.synthetic._schedule import label_spans, plan_day
from taskclf.synthetic._simulate import DaySimulator

#: A Monday; the default first day, fixed so outputs never depend on today's date.
DEFAULT_START_DATE: Final = date(2026, 1, 5)
DEFAULT_USERS: Final = DEFAULT_SYNTH_USERS
DEFAULT_DAYS: Final = DEFAULT_SYNTH_DAYS
MAX_USERS: Final = 999
MAX_DAYS: Final = 366
LABELS_CSV: Final = "labels.csv"
USERS_JSON: Final = "users.json"
LABEL_COLUMNS: Final = (
    "start_ts",
    "end_ts",
    "label",
    "provenance",
    "user_id",
    "confidence",
    "extend_forward",
)
PROVENANCE: Final = "synthetic"
USERS_FORMAT_VERSION: Final = 1


@dataclass(frozen=True)
class SyntheticUser:
    """One user's generated data, in memory."""

    profile: UserProfile
    export: dict[str, Any]
    spans: tuple[LabelSpan, ...]

    @property
    def user_id(self) -> str:
        return self.profile.user_id

    def event_counts(self) -> dict[str, int]:
        """Number of events per bucket type."""
        return {b["type"]: len(b["events"]) for b in self.export["buckets"].values()}

    def labeled_minutes(self) -> dict[str, float]:
        """Labeled minutes per label (sorted by label)."""
        minutes: dict[str, float] = {}
        for span in self.spans:
            dur = (span.end_ts - span.start_ts).total_seconds() / 60
            minutes[span.label] = minutes.get(span.label, 0.0) + dur
        return {k: round(minutes[k], 2) for k in sorted(minutes)}


@dataclass(frozen=True)
class SyntheticUserSummary:
    """What was written for one user."""

    user_id: str
    archetype: str
    timezone: str
    export_path: Path
    event_counts: dict[str, int]
    labeled_minutes: dict[str, float]

    @property
    def events(self) -> int:
        return sum(self.event_counts.values())


@dataclass(frozen=True)
class SyntheticDataset:
    """Paths of a generated dataset and per-user summaries."""

    out_dir: Path
    exports: dict[str, Path]
    labels_csv: Path
    users_json: Path
    users: tuple[SyntheticUserSummary, ...]


def _check_args(users: int, days: int, seed: int) -> None:
    for name, value, lo, hi in (
        ("users", users, 1, MAX_USERS),
        ("days", days, 1, MAX_DAYS),
        ("seed", seed, 0, 2**63 - 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InputError(
                f"synthetic data: --{name} must be an integer in {lo}..{hi}, got {value!r}"
            )


def generate_user(
    index: int, *, days: int = DEFAULT_DAYS, seed: int = 0, start_date: date | None = None
) -> SyntheticUser:
    """Generate user ``index`` (0-based; id ``user-{index+1:02d}``) in memory.

    A user's data depends only on ``(seed, index, days, start_date)``, not on how many users
    are generated with them.
    """
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_USERS:
        raise InputError(
            f"synthetic data: user index must be an integer in 0..{MAX_USERS - 1}, got {index!r}"
        )
    _check_args(1, days, seed)
    first = start_date or DEFAULT_START_DATE
    profile = make_profile(index, seed)
    rng = np.random.default_rng([seed, index, 1])
    sim = DaySimulator(profile, activity_tables(profile), rng)
    spans: list[LabelSpan] = []
    for offset in range(days):
        blocks = plan_day(profile, first + timedelta(days=offset), rng)
        sim.simulate(blocks)
        spans.extend(
            LabelSpan(
                start_ts=datetime.fromtimestamp(start, tz=UTC),
                end_ts=datetime.fromtimestamp(end, tz=UTC),
                label=label,
                provenance=PROVENANCE,
                user_id=profile.user_id,
            )
            for start, end, label in label_spans(profile, blocks)
        )
    created = datetime.combine(first - timedelta(days=7), time(9, 0), tzinfo=UTC)
    export = build_export(profile, sim.streams, created)
    return SyntheticUser(profile=profile, export=export, spans=tuple(spans))


def export_path(out_dir: Path, user_id: str) -> Path:
    """Where the export of ``user_id`` goes in ``out_dir`` (the id encoded for file names)."""
    return out_dir / f"{encode_user_id(user_id)}.json"


def labels_csv_text(spans: list[LabelSpan]) -> str:
    """The ``labels.csv`` text of ``spans`` (sorted by user, start), DESIGN §4.1 columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for s in sorted(spans, key=lambda s: (s.user_id or "", s.start_ts, s.end_ts)):
        writer.writerow(
            [
                s.start_ts.isoformat(),
                s.end_ts.isoformat(),
                s.label,
                s.provenance,
                s.user_id or "",
                "" if s.confidence is None else repr(s.confidence),
                "true" if s.extend_forward else "false",
            ]
        )
    return buf.getvalue()


def generate_dataset(
    out_dir: Path,
    *,
    users: int = DEFAULT_USERS,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    start_date: date | None = None,
    progress: Callable[[SyntheticUserSummary], None] | None = None,
) -> SyntheticDataset:
    """Write exports, ``labels.csv`` and ``users.json`` for ``users`` × ``days`` into ``out_dir``.

    Same arguments give byte-identical files. Every file is written atomically. ``progress``
    is called after each user's export is written.
    """
    _check_args(users, days, seed)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(
            f"synthetic data: --out {out_dir} exists and is not a directory; give a directory path"
        )
    first = start_date or DEFAULT_START_DATE
    spans: list[LabelSpan] = []
    summaries: list[SyntheticUserSummary] = []
    profiles: list[dict[str, Any]] = []
    for index in range(users):
        user = generate_user(index, days=days, seed=seed, start_date=first)
        path = export_path(out_dir, user.user_id)
        atomic_write_text(path, json.dumps(user.export, ensure_ascii=False))
        spans.extend(user.spans)
        profiles.append(user.profile.summary())
        summary = SyntheticUserSummary(
            user_id=user.user_id,
            archetype=user.profile.archetype.name,
            timezone=user.profile.archetype.timezone,
            export_path=path,
            event_counts=user.event_counts(),
            labeled_minutes=user.labeled_minutes(),
        )
        summaries.append(summary)
        if progress is not None:
            progress(summary)
    labels_path = out_dir / LABELS_CSV
    atomic_write_text(labels_path, labels_csv_text(spans))
    users_path = out_dir / USERS_JSON
    atomic_write_json(
        users_path,
        {
            "format_version": USERS_FORMAT_VERSION,
            "generator": "taskclf.synthetic",
            "seed": seed,
            "start_date": first.isoformat(),
            "days": days,
            "users": profiles,
        },
    )
    return SyntheticDataset(
        out_dir=out_dir,
        exports={s.user_id: s.export_path for s in summaries},
        labels_csv=labels_path,
        users_json=users_path,
        users=tuple(summaries),
    )
