"""Turn a day plan into watcher output: window dwells, hidden input, AFK, tabs.

The simulation follows how the real watchers behave:

- aw-watcher-window: one event per foreground window (heartbeats merge while it stays),
  contiguous with sub-second gaps; rare zero-duration transients and overlaps.
- aw-watcher-input: a count event per poll interval with input, runs of empty polls merged
  into one all-zero event (it heartbeats zeros with a pulsetime).
- aw-watcher-afk: derived from the *same* hidden input: afk from the last input whenever no
  input follows for 180 s, so breaks are afk while long silent stretches in meetings or while
  reading may be too. Users without the input watcher still get AFK from the hidden input.
  Some afk events are duplicated with the same start and another duration (a real quirk).
- aw-watcher-web: one event per focused browser tab, starting a little after the window event.

Inside a labeled work block a coarse labeler drifts to other tasks for minutes at a time
(:func:`drift_segments`); the block keeps its one label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from taskclf.synthetic._activities import (
    INTERRUPTS,
    MODE_INDEX,
    MODES,
    Activity,
    BlockContext,
    Window,
    active_break_window,
    break_window,
    generic_window,
    make_context,
)
from taskclf.synthetic._profiles import WORK_LABELS, Archetype, UserProfile
from taskclf.synthetic._schedule import Block

AFK_TIMEOUT_MS: Final = 180_000
ZERO_DURATION_RATE: Final = 0.04
OVERLAP_RATE: Final = 0.004
AFK_DUPLICATE_RATE: Final = 0.08
_MODE_TABLE: Final = np.array([MODES[name] for name in MODES], dtype=float)

Event = tuple[int, int, dict[str, Any]]  # (timestamp ms, duration ms, data)


#: Spread (sigma of the log) of the length of an off-task stretch of a coarse labeler.
DRIFT_SIGMA: Final = 0.5


def activity_weights(acts: list[Activity], focus: float = 1.0) -> NDArray[np.float64]:
    """Probabilities of ``acts``: their weights raised to ``focus``, normalized.

    ``focus`` > 1 concentrates a user on each task's main windows (a textbook worker).
    """
    w = np.array([act.weight for act in acts], dtype=float) ** focus
    out: NDArray[np.float64] = w / w.sum()
    return out


def drift_segments(
    a: Archetype, start: int, end: int, label: str, rng: np.random.Generator
) -> list[tuple[int, int, str]]:
    """Split the work block ``[start, end)`` (ms) of ``label`` into on- and off-task stretches.

    A coarse labeler (``drift_share`` > 0) spends part of a block, minutes at a time, on other
    tasks (reading docs in a Build block, chat in a Write block) and still labels the whole
    block ``label``. Off-task stretches are log-normal around ``drift_minutes`` (task drawn from
    the user's task mix without ``label``); on-task stretches are exponential with the mean that
    makes off-task time ``drift_share`` of the time in the long run. Returns contiguous
    ``(start, end, activity key)`` covering the block; no randomness is drawn without drift.
    """
    share = a.drift_share
    if share <= 0:
        return [(start, end, label)]
    weights = np.asarray(a.task_mix, dtype=float)
    weights[WORK_LABELS.index(label)] = 0.0
    weights /= weights.sum()
    off_median = a.drift_minutes * 60_000
    off_mean = off_median * math.exp(DRIFT_SIGMA**2 / 2)
    on_mean = off_mean * (1 - share) / share
    out: list[tuple[int, int, str]] = []
    t, on_task = start, True
    while t < end:
        if on_task:
            dur, key = int(rng.exponential(on_mean)), label
        else:
            dur = int(off_median * rng.lognormal(0.0, DRIFT_SIGMA))
            key = WORK_LABELS[int(rng.choice(len(WORK_LABELS), p=weights))]
        if dur > 0:
            out.append((t, min(t + dur, end), key))
            t += dur
        on_task = not on_task
    return out


@dataclass
class Streams:
    """Raw watcher events of one user (unsorted), as ``(start_ms, duration_ms, data)``."""

    window: list[Event] = field(default_factory=list)
    afk: list[Event] = field(default_factory=list)
    input: list[Event] = field(default_factory=list)
    web: list[Event] = field(default_factory=list)


@dataclass
class _Dwells:
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)

    def add(self, start: int, end: int, window: Window) -> None:
        if end <= start:
            return
        if self.windows and self.windows[-1] == window and self.ends[-1] == start:
            self.ends[-1] = end  # the watcher's heartbeat would merge them
            return
        self.starts.append(start)
        self.ends.append(end)
        self.windows.append(window)


class DaySimulator:
    """Simulates one user's days, keeping state (tabs, last window) across blocks."""

    def __init__(
        self, profile: UserProfile, tables: dict[str, list[Activity]], rng: np.random.Generator
    ) -> None:
        self.profile = profile
        self.a = profile.archetype
        self.tables = tables
        self.weights = {
            key: activity_weights(acts, self.a.focus if key in WORK_LABELS else 1.0)
            for key, acts in tables.items()
        }
        self.rng = rng
        self.tabs = 6
        self.streams = Streams()

    # dwells ---------------------------------------------------------------------------
    def _pick(self, key: str) -> Activity:
        idx = int(self.rng.choice(len(self.tables[key]), p=self.weights[key]))
        return self.tables[key][idx]

    def _noise_activity(self) -> Activity:
        if self.rng.random() < 0.7:
            return self._pick(INTERRUPTS)
        return self._pick(WORK_LABELS[int(self.rng.integers(len(WORK_LABELS)))])

    def _fill(
        self, dw: _Dwells, start: int, end: int, key: str, ctx: BlockContext, noise: float
    ) -> None:
        rng = self.rng
        t = start
        first = key == "Meet"
        while t < end:
            is_noise = not first and rng.random() < noise
            act = self._noise_activity() if is_noise else self._pick(key)
            if first:
                act, first = self.tables[key][0], False
            cap = self.a.noise_dwell_seconds
            median = min(act.median_seconds, cap) if is_noise else act.median_seconds
            dur = int(median * self.a.dwell_scale * rng.lognormal(0.0, 0.8) * 1000)
            dur = max(dur, 2000)
            window = act.build(rng, ctx)
            if rng.random() < self.a.generic_title_rate:
                window = generic_window(self.profile, rng, window)
            dw.add(t, min(t + dur, end), window)
            t += dur

    def _break(self, dw: _Dwells, start: int, end: int, allow_active: bool) -> None:
        rng = self.rng
        last = dw.windows[-1] if dw.windows else None
        pre = int(rng.uniform(3, 20) * 1000)
        if last is not None:
            dw.add(start, start + pre, last._replace(mode="browse"))
            start += pre
        if allow_active and rng.random() < self.a.active_break_rate:
            dw.add(start, end, active_break_window(self.profile, rng))
        else:
            dw.add(start, end, break_window(self.profile, rng, last))

    def _dwells(self, blocks: list[Block]) -> _Dwells:
        dw = _Dwells()
        for b in blocks:
            s, e = b.start * 1000, b.end * 1000
            ctx = make_context(self.profile, self.rng, b.meeting)
            if b.kind in ("break", "lunch"):
                self._break(dw, s, e, allow_active=b.kind == "break")
            elif b.kind == "gap" or b.label is None:
                self._fill(dw, s, e, INTERRUPTS, ctx, 0.0)
            elif b.label == "Meet":
                self._fill(dw, s, e, "Meet", ctx, self.a.noise_rate / 3)
            else:
                for s1, e1, key in self._drift(s, e, b.label):
                    self._fill(dw, s1, e1, key, ctx, self.a.noise_rate)
        return dw

    def _drift(self, start: int, end: int, label: str) -> list[tuple[int, int, str]]:
        return drift_segments(self.a, start, end, label, self.rng)

    # input and afk --------------------------------------------------------------------
    def _active_ticks(self, dw: _Dwells, t0: int, poll: int, n: int) -> NDArray[np.bool_]:
        rng = self.rng
        active = np.zeros(n, dtype=bool)
        for s, e, w in zip(dw.starts, dw.ends, dw.windows, strict=True):
            i0 = max(0, -(-(s - t0) // poll))
            i1 = min(n, -(-(e - t0) // poll))
            if i0 >= i1:
                continue
            act_mean, pause_mean = MODES[w.mode][0], MODES[w.mode][1]
            active[i0] = True  # switching to a window takes input
            i, state = i0 + 1, False
            while i < i1:
                mean = act_mean if state else pause_mean
                if mean > 0:
                    length = max(1, round(rng.exponential(mean * 1000 / poll)))
                    active[i : min(i + length, i1)] = state
                    i += length
                state = not state
        return active

    def _counts(
        self, modes: NDArray[np.intp], active: NDArray[np.bool_], poll: int
    ) -> NDArray[np.int64]:
        """Counts per tick: presses, clicks, deltaX, deltaY, scrollX, scrollY."""
        rng = self.rng
        n = len(modes)
        rates = _MODE_TABLE[modes][:, 2:6] * (poll / 1000)
        rates *= np.array([self.a.typing_scale, self.a.mouse_scale, self.a.mouse_scale, 1.0])
        rates *= rng.gamma(2.0, 0.5, size=(n, 1)) * active[:, None]
        presses, clicks, mouse, scroll = (rng.poisson(rates[:, k]) for k in range(4))
        share = rng.uniform(0.3, 0.7, size=n)
        dx = np.rint(mouse * share).astype(np.int64)
        scroll_x = rng.poisson(rates[:, 3] * 0.05)
        counts = np.stack([presses, clicks, dx, mouse - dx, scroll_x, scroll], axis=1)
        # An active tick always has some input (a switch is at least a click or a key).
        silent = active & ~np.any(counts, axis=1)
        counts[silent, 1] = 1
        return counts.astype(np.int64)

    def _input_events(self, counts: NDArray[np.int64], t0: int, poll: int) -> None:
        n = len(counts)
        nonzero: NDArray[np.bool_] = np.asarray(counts.any(axis=1), dtype=bool)
        prev = np.concatenate([[True], nonzero[:-1]])
        starts = np.flatnonzero(nonzero | prev)
        jitter = self.rng.integers(0, 40, size=len(starts) + 1)
        ts = t0 + starts * poll + jitter[:-1]
        te = np.append(ts[1:], t0 + n * poll + jitter[-1])
        keys = ("presses", "clicks", "deltaX", "deltaY", "scrollX", "scrollY")
        rows = counts[starts].tolist()
        for k in range(len(starts)):
            data = dict(zip(keys, rows[k], strict=True))
            self.streams.input.append((int(ts[k]), int(te[k] - ts[k]), data))

    def _afk_events(self, active: NDArray[np.bool_], t0: int, poll: int, t_end: int) -> None:
        rng = self.rng
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            return
        first_input = t0 + int(idx[0]) * poll
        # Input arrives in the first half of a tick and leaves in the second, so a tick's
        # return time never comes after its departure time.
        half = poll // 2
        last_in = t0 + (idx + 1) * poll - rng.integers(0, half, size=len(idx))
        next_in = np.append(t0 + idx[1:] * poll + rng.integers(0, half, size=len(idx) - 1), t_end)
        away = np.flatnonzero(next_in - last_in >= AFK_TIMEOUT_MS)
        cursor = first_input
        for k in away:
            a0, a1 = int(last_in[k]), int(next_in[k])
            self.streams.afk.append((cursor, a0 - cursor, {"status": "not-afk"}))
            self.streams.afk.append((a0, a1 - a0, {"status": "afk"}))
            if rng.random() < AFK_DUPLICATE_RATE:
                extra = int(rng.uniform(60, 3600) * 1000)
                self.streams.afk.append((a0, a1 - a0 + extra, {"status": "afk"}))
            cursor = a1
        if t_end > cursor:
            self.streams.afk.append((cursor, t_end - cursor, {"status": "not-afk"}))

    # window and web -------------------------------------------------------------------
    def _window_events(self, dw: _Dwells) -> None:
        rng = self.rng
        names = self.profile.archetype
        transient = {"windows": ("explorer.exe", "Task Switching"), "macos": ("Dock", "")}.get(
            names.os, ("gnome-shell", "")
        )
        for s, e, w in zip(dw.starts, dw.ends, dw.windows, strict=True):
            if rng.random() < ZERO_DURATION_RATE:
                self.streams.window.append((s, 0, {"app": transient[0], "title": transient[1]}))
            dur = max(0, e - s - int(rng.integers(0, 900)))
            if rng.random() < OVERLAP_RATE:
                dur = e - s + int(rng.integers(1000, 4000))
            self.streams.window.append((s, dur, {"app": w.app, "title": w.title}))
            if w.url is not None:
                self._web_event(s, e, w)

    def _web_event(self, s: int, e: int, w: Window) -> None:
        rng = self.rng
        offset = int(rng.integers(50, 700))
        dur = 0 if rng.random() < ZERO_DURATION_RATE else max(0, e - s - offset)
        if rng.random() < 0.1:
            self.tabs = int(np.clip(self.tabs + rng.integers(-2, 3), 2, 30))
        data = {
            "url": w.url,
            "title": w.page_title,
            "audible": w.audible,
            "incognito": False,
            "tabCount": self.tabs,
        }
        self.streams.web.append((s + offset, dur, data))

    # one day --------------------------------------------------------------------------
    def simulate(self, blocks: list[Block]) -> None:
        """Append the watcher events of one day's ``blocks`` to :attr:`streams`."""
        if not blocks:
            return
        dw = self._dwells(blocks)
        poll = self.a.poll_seconds * 1000
        t_start, t_end = blocks[0].start * 1000, blocks[-1].end * 1000
        t0 = -(-t_start // poll) * poll  # the input watcher polls on a fixed cadence
        n = max(0, (t_end - t0) // poll)
        if n == 0:
            return
        tick_times = t0 + np.arange(n, dtype=np.int64) * poll
        dwell_idx = np.searchsorted(np.asarray(dw.starts), tick_times, side="right") - 1
        mode_of_dwell = np.array([MODE_INDEX[w.mode] for w in dw.windows], dtype=np.intp)
        modes = mode_of_dwell[np.clip(dwell_idx, 0, None)]
        active = self._active_ticks(dw, t0, poll, n)
        counts = self._counts(modes, active, poll)
        if self.a.has_input_watcher:
            self._input_events(counts, t0, poll)
        self._afk_events(active, t0, poll, t_end)
        self._window_events(dw)
