"""Online inference: poll a running ActivityWatch server, predict each closed minute once.

At start the loop reads ``history_hours`` (24) of events, which rebuild the feature state and
the smoothing context without being written, and writes the minutes of the last
``warmup_minutes`` (60). Each poll fetches the recent events of every supported bucket, adds
them to the user's :class:`~taskclf.infer.feature_state.FeatureState`, closes every complete
minute (never a partial one) and runs the closed rows through :class:`OnlinePredictor` — the
same pipeline as batch, so the records equal those of ``infer batch`` over the same events.
Records are appended to the day's JSONL file through an
:class:`~taskclf.infer.prediction.OnlineRecordWriter` (complete lines, fsynced every
``fsync_every_minutes`` minutes of records and when the loop stops); a minute already in that
file is never written again, so restarts are safe and recompute what a power loss cut off.
A changed inference policy is hot-reloaded (an invalid one is ignored and the old one kept); a
server that goes away is retried with bounded backoff and the minutes it missed are caught up
when it is back. On stop, pending minutes are flushed, the files synced and closed, and the
day's segments and report are written.

Fetching: aw-server answers a range query with the events overlapping it, each clipped to the
range. A bucket is read from ``since = min(latest event start seen, first open minute - idle
gap)``, so its newest (growing) event always comes back whole; an older event overlapping
``since`` comes back clipped, and is restored from the start remembered under its server id
(events without an id that start exactly at ``since`` are dropped as clipped copies instead).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from taskclf.adapters.activitywatch.client import AWClient
from taskclf.adapters.activitywatch.export import (
    SUPPORTED_TYPES,
    AWEvent,
    ParsedBucket,
    parse_server_events,
)
from taskclf.core.config import Config, load_or_create_title_secret
from taskclf.core.defaults import (
    DEFAULT_IDLE_GAP_SECONDS,
    DEFAULT_ONLINE_FSYNC_MINUTES,
    DEFAULT_ONLINE_HISTORY_HOURS,
    DEFAULT_POLL_SECONDS,
)
from taskclf.core.errors import ArtifactError, SourceError, SourceNotFoundError, TaskclfError
from taskclf.core.paths import Layout
from taskclf.core.time import floor_minute, local_date, utc_now
from taskclf.features.text import TitleFeatures
from taskclf.infer._online_predictor import OnlinePredictor
from taskclf.infer.feature_state import FeatureState
from taskclf.infer.pipeline import (
    OnlineRecord,
    PipelineConfig,
    records_frame,
    segments_of,
)
from taskclf.infer.prediction import OnlineRecordWriter, read_online_records
from taskclf.infer.resolve import InferenceSettings, load_pipeline_config
from taskclf.infer.taxonomy import TaxonomyConfig, load_taxonomy
from taskclf.report.daily import build_daily_reports
from taskclf.report.daily_files import write_daily_report
from taskclf.report.export import write_segments

__all__ = ["OnlineLoop", "OnlinePredictor", "PollStats", "run_online_loop", "warm_up"]

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0
_MAX_TITLE_CACHE = 1024  # distinct titles kept between polls (then the cache starts over)


@dataclass
class PollStats:
    """Counters of one online session."""

    polls: int = 0
    minutes_written: int = 0
    server_errors: int = 0
    poll_errors: int = 0
    policy_reloads: int = 0
    policy_rejections: int = 0
    events_skipped: int = 0  # server events taskclf cannot read (logged, never retried)
    last_error: str | None = None
    days: set[date] = field(default_factory=set)


class OnlineLoop:
    """The online loop of one user against one server (see the module docstring).

    Args:
        layout: The taskclf home.
        config: User configuration (user id, time zone, aw host).
        resolve: Returns the current :class:`InferenceSettings` (called at start and whenever
            the policy file changes); flags given on the command line stay fixed inside it.
        client: An :class:`AWClient` (a real server; tests use a real aw-server too).
        user_id: The user the events belong to (default: the configured user).
        device_id: ``device_id`` of the feature rows (default: each bucket's hostname).
        clock: Current time (aware UTC); injectable for tests.
        settle_seconds: A minute is closed only this long after it ended, so late heartbeats
            of a watcher are in before the minute is predicted.
        warmup_minutes: At start, the minutes of this last stretch are predicted and written
            (those not in the day's file yet).
        history_hours: At start, events this far back are read too: their minutes rebuild the
            feature state (open session, app run, title repeats, look-back windows) and the
            smoothing context, so the first written minutes equal batch rows built with the
            previous day as context; they are scored but not written.
        fsync_every_minutes: The day's file is fsynced once this many minutes of records were
            written since the last fsync, and when the loop stops (see
            :class:`~taskclf.infer.prediction.OnlineRecordWriter`).
    """

    def __init__(
        self,
        layout: Layout,
        config: Config,
        *,
        resolve: Callable[[], InferenceSettings],
        client: AWClient,
        user_id: str | None = None,
        device_id: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        settle_seconds: float = 5.0,
        warmup_minutes: int = 60,
        history_hours: float = DEFAULT_ONLINE_HISTORY_HOURS,
        fsync_every_minutes: int = DEFAULT_ONLINE_FSYNC_MINUTES,
    ) -> None:
        self.layout = layout
        self.config = config
        self.user_id = config.user_id if user_id is None else user_id
        self.device_id = device_id
        self.timezone = config.timezone_for(self.user_id)
        self.client = client
        self.clock = clock
        self.settle = timedelta(seconds=settle_seconds)
        self._resolve = resolve
        self.stats = PollStats()
        self._secret = load_or_create_title_secret(layout)
        self.settings = resolve()
        self.pipeline: PipelineConfig = load_pipeline_config(self.settings, num_threads=1)
        self._taxonomy = _load_taxonomy(self.settings)
        self._policy_stamp = self._stamp()
        self.predictor = OnlinePredictor(self.pipeline)
        now = floor_minute(clock())
        self._write_from = now - timedelta(minutes=warmup_minutes)
        start = min(self._write_from, now - timedelta(hours=history_hours))
        self.state = FeatureState(
            user_id=self.user_id,
            device_id=device_id,
            timezone=self.timezone,
            schema_version=self.pipeline.schema_version,
            start=start,
        )
        self._fetch_from: dict[str, datetime] = {}
        self._seen: dict[str, dict[Any, tuple[int, int]]] = {}
        # title features by raw title, in memory only: a window event still growing is
        # normalized again at every poll
        self._titles: dict[str, TitleFeatures] = {}
        self._origin = start
        self._written_until: dict[date, datetime | None] = {}
        self.fsync_every_minutes = fsync_every_minutes
        self._writers: dict[date, OnlineRecordWriter] = {}
        took = warm_up(self.pipeline, self.timezone, self.predictor)
        if took > 1.0:
            log.info("compiled the online path in %.0f s (once per machine)", took)

    # policy ----------------------------------------------------------------------------
    def _stamp(self) -> tuple[int, int, int] | None:
        # The inode catches an atomic replace that keeps size and mtime (same-tick rewrites).
        try:
            st = self.layout.inference_policy.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def maybe_reload_policy(self) -> bool:
        """Reload settings if the policy file changed; keep the old ones if invalid."""
        stamp = self._stamp()
        if stamp == self._policy_stamp:
            return False
        self._policy_stamp = stamp
        try:
            settings = self._resolve()
            pipeline = load_pipeline_config(settings, num_threads=1)
            if pipeline.schema_version != self.state.schema_version:
                raise ArtifactError(
                    f"model {pipeline.model_id!r} uses feature schema {pipeline.schema_version}, "
                    f"the running loop builds {self.state.schema_version} rows; restart "
                    "'taskclf infer online' to switch schemas"
                )
            taxonomy = _load_taxonomy(settings)
        except TaskclfError as exc:
            self.stats.policy_rejections += 1
            log.warning("inference policy changed but is invalid; keeping the old one: %s", exc)
            return False
        self.settings, self.pipeline, self._taxonomy = settings, pipeline, taxonomy
        self.predictor.swap_config(pipeline)
        self.stats.policy_reloads += 1
        log.info("inference policy reloaded: model %s", pipeline.model_id)
        return True

    # events ----------------------------------------------------------------------------
    def _fetch(self, now: datetime) -> None:
        horizon = self.state.next_bucket_start or self._origin
        horizon = horizon - timedelta(seconds=DEFAULT_IDLE_GAP_SECONDS)
        buckets: list[ParsedBucket] = []
        for bid, meta in sorted(self.client.list_buckets().items()):
            btype = meta.get("type")
            if btype not in SUPPORTED_TYPES:
                continue
            known = self._fetch_from.get(bid)
            since = horizon if known is None else min(known, horizon)
            try:
                raw = self.client.get_events(bid, since, now)
            except SourceNotFoundError:  # listed but unreadable (an id with '/', or deleted)
                log.warning("bucket %r is listed but its events are not found; skipped", bid)
                continue
            got = parse_server_events(bid, str(btype), raw, where=f"server {self.client.base_url}")
            if got.problems:
                self.stats.events_skipped += len(got.problems)
                log.warning(
                    "skipped %d event(s) taskclf cannot read; the first: %s",
                    len(got.problems),
                    got.problems[0],
                )
            ids = [raw[i].get("id") for i in got.kept]
            events = self._unclip(bid, got.events, ids, since, known)
            if events:
                latest = _from_us(max(e.start_us for e in events))
                self._fetch_from[bid] = max(latest, known) if known is not None else latest
            host = meta.get("hostname")
            buckets.append(
                ParsedBucket(
                    bid, str(btype), host if isinstance(host, str) else None, tuple(events)
                )
            )
        if buckets:
            if len(self._titles) > _MAX_TITLE_CACHE:
                self._titles.clear()
            self.state.add_buckets(buckets, secret=self._secret, titles=self._titles)

    def _unclip(
        self,
        bucket_id: str,
        events: Sequence[AWEvent],
        ids: Sequence[Any],
        since: datetime,
        known: datetime | None,
    ) -> list[AWEvent]:
        """Undo the server's clipping at ``since`` (see the module docstring).

        Events with a server id that were already added unchanged are left out (the feature
        state has them, or pruned them as too old to matter).
        """
        cut = _to_us(since)
        seen = self._seen.setdefault(bucket_id, {})
        out: list[AWEvent] = []
        for ev, eid in zip(events, ids, strict=True):
            end = ev.start_us + ev.duration_us
            if not isinstance(eid, int | str):
                if known is None or known == since or ev.start_us != cut:
                    out.append(ev)
                continue
            before = seen.get(eid)
            start = ev.start_us
            if before is not None and ev.start_us == cut and before[0] < cut:
                start = before[0]  # clipped at ``since``: the start remembered for its id
            # (an id the server reused for a new event, after a delete, keeps its own start)
            if (start, end) == before:
                continue  # already added, unchanged: skip the normalizing work
            if start < ev.start_us:
                ev = AWEvent(start, end - start, ev.data)
            seen[eid] = (start, end)
            out.append(ev)
        for eid in [k for k, (_, end) in seen.items() if end < cut]:
            del seen[eid]
        return out

    # one poll --------------------------------------------------------------------------
    def poll_once(self) -> pd.DataFrame:
        """Fetch, close complete minutes, predict and append. Returns the records written."""
        self.stats.polls += 1
        self.maybe_reload_policy()
        now = self.clock()
        self._fetch(now)
        until = floor_minute(now - self.settle)
        records: list[OnlineRecord] = []
        predictor = self.predictor
        for start, x in self.state.close_until_vectors(until, predictor.plan):
            records.extend(predictor.predict_vector(self.user_id, start, x))
        records.extend(self.predictor.flush_idle(until))
        return records_frame(self._write(records))

    def _write(self, records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Append records to their local day's file, skipping minutes already there."""
        by_day: dict[date, list[Mapping[str, Any]]] = {}
        for record in records:
            start = record["bucket_start_ts"]
            by_day.setdefault(local_date(start, self.timezone), []).append(record)
        written: list[Mapping[str, Any]] = []
        for day in sorted(by_day):
            last = self._last_written(day)
            part = [
                r
                for r in by_day[day]
                if r["bucket_start_ts"] >= self._write_from
                and (last is None or r["bucket_start_ts"] > last)
            ]
            if not part:
                continue
            self._writer(day).write(part)
            self._written_until[day] = max(r["bucket_start_ts"] for r in part)
            self.stats.days.add(day)
            written.extend(part)
        self.stats.minutes_written += len(written)
        return written

    def _writer(self, day: date) -> OnlineRecordWriter:
        """The open writer of the day's file; closes the writers of earlier days.

        Records come in time order, so no later minute belongs to an earlier local day.
        """
        writer = self._writers.get(day)
        if writer is None:
            for old in [d for d in self._writers if d < day]:
                self._writers.pop(old).close()
            writer = self._writers[day] = OnlineRecordWriter(
                self.layout.online_predictions_file(self.user_id, day),
                fsync_every=self.fsync_every_minutes,
            )
        return writer

    def close_writers(self) -> None:
        """fsync and close the day files' writers (a later write opens them again)."""
        while self._writers:
            self._writers.popitem()[1].close()

    def _last_written(self, day: date) -> datetime | None:
        if day not in self._written_until:
            existing = read_online_records(self.layout.online_predictions_file(self.user_id, day))
            self._written_until[day] = (
                None
                if existing.empty
                else existing["bucket_start_ts"].max().tz_convert(UTC).to_pydatetime()
            )
        return self._written_until[day]

    # loop ------------------------------------------------------------------------------
    def run(
        self,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        max_polls: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_poll: Callable[[pd.DataFrame], None] | None = None,
    ) -> PollStats:
        """Poll until interrupted (Ctrl+C) or ``max_polls``; then :meth:`finish`.

        A poll that fails is logged and counted (``server_errors`` when the server is
        unreachable, else ``poll_errors``) and retried after a doubling backoff (at most
        :data:`MAX_BACKOFF_SECONDS`, or ``poll_seconds`` if longer); the loop keeps running,
        and the minutes the failed polls missed are closed by the next good one.
        """
        backoff = poll_seconds
        try:
            while max_polls is None or self.stats.polls < max_polls:
                try:
                    written = self.poll_once()
                except SourceError as exc:
                    self.stats.server_errors += 1
                    backoff = self._failed(
                        exc, backoff, poll_seconds, self._pause(sleep, max_polls)
                    )
                    continue
                except Exception as exc:  # the per-poll guard: log, count, keep running
                    self.stats.poll_errors += 1
                    log.exception("online poll failed")
                    backoff = self._failed(
                        exc, backoff, poll_seconds, self._pause(sleep, max_polls)
                    )
                    continue
                backoff = poll_seconds
                if on_poll is not None:
                    on_poll(written)
                pause = self._pause(sleep, max_polls)
                if pause is not None:
                    pause(poll_seconds)
        except KeyboardInterrupt:
            log.info("interrupted; writing final records, segments and report")
        finally:
            self.finish()
        return self.stats

    def _pause(
        self, sleep: Callable[[float], None], max_polls: int | None
    ) -> Callable[[float], None] | None:
        """``sleep``, or None (no wait) after the last poll ``max_polls`` allows."""
        if max_polls is not None and self.stats.polls >= max_polls:
            return None
        return sleep

    def _failed(
        self,
        exc: Exception,
        backoff: float,
        poll_seconds: float,
        sleep: Callable[[float], None] | None,
    ) -> float:
        self.stats.last_error = str(exc)
        if sleep is None:
            log.warning("online poll failed (%s); that was the last poll (--max-polls)", exc)
            return backoff
        # doubling, capped; never shorter than a normal poll interval
        backoff = min(max(backoff, poll_seconds) * 2, max(MAX_BACKOFF_SECONDS, poll_seconds))
        log.warning("online poll failed (%s); retrying in %.0f s", exc, backoff)
        sleep(backoff)
        return backoff

    def finish(self) -> list[date]:
        """Flush pending minutes, then write each touched day's segments and report."""
        try:
            self._write(self.predictor.flush_records())
        finally:
            self.close_writers()
        for day in sorted(self.stats.days):
            records = read_online_records(self.layout.online_predictions_file(self.user_id, day))
            if records.empty:
                continue
            segments = segments_of(self.pipeline, records)
            write_segments(self.layout.online_segments_file(self.user_id, day), segments)
            for report in build_daily_reports(
                records,
                segments,
                timezones={self.user_id: self.timezone},
                default_timezone=self.timezone,
                taxonomy=self._taxonomy,
            ):
                folder = self.layout.online_report_dir(report.user_id, report.date)
                write_daily_report(self.layout, report, taxonomy=self._taxonomy, folder=folder)
        return sorted(self.stats.days)


def run_online_loop(
    layout: Layout,
    config: Config,
    *,
    resolve: Callable[[], InferenceSettings],
    aw_host: str | None = None,
    user_id: str | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    settle_seconds: float = 5.0,
    max_polls: int | None = None,
    on_start: Callable[[OnlineLoop], None] | None = None,
    on_poll: Callable[[pd.DataFrame], None] | None = None,
) -> PollStats:
    """Run the online loop against ``aw_host`` (default: the configured server) until stopped.

    Builds the client and an :class:`OnlineLoop` (see it for the arguments), calls
    ``on_start(loop)`` once it is ready, then :meth:`OnlineLoop.run` until Ctrl+C or
    ``max_polls``; the loop writes the final records, segments and reports before returning.

    Returns:
        The loop's counters.
    """
    with AWClient(aw_host or config.aw_host) as client:
        loop = OnlineLoop(
            layout,
            config,
            resolve=resolve,
            client=client,
            user_id=user_id,
            settle_seconds=settle_seconds,
        )
        if on_start is not None:
            on_start(loop)
        return loop.run(poll_seconds=poll_seconds, max_polls=max_polls, on_poll=on_poll)


def warm_up(
    config: PipelineConfig, timezone: str, predictor: OnlinePredictor | None = None
) -> float:
    """Run two made-up minutes through the online path; return the seconds it took.

    The path is compiled (numba) the first time it runs on a machine, which takes a few
    seconds; doing it here keeps that out of the first real minute. Nothing is written and
    no state is touched: ``predictor`` (else a new one for ``config``) lends its model to a
    predictor of its own.
    """
    t0 = time.perf_counter()
    start = 1_700_000_040_000_000  # a minute boundary (µs)
    minute = 60_000_000
    counts = {"presses": 3, "clicks": 1, "deltaX": 4, "deltaY": 3, "scrollX": 0, "scrollY": 1}
    buckets = [
        ParsedBucket(
            "warm-up-window", "currentwindow", None,
            (AWEvent(start, 2 * minute, {"app": "warm-up", "title": "warm up"}),),
        ),
        ParsedBucket(
            "warm-up-afk", "afkstatus", None, (AWEvent(start, 2 * minute, {"status": "not-afk"}),)
        ),
        ParsedBucket(
            "warm-up-input", "os.hid.input", None,
            (AWEvent(start + 5_000_000, 5_000_000, counts), AWEvent(start + minute, 0, counts)),
        ),
        ParsedBucket(
            "warm-up-web", "web.tab.current", None,
            (AWEvent(start, minute, {"url": "https://example.com/", "title": "x"}),),
        ),
    ]  # fmt: skip
    state = FeatureState(
        user_id="warm-up", device_id=None, timezone=timezone,
        schema_version=config.schema_version,
    )  # fmt: skip
    state.add_buckets(buckets, secret=b"\0" * 32, titles={})
    if config.booster is not None:
        scratch = (OnlinePredictor(config) if predictor is None else predictor).with_empty_state()
        for m in (1, 2):
            until = _from_us(start + m * minute)
            for begin, x in state.close_until_vectors(until, scratch.plan):
                scratch.predict_vector("warm-up", begin, x)
        scratch.flush_records()
    return time.perf_counter() - t0


def _load_taxonomy(settings: InferenceSettings) -> TaxonomyConfig | None:
    path = settings.taxonomy_path.value
    return None if path is None else load_taxonomy(path)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)
