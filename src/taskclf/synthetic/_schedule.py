"""A user's day plan: labeled blocks (tasks, meetings, breaks, lunch) and unlabeled gaps.

Times are planned in the user's local time (so a 09:15 standup is at 09:15 wherever the user
lives, across DST changes) and returned as UTC epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from taskclf.synthetic import _vocab as V
from taskclf.synthetic._profiles import WORK_LABELS, UserProfile

_MIN_BLOCK = 300  # seconds; shorter leftovers become unlabeled gaps


@dataclass(frozen=True)
class Block:
    """``[start, end)`` in UTC epoch seconds; ``label`` None for unlabeled transitions."""

    start: int
    end: int
    label: str | None
    kind: str  # task | meeting | break | lunch | gap
    meeting: str | None = None


@dataclass(frozen=True)
class _Local:
    """A planned block in local seconds after midnight."""

    start: int
    end: int
    label: str | None
    kind: str
    meeting: str | None = None


class _Filler:
    """Fills free time with task blocks, short breaks and transition gaps."""

    def __init__(self, profile: UserProfile, rng: np.random.Generator, day_start: int) -> None:
        self.a = profile.archetype
        self.rng = rng
        self.last_break = day_start
        self.prev: str | None = None
        self.out: list[_Local] = []

    def _label(self) -> str:
        weights = np.asarray(self.a.task_mix, dtype=float)
        if self.prev in WORK_LABELS:
            weights[WORK_LABELS.index(self.prev)] *= 0.25
        label = WORK_LABELS[int(self.rng.choice(len(WORK_LABELS), p=weights / weights.sum()))]
        self.prev = label
        return label

    def add(self, block: _Local) -> None:
        self.out.append(block)
        if block.label == "BreakIdle":
            self.last_break = block.end

    def fill(self, a: int, b: int) -> None:
        rng = self.rng
        t = a
        while b - t >= _MIN_BLOCK:
            due = self.a.break_every_minutes * 60 * float(rng.uniform(0.8, 1.25))
            if t - self.last_break >= due and b - t >= 2 * _MIN_BLOCK:
                # a break never runs into the next fixed block (meeting, lunch)
                dur = min(int(rng.uniform(4, 12) * 60), b - t)
                self.add(_Local(t, t + dur, "BreakIdle", "break"))
            else:
                lo, hi = self.a.block_minutes
                dur = min(int(rng.uniform(lo, hi) * 60), b - t)
                if b - t - dur < _MIN_BLOCK:
                    dur = b - t
                self.add(_Local(t, t + dur, self._label(), "task"))
            t += dur
            gap = int(rng.uniform(15, 150))
            if b - t > gap:
                self.add(_Local(t, t + gap, None, "gap"))
                t += gap
        if t < b:
            self.add(_Local(t, b, None, "gap"))


def _fixed_blocks(
    profile: UserProfile, day: date, rng: np.random.Generator, start: int, end: int
) -> list[_Local]:
    """Meetings and lunch of a workday, clipped to the day and without overlaps."""
    a = profile.archetype
    fixed: list[_Local] = []
    for m in a.meetings:
        if m.weekday is not None and m.weekday != day.weekday():
            continue
        s = int(m.hour * 3600 + rng.uniform(0, 150))
        e = int(m.hour * 3600 + m.minutes * 60 + rng.uniform(-60, 240))
        fixed.append(_Local(s, e, "Meet", "meeting", m.name))
    if rng.random() < a.adhoc_meeting_prob:
        slots = np.arange(start + 3600, end - 3600, 1800) // 1800 * 1800
        if len(slots):
            s = int(rng.choice(slots))
            fixed.append(_Local(s, s + 1800, "Meet", "meeting", V.pick(rng, V.MEETINGS)))
    lunch = int(a.lunch_hour * 3600 + rng.normal(0, 900))
    fixed.append(_Local(lunch, lunch + int(rng.uniform(30, 60) * 60), "BreakIdle", "lunch"))
    kept: list[_Local] = []
    for block in sorted(fixed, key=lambda f: (f.start, f.end)):
        inside = block.start >= start + _MIN_BLOCK and block.end <= end - _MIN_BLOCK
        if inside and (not kept or block.start >= kept[-1].end):
            kept.append(block)
    return kept


def _plan_local(profile: UserProfile, day: date, rng: np.random.Generator) -> list[_Local]:
    a = profile.archetype
    if day.weekday() >= 5:
        if rng.random() >= a.weekend_work_prob:
            return []
        start = int(rng.uniform(10, 16) * 3600)
        end = start + int(rng.uniform(1, 3) * 3600)
        fixed: list[_Local] = []
    else:
        start = int((a.start_hour + rng.normal(0, a.start_sd_hours)) * 3600)
        end = start + int((a.day_hours + rng.normal(0, 0.5)) * 3600)
        end = min(end, 23 * 3600 + 1800)
        fixed = _fixed_blocks(profile, day, rng, start, end)
    filler = _Filler(profile, rng, start)
    cur = start
    for block in fixed:
        filler.fill(cur, block.start)
        filler.add(block)
        cur = block.end
    filler.fill(cur, end)
    return filler.out


def plan_day(profile: UserProfile, day: date, rng: np.random.Generator) -> list[Block]:
    """Contiguous blocks covering the user's computer time on local ``day`` (may be empty)."""
    zone = ZoneInfo(profile.archetype.timezone)
    midnight = datetime.combine(day, time(0), tzinfo=zone)

    def utc(seconds: int) -> int:
        return int((midnight + timedelta(seconds=seconds)).timestamp())

    return [
        Block(utc(b.start), utc(b.end), b.label, b.kind, b.meeting)
        for b in _plan_local(profile, day, rng)
        if b.end > b.start
    ]


def label_spans(profile: UserProfile, blocks: list[Block]) -> list[tuple[int, int, str]]:
    """The ``(start, end, label)`` spans (UTC epoch seconds) the user writes down for a day.

    Exact block boundaries by default. A coarse labeler (``label_grid_minutes`` > 0) writes
    task blocks from memory on a grid: each task block's bounds are rounded to the nearest grid
    point and clipped to the time between the surrounding meetings and breaks (whose exact
    times come from the calendar) and to the day; a task block shorter than half the grid may
    vanish into its neighbours. The grid is laid in UTC, which is the local grid in every zone
    whose offset is a multiple of it (all zones for 15 minutes). Rounding and clipping are
    monotone, so spans stay in order and never overlap.
    """
    grid = profile.archetype.label_grid_minutes * 60
    if grid <= 0 or not blocks:
        return [(b.start, b.end, b.label) for b in blocks if b.label is not None]
    out: list[tuple[int, int, str]] = []
    lo, hi = blocks[0].start, blocks[-1].end
    anchors = [b for b in blocks if b.kind not in ("task", "gap")]  # meetings, breaks, lunch
    for b in blocks:
        if b.label is None:
            continue
        if b.kind != "task":
            out.append((b.start, b.end, b.label))
            continue
        left = max((a.end for a in anchors if a.end <= b.start), default=lo)
        right = min((a.start for a in anchors if a.start >= b.end), default=hi)
        start = min(max(_round(b.start, grid), left), right)
        end = min(max(_round(b.end, grid), left), right)
        if end > start:
            out.append((start, end, b.label))
    return out


def _round(t: int, grid: int) -> int:
    """``t`` rounded to the nearest multiple of ``grid`` (halves up)."""
    return (t + grid // 2) // grid * grid
