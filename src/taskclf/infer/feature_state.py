"""Online feature building: one closed minute at a time, identical to batch rows.

:class:`FeatureState` keeps a small buffer of recent normalized events (typed arrays,
``features._buffer``) and the fold state of ``features._fold`` (open session, title repeats,
current app run, the last 15 minutes of rows). Closing several minutes at once runs exactly
the batch code — ``aggregate_minutes`` restricted to the new buckets, then ``fold`` with the
carried state; closing one minute (the online loop's step) runs the compiled kernel of
``features._one`` on the buffer, the same definitions on the events touching that minute.
Either way, given the same events, the rows equal ``features.build.build_features`` row for
row (tested with random event mixes, and with mixed step sizes that hand the fold state from
one path to the other). One minute comes out as a schema record
(:meth:`FeatureState.close_until_records`) or straight as the model's input row
(:meth:`FeatureState.close_until_vectors`, what the online loop uses).

Contract for exact parity: when a minute is closed, every event overlapping it must already
have been added (an event still in progress may be added with its current end; window, AFK
and web coverage of the past does not change when it grows). Events that arrive after their
minute was closed only affect later minutes. Input events are split over minutes by their
full duration, so add them once complete.

The buffer keeps only events that can still matter: those ending within one idle gap before
the next open minute (pruned when new events are added, once every few closed minutes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.adapters.activitywatch.events import frame_from_rows
from taskclf.adapters.activitywatch.export import ParsedBucket
from taskclf.core.defaults import DEFAULT_BUCKET_SECONDS, DEFAULT_IDLE_GAP_SECONDS
from taskclf.core.errors import InputError
from taskclf.core.time import ensure_utc, get_zone
from taskclf.core.types import validate_user_id
from taskclf.features import _kernel
from taskclf.features._buffer import INT_COLUMNS, EventBuffer
from taskclf.features._event_lists import (
    Lists,
    Titles,
    arrays_to_lists,
    record_rows,
    small_rows,
)
from taskclf.features._fold import (
    FoldParams,
    FoldState,
    RowContext,
    assemble,
    assemble_records,
    fold,
)
from taskclf.features._minutes import TITLE_STAT_COLUMNS, EventArrays, aggregate_minutes
from taskclf.features._one import KernelFold, OneMinute, TitleMemo, VectorPlan
from taskclf.features.build import _check_params
from taskclf.features.text import TitleFeatures
from taskclf.infer._intake import PollIntake

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TITLES = 4096
_TITLE_COLUMN = INT_COLUMNS["window"].index("title")
_MAX_STRINGS = 8192  # interned strings kept before the table is compacted to the live ones
# buckets closed between prunes of the buffer: a prune cost about a fifth of a poll's intake,
# and rows kept longer only make the closing scans (bisections) a step longer
_PRUNE_EVERY = 8
F64 = NDArray[np.float64]


def _to_us(value: datetime, field: str) -> int:
    if type(value) is not datetime or value.tzinfo is not UTC:  # else: already aware UTC
        value = ensure_utc(value, field=field)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class FeatureState:
    """Incremental feature builder of one user (see the module docstring).

    Args:
        user_id, device_id, timezone, schema_version, bucket_seconds, idle_gap_seconds: as
            for :func:`taskclf.features.build.build_features`.
        start: the first bucket to emit (default: the bucket of the first added event).
    """

    def __init__(
        self,
        *,
        user_id: str,
        device_id: str | None,
        timezone: str,
        schema_version: str = "v3",
        bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
        idle_gap_seconds: int = DEFAULT_IDLE_GAP_SECONDS,
        start: datetime | None = None,
    ) -> None:
        validate_user_id(user_id)
        get_zone(timezone)
        _check_params(schema_version, bucket_seconds, idle_gap_seconds)
        self.user_id = user_id
        self.device_id = device_id
        self.timezone = timezone
        self.schema_version = schema_version
        self.params = FoldParams(bucket_seconds, idle_gap_seconds)
        self._buffer = EventBuffer()
        self._arrays: EventArrays | None = None  # the buffer as arrays (built when needed)
        self._fold: FoldState | None = FoldState()
        self._kfold: KernelFold | None = None  # the fold state while closing one at a time
        self._title_cache: dict[str, Any] = {}
        self._memo = TitleMemo()
        self._ctx = RowContext(user_id, device_id, timezone, schema_version, self.params)
        self._minute = OneMinute(self._buffer, self._ctx)
        self._compact_at = _MAX_STRINGS
        self._intake: PollIntake | None = None
        self._next: int | None = (
            None if start is None else _to_us(start, "start") // self.params.bucket_us
        )
        # ``_next`` at the last prune (before the first: far enough back to prune at once)
        self._pruned_at = -_PRUNE_EVERY

    @property
    def next_bucket_start(self) -> datetime | None:
        """Start of the first bucket not yet closed (None before any event)."""
        if self._next is None:
            return None
        return datetime.fromtimestamp(self._next * self.params.bucket_seconds, tz=UTC)

    @property
    def buffered_events(self) -> int:
        """Events currently kept in the buffer."""
        return sum(self._buffer.n(k) for k in ("window", "afk", "input", "web"))

    def add_events(self, events: pd.DataFrame) -> None:
        """Add normalized events (duplicates by ``event_id`` keep the latest end)."""
        if events.empty:
            return
        small = small_rows(events, TITLE_STAT_COLUMNS)
        if small is None:
            arrays = EventArrays.from_frame(events)
            small = arrays_to_lists(arrays.kinds), arrays.titles
        self._add(*small)

    def add_records(self, records: Sequence[dict[str, Any]]) -> None:
        """:meth:`add_events` of normalized event records (``events.normalize_records``).

        The online loop's step: a poll's few events go into the buffer without a frame
        (tested equal to adding ``events.frame_from_rows(records)``); many records, or any
        the plain-Python conversion does not take, go through that frame.
        """
        if not records:
            return
        small = record_rows(records, TITLE_STAT_COLUMNS)
        if small is None:
            self.add_events(frame_from_rows(records))
            return
        self._add(*small)

    def add_buckets(
        self,
        buckets: Iterable[ParsedBucket],
        *,
        secret: bytes,
        titles: dict[str, TitleFeatures] | None = None,
    ) -> None:
        """:meth:`add_records` of ``events.normalize_records(buckets, ...)``, without records.

        The online loop's step: a poll's events are normalized straight into the buffer's
        encoded rows (``infer._intake``, tested equal).

        Args:
            buckets: A poll's validated events.
            secret: The per-install title secret.
            titles: A cache of title features by raw title (memory only), kept across polls.
        """
        buckets = [b for b in buckets if b.events]
        if not buckets:
            return
        if self._intake is None or self._intake.secret != secret:
            self._intake = PollIntake(self._buffer, secret, self._memo.features)
        self._maybe_prune()
        first = self._intake.add(buckets, titles)
        if first is not None:
            self._arrays = None
            if self._next is None:
                self._next = first // self.params.bucket_us

    def _add(self, kinds: Lists, titles: Titles) -> None:
        self._maybe_prune()
        self._buffer.add(kinds, titles)
        self._arrays = None
        if self._next is None:
            firsts = [c["start"][0] for c in kinds.values() if c["start"]]
            self._next = min(firsts) // self.params.bucket_us

    def close_until(self, until: datetime) -> pd.DataFrame:
        """Emit the rows of every bucket that ends at or before ``until`` and is not closed.

        Returns:
            The new rows (possibly none), schema columns, sorted by ``bucket_start_ts``.
        """
        return assemble(self._close(until), self._ctx, self._buffer.titles, self._title_cache)

    def close_until_records(self, until: datetime) -> list[dict[str, Any]]:
        """Like :meth:`close_until`, as plain dicts (cheaper; for ``MatrixEncoder.encode_row``).

        The values equal the frame's cells, except a missing ``device_id`` is None. Closing
        exactly one bucket (the online loop's usual step) takes the compiled path of
        ``features._one``; several buckets at once go through the batch code.
        """
        b = self._one_bucket(until)
        if b is not None:
            status = self._close_one()
            if status == _kernel.ROW:
                return [self._minute.record(b, self._buffer.titles, self._memo)]
            if status == _kernel.NO_ROW:
                return []
        return assemble_records(
            self._close(until), self._ctx, self._buffer.titles, self._title_cache
        )

    def close_until_vectors(self, until: datetime, plan: VectorPlan) -> list[tuple[int, F64]]:
        """The rows of :meth:`close_until_records` as model input rows, with their start (µs).

        Each row is ``plan.encoder.encode_row(record)[0]`` of the record (tested equal).
        Closing one bucket writes the compiled path's values straight into ``plan.row``
        (valid until the next call) without building the record; other closes encode the
        records into new arrays.
        """
        b = self._one_bucket(until)
        if b is not None:
            status = self._close_one()
            if status == _kernel.ROW:
                self._minute.vector(b, plan, plan.row, self._buffer.titles, self._memo)
                return [(b * self.params.bucket_us, plan.row)]
            if status == _kernel.NO_ROW:
                return []
        records = assemble_records(
            self._close(until), self._ctx, self._buffer.titles, self._title_cache
        )
        return [
            (_to_us(r["bucket_start_ts"], "bucket_start_ts"), plan.encoder.encode_row(r)[0])
            for r in records
        ]

    def _one_bucket(self, until: datetime) -> int | None:
        """The next open bucket if ``until`` closes exactly that one, else None."""
        end_bucket = _to_us(until, "until") // self.params.bucket_us
        if self._next is not None and end_bucket == self._next + 1:
            return self._next
        return None

    def _close_one(self) -> int:
        assert self._next is not None
        if self._kfold is None:
            self._kfold = KernelFold.from_state(
                self._fold_state(), self._buffer.strings, self._minute.k15
            )
            self._fold = None
        status = self._minute.close(self._next, self._kfold)
        if status != _kernel.FALLBACK:
            self._next += 1
        return status

    def _fold_state(self) -> FoldState:
        if self._fold is None:
            assert self._kfold is not None
            self._fold = self._kfold.to_state(self._buffer.strings)
            self._kfold = None
        return self._fold

    def _close(self, until: datetime) -> dict[str, Any]:
        end_bucket = _to_us(until, "until") // self.params.bucket_us
        if self._next is None or end_bucket <= self._next:
            return {}
        if self._arrays is None:
            self._arrays = EventArrays(kinds=self._buffer.arrays(), titles=self._buffer.titles)
        mins = aggregate_minutes(
            self._arrays,
            self.params.bucket_us,
            self.params.idle_gap_us,
            lo=self._next,
            hi=end_bucket,
        )
        cols, self._fold = fold(mins, self._fold_state(), self.params)
        self._next = end_bucket
        return cols if mins.size else {}

    def close_minute(self, bucket_start: datetime) -> pd.DataFrame:
        """Close exactly the bucket starting at ``bucket_start`` (the next open one)."""
        b = _to_us(bucket_start, "bucket_start")
        if b % self.params.bucket_us:
            raise InputError(f"bucket_start {bucket_start.isoformat()} is not a bucket boundary")
        if self._next is not None and b // self.params.bucket_us != self._next:
            raise InputError(
                f"close_minute: the next open bucket is {self.next_bucket_start}, got "
                f"{bucket_start.isoformat()}; use close_until to close several"
            )
        if self._next is None:
            self._next = b // self.params.bucket_us
        return self.close_until(datetime.fromtimestamp((b + self.params.bucket_us) / 1e6, tz=UTC))

    def _maybe_prune(self) -> None:
        """:meth:`_prune` once ``_PRUNE_EVERY`` buckets were closed since the last one."""
        if self._next is not None and self._next - self._pruned_at >= _PRUNE_EVERY:
            self._prune()

    def _prune(self) -> None:
        assert self._next is not None
        self._pruned_at = self._next
        horizon = self._next * self.params.bucket_us - max(
            self.params.idle_gap_us, self.params.bucket_us
        )
        self._buffer.prune(horizon)
        self._arrays = None
        if len(self._buffer.titles) > _MAX_TITLES:
            rows = self._buffer.rows["window"]
            codes = rows.ints[rows.lo : rows.n, _TITLE_COLUMN].tolist()
            live = {self._buffer.strings.values[c] for c in codes}
            self._buffer.titles = {k: v for k, v in self._buffer.titles.items() if k in live}
            self._title_cache = {k: v for k, v in self._title_cache.items() if k in live}
            self._memo.keep(live)
        if len(self._buffer.strings) > self._compact_at:
            self._compact_strings()

    def _compact_strings(self) -> None:
        """Renumber the interned strings to the ones still used (buffer and fold state)."""
        parts = [self._buffer.live_codes()]
        if self._kfold is not None:
            parts.append(self._kfold.live_codes())
        parts.append(self._minute.consts[_kernel.C_NO_APP : _kernel.C_UNKNOWN_DOMAIN + 1])
        remap = self._buffer.strings.compact(np.concatenate(parts))
        self._buffer.remap(remap)
        if self._kfold is not None:
            self._kfold.remap(remap)
        self._minute.reserve_constants()
        if self._intake is not None:
            self._intake.forget_codes()
        self._compact_at = max(_MAX_STRINGS, 2 * len(self._buffer.strings))
