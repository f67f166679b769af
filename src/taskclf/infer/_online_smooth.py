"""Online smoothing: :func:`~taskclf.infer.smooth.rolling_majority` as a fold over minutes.

:class:`OnlineSmoother` takes one user's minutes one at a time and returns each minute's
smoothed label once it is final: ``window // 2`` minutes later, or as soon as a time gap
ends its run. Its outputs equal the batch smoother's over the same minutes (tested).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from taskclf.core.defaults import (
    DEFAULT_BUCKET_SECONDS,
    DEFAULT_IDLE_GAP_SECONDS,
    DEFAULT_SMOOTH_WINDOW,
)
from taskclf.core.errors import InputError
from taskclf.core.time import ensure_utc
from taskclf.infer._smooth_checks import check_gap_params, check_window
from taskclf.infer.smooth import SmoothedMinute


def _vote(window_labels: Sequence[str], center: str) -> str:
    """The scalar form of :func:`majority_codes`: strict plurality, else the center label."""
    n = len(window_labels)
    if n <= 3:  # the default window (3) and run edges: the rule spelled out
        if n < 3:
            a = window_labels[0]
            return a if n == 1 or a == window_labels[1] else center
        a, b, c = window_labels
        if a in (b, c):
            return a  # two or three of a kind
        return b if b == c else center
    counts: dict[str, int] = {}  # a plain dict: a few labels, no Counter set-up per minute
    for label in window_labels:
        counts[label] = counts.get(label, 0) + 1
    best = max(counts.values())
    winners = [label for label, count in counts.items() if count == best]
    return winners[0] if len(winners) == 1 else center


@dataclass(slots=True)
class _Entry:
    run_index: int
    position: int
    bucket_start: datetime | None
    label: str


class OnlineSmoother:
    """Incremental :func:`rolling_majority`: a fold over one user's minutes.

    ``push`` one minute at a time (time order); each call returns the minutes whose smoothed
    label is now final. A minute is final once ``window // 2`` later minutes of its run are
    known (the lag), or as soon as a gap ends its run; :meth:`flush` finalizes the rest. The
    concatenated outputs equal ``rolling_majority(all_labels, window, bucket_starts=...)``
    element for element. Memory is O(window).

    Args:
        window: Odd window size >= 1.
        bucket_seconds: Bucket width in seconds (for gap detection).
        idle_gap_seconds: Largest gap that smoothing bridges.
    """

    def __init__(
        self,
        window: int = DEFAULT_SMOOTH_WINDOW,
        *,
        bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
        idle_gap_seconds: float = DEFAULT_IDLE_GAP_SECONDS,
    ) -> None:
        self.window = check_window(window)
        check_gap_params(bucket_seconds, idle_gap_seconds)
        self._half = self.window // 2
        self._max_gap = timedelta(seconds=idle_gap_seconds)
        self._bucket = timedelta(seconds=bucket_seconds)
        # the largest step from one minute's start to the next that is not a gap
        self._no_gap = self._bucket + self._max_gap
        self._recent: deque[_Entry] = deque(maxlen=self.window)
        self._run_len = 0
        self._next_position = 0
        self._last_start: datetime | None = None
        self._with_times: bool | None = None

    @property
    def lag(self) -> int:
        """Minutes between pushing a minute and receiving it finalized (``window // 2``)."""
        return self._half

    @property
    def pending(self) -> int:
        """Minutes pushed but not yet finalized."""
        return min(self._run_len, self._half)

    def push(self, label: str, bucket_start: datetime | None = None) -> list[SmoothedMinute]:
        """Add the next minute; return the minutes finalized by it (oldest first).

        Args:
            label: The minute's (post-reject) label.
            bucket_start: The minute's start (aware). Give it for every minute or for none.

        Returns:
            Zero or more finalized minutes; several when a gap closes the previous run.

        Raises:
            InputError: Non-string label, naive or non-increasing time, or mixed use of times.
        """
        if not isinstance(label, str):
            raise InputError(
                f"minute {self._next_position}: label must be a string, got {type(label).__name__}"
            )
        start = self._check_start(bucket_start)
        out: list[SmoothedMinute] = []
        last = self._last_start
        if start is not None and last is not None and start - last > self._no_gap:
            out.extend(self._finish_run())
        self._recent.append(_Entry(self._run_len, self._next_position, start, label))
        self._run_len += 1
        self._next_position += 1
        self._last_start = start
        ready = self._run_len - 1 - self._half
        if ready >= 0:
            out.append(self._finalize(ready))
        return out

    def flush(self) -> list[SmoothedMinute]:
        """Finalize every pending minute (end of stream); the smoother stays usable."""
        out = self._finish_run()
        self._last_start = None
        return out

    def _check_start(self, bucket_start: datetime | None) -> datetime | None:
        last = self._last_start
        if (
            type(bucket_start) is datetime
            and bucket_start.tzinfo is UTC
            and self._with_times
            and last is not None
            and bucket_start > last
        ):
            return bucket_start  # the usual minute: aware UTC, after the previous one
        with_times = bucket_start is not None
        if self._with_times is not None and with_times != self._with_times:
            raise InputError(
                f"minute {self._next_position}: give bucket_start for every pushed minute or "
                "for none"
            )
        self._with_times = with_times
        if bucket_start is None:
            return None
        start = ensure_utc(bucket_start, field=f"minute {self._next_position} bucket_start")
        if self._last_start is not None and start <= self._last_start:
            raise InputError(
                f"minute {self._next_position}: bucket_start {start.isoformat()} does not come "
                f"after the previous minute {self._last_start.isoformat()}; push minutes in "
                "time order, once each"
            )
        return start

    def _finalize(self, run_index: int) -> SmoothedMinute:
        # ``_recent`` holds the run's last minutes, run indices consecutive up to run_len - 1
        recent = self._recent
        i = run_index - (self._run_len - len(recent))
        lo, hi = max(0, i - self._half), min(len(recent), i + self._half + 1)
        window = [recent[j].label for j in range(lo, hi)]
        center = recent[i]
        return SmoothedMinute(center.position, center.bucket_start, _vote(window, center.label))

    def _finish_run(self) -> list[SmoothedMinute]:
        first_pending = max(0, self._run_len - self._half)
        out = [self._finalize(r) for r in range(first_pending, self._run_len)]
        self._recent.clear()
        self._run_len = 0
        return out
