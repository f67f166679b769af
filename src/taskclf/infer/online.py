"""Online inference: poll a running ActivityWatch server, predict each closed minute once.

Each poll fetches the recent events of every supported bucket, adds them to the user's
:class:`~taskclf.infer.feature_state.FeatureState`, closes every complete minute (never a
partial one) and runs the closed rows through :class:`~taskclf.infer.pipeline.OnlinePredictor`
— the same pipeline as batch. Records are appended durably to the day's JSONL file; a minute
already in that file is never written again (restarts are safe). A changed inference policy is
hot-reloaded (an invalid one is ignored and the old one kept); a server that goes away is
retried with bounded backoff. On stop, pending minutes are flushed and the day's segments and
report are written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from taskclf.adapters.activitywatch.client import AWClient
from taskclf.adapters.activitywatch.events import normalize_buckets
from taskclf.adapters.activitywatch.export import SUPPORTED_TYPES, ParsedBucket, parse_events
from taskclf.core.config import Config, load_or_create_title_secret
from taskclf.core.defaults import DEFAULT_IDLE_GAP_SECONDS, DEFAULT_POLL_SECONDS
from taskclf.core.errors import SourceError, TaskclfError
from taskclf.core.paths import Layout
from taskclf.core.time import floor_minute, local_date, utc_now
from taskclf.infer.feature_state import FeatureState
from taskclf.infer.pipeline import OnlinePredictor, PipelineConfig
from taskclf.infer.prediction import append_online_records, read_online_records
from taskclf.infer.resolve import InferenceSettings, load_pipeline_config
from taskclf.infer.smooth import merge_short_segments, segmentize
from taskclf.report.daily import build_daily_reports, write_daily_report
from taskclf.report.export import write_segments

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


@dataclass
class PollStats:
    """Counters of one online session."""

    polls: int = 0
    minutes_written: int = 0
    server_errors: int = 0
    policy_reloads: int = 0
    policy_rejections: int = 0
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
        clock: Current time (aware UTC); injectable for tests.
        settle_seconds: A minute is closed only this long after it ended, so late heartbeats
            of a watcher are in before the minute is predicted.
        warmup_minutes: History fetched at start so rolling features and smoothing have context.
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
    ) -> None:
        self.layout = layout
        self.config = config
        self.user_id = user_id or config.user_id
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
        self._policy_stamp = self._stamp()
        self.predictor = OnlinePredictor(self.pipeline)
        start = floor_minute(clock()) - timedelta(minutes=warmup_minutes)
        self.state = FeatureState(
            user_id=self.user_id,
            device_id=device_id,
            timezone=self.timezone,
            schema_version=self.pipeline.schema_version,
            start=start,
        )
        self._fetch_from: dict[str, datetime] = {}
        self._origin = start
        self._written_until: dict[date, pd.Timestamp | None] = {}

    # policy ----------------------------------------------------------------------------
    def _stamp(self) -> tuple[float, int] | None:
        path = self.layout.inference_policy
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime, st.st_size)

    def maybe_reload_policy(self) -> bool:
        """Reload settings if the policy file changed; keep the old ones if invalid."""
        stamp = self._stamp()
        if stamp == self._policy_stamp:
            return False
        self._policy_stamp = stamp
        try:
            settings = self._resolve()
            pipeline = load_pipeline_config(settings, num_threads=1)
        except TaskclfError as exc:
            self.stats.policy_rejections += 1
            log.warning("inference policy changed but is invalid; keeping the old one: %s", exc)
            return False
        self.settings, self.pipeline = settings, pipeline
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
            raw = self.client.get_events(bid, since, now)
            events = list(
                parse_events(bid, str(btype), raw, where=f"server {self.client.base_url}")
            )
            # The server clips an event that started before `since` to start at `since`. An
            # earlier poll fetched it whole, so the clipped copy is dropped, except on the
            # first fetch of a bucket (nothing earlier) or when `since` is that bucket's own
            # latest event start (then an event starting there is genuine).
            if known is not None and since != known:
                cut = _to_us(since)
                events = [e for e in events if e.start_us != cut]
            if events:
                self._fetch_from[bid] = _from_us(max(e.start_us for e in events))
            host = meta.get("hostname")
            buckets.append(
                ParsedBucket(
                    bid, str(btype), host if isinstance(host, str) else None, tuple(events)
                )
            )
        if buckets:
            frame = normalize_buckets(buckets, secret=self._secret, device_id=self.device_id)
            self.state.add_events(frame)

    # one poll --------------------------------------------------------------------------
    def poll_once(self) -> pd.DataFrame:
        """Fetch, close complete minutes, predict and append. Returns the records written."""
        self.stats.polls += 1
        self.maybe_reload_policy()
        now = self.clock()
        self._fetch(now)
        rows = self.state.close_until(floor_minute(now - self.settle))
        emitted = [
            self.predictor.predict_bucket({str(k): v for k, v in row.items()})
            for row in rows.to_dict("records")
        ]
        return self._write(emitted)

    def _write(self, frames: list[pd.DataFrame]) -> pd.DataFrame:
        frames = [f for f in frames if not f.empty]
        if not frames:
            return pd.DataFrame()
        records = pd.concat(frames, ignore_index=True)
        days = [local_date(ts.to_pydatetime(), self.timezone) for ts in records["bucket_start_ts"]]
        records = records.assign(_day=days)
        written = []
        for key, part in records.groupby("_day", sort=True):
            day = key if isinstance(key, date) else date.fromisoformat(str(key))
            path = self.layout.online_predictions_file(self.user_id, day)
            last = self._last_written(day)
            part = part.drop(columns="_day")
            if last is not None:
                part = part[part["bucket_start_ts"] > last]
            if part.empty:
                continue
            append_online_records(path, part)
            self._written_until[day] = part["bucket_start_ts"].max()
            self.stats.days.add(day)
            written.append(part)
        self.stats.minutes_written += sum(len(p) for p in written)
        return pd.concat(written, ignore_index=True) if written else pd.DataFrame()

    def _last_written(self, day: date) -> pd.Timestamp | None:
        if day not in self._written_until:
            existing = read_online_records(self.layout.online_predictions_file(self.user_id, day))
            self._written_until[day] = None if existing.empty else existing["bucket_start_ts"].max()
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
        """Poll until interrupted (Ctrl+C) or ``max_polls``; then :meth:`finish`."""
        backoff = poll_seconds
        try:
            while max_polls is None or self.stats.polls < max_polls:
                try:
                    written = self.poll_once()
                    backoff = poll_seconds
                    if on_poll is not None:
                        on_poll(written)
                except SourceError as exc:
                    self.stats.server_errors += 1
                    self.stats.last_error = str(exc)
                    backoff = min(max(backoff, poll_seconds) * 2, MAX_BACKOFF_SECONDS)
                    log.warning("ActivityWatch unavailable (%s); retrying in %.0f s", exc, backoff)
                    sleep(backoff)
                    continue
                sleep(poll_seconds)
        except KeyboardInterrupt:
            log.info("interrupted; writing final records, segments and report")
        finally:
            self.finish()
        return self.stats

    def finish(self) -> list[date]:
        """Flush pending minutes, then write each touched day's segments and report."""
        self._write([self.predictor.flush()])
        for day in sorted(self.stats.days):
            records = read_online_records(self.layout.online_predictions_file(self.user_id, day))
            if records.empty:
                continue
            segments = merge_short_segments(
                segmentize(
                    records["bucket_start_ts"],
                    records["predicted_label"].tolist(),
                    user_ids=records["user_id"].tolist(),
                ),
                self.pipeline.min_block_seconds,
            )
            write_segments(self.layout.online_segments_file(self.user_id, day), segments)
            for report in build_daily_reports(
                records,
                segments,
                timezones={self.user_id: self.timezone},
                default_timezone=self.timezone,
            ):
                write_daily_report(self.layout, report)
        return sorted(self.stats.days)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)
