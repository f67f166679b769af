"""Shared helpers of the online/batch inference tests (not collected: no ``test_`` prefix).

- :func:`trained_template` builds, once per test session, a home with a small real model:
  synthetic exports of two users over three days → ingest → features → labels → ``train
  lgbm`` (30 rounds) → ``train calibrate`` (per-user calibrators) → ``train tune-reject
  --write-policy`` → ``taxonomy init``. :func:`fresh_home` copies its configuration, models
  and calibrator store (not its events) into a new home, so a test can feed events of its own.
- :class:`AwFeeder` replays an export into a real aw-server as time passes, the way watchers
  would: events that ended are posted whole; events still in progress at the fake "now" are
  posted clipped to now and later updated in place (same server id), so a window, AFK or web
  event grows like a heartbeat-merged one. Input events with activity are posted once complete
  (``aw-watcher-input`` reports a poll interval when it ends).
- :class:`FakeClock` is the clock handed to :class:`~taskclf.infer.online.OnlineLoop`.
- :func:`batch_from_server` is the batch path over the same server: ``ingest_live`` →
  ``build_features_range`` → ``run_batch_inference``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from taskclf.adapters.activitywatch._ingest import ingest_live
from taskclf.cli.main import run
from taskclf.core.config import Config, load_config, save_config
from taskclf.core.paths import Layout
from taskclf.features.build import build_features_range
from taskclf.infer.batch import BatchResult, run_batch_inference
from taskclf.infer.resolve import resolve_settings
from taskclf.synthetic.generator import SyntheticUser, generate_dataset, generate_user

SEED = 0
USERS = 2
DAYS = 3
FIRST_DAY = date(2026, 1, 5)
NUM_BOOST_ROUND = 30

_TEMPLATE: dict[str, TrainedTemplate] = {}


@dataclass(frozen=True)
class TrainedTemplate:
    """A home with a trained model, calibrators and an inference policy (no raw events)."""

    root: Path
    layout: Layout
    timezones: dict[str, str]
    run_id: str


def _cli(layout: Layout, *args: str) -> None:
    code = run(["--home", str(layout.home), *args])
    assert code == 0, f"taskclf {' '.join(args)} exited with {code}"


def trained_template(base: Path) -> TrainedTemplate:
    """Build (once per session; ``base`` is used by the first call) the trained home."""
    if "t" in _TEMPLATE:
        return _TEMPLATE["t"]
    dataset = generate_dataset(base / "synth", users=USERS, days=DAYS, seed=SEED)
    layout = Layout.resolve(base / "home")
    timezones = {u.user_id: u.timezone for u in dataset.users}
    save_config(
        layout,
        Config(user_id=dataset.users[0].user_id, timezone="UTC", user_timezones=timezones),
    )
    for user in dataset.users:
        _cli(layout, "ingest", "aw", "--input", str(user.export_path), "--user-id", user.user_id)
    first, last = FIRST_DAY - timedelta(days=1), FIRST_DAY + timedelta(days=DAYS)
    _cli(layout, "features", "build", "--from", first.isoformat(), "--to", last.isoformat())
    _cli(layout, "labels", "import", str(dataset.labels_csv))
    span = ("--from", FIRST_DAY.isoformat(), "--to", (last - timedelta(days=1)).isoformat())
    _cli(
        layout,
        "train",
        "lgbm",
        *span,
        "--num-boost-round",
        str(NUM_BOOST_ROUND),
        "--train-ratio",
        "0.67",
        "--val-ratio",
        "0.33",
    )
    _cli(layout, "train", "calibrate", *span, "--min-days", "1")
    _cli(layout, "train", "tune-reject", *span, "--write-policy")
    _cli(layout, "taxonomy", "init")
    run_id = next(p.name for p in layout.models_dir.iterdir() if p.is_dir())
    template = TrainedTemplate(base, layout, timezones, run_id)
    _TEMPLATE["t"] = template
    return template


def fresh_home(template: TrainedTemplate, home: Path, *, user_id: str | None = None) -> Layout:
    """A new home with the template's config, secret, models and calibrator store only."""
    layout = Layout.resolve(home)
    src = template.layout
    shutil.copytree(src.configs_dir, layout.configs_dir)
    shutil.copytree(src.models_dir, layout.models_dir)
    shutil.copytree(src.calibrator_store_dir, layout.calibrator_store_dir)
    if user_id is not None:
        save_config(
            layout,
            Config(user_id=user_id, timezone="UTC", user_timezones=template.timezones),
        )
    return layout


def batch_from_server(layout: Layout, url: str, user_id: str, day: date) -> BatchResult:
    """Ingest ``day`` ± 1 (UTC) of a live server into ``layout`` and run batch inference."""
    lo, hi = day - timedelta(days=1), day + timedelta(days=1)
    ingest_live(layout, lo, hi, aw_host=url, user_id=user_id)
    build_features_range(layout, lo, hi, user_ids=[user_id])
    return run_batch_inference(
        layout, lo, hi, settings=resolve_settings(layout), config=load_config(layout)
    )


def online_lines(layout: Layout, user_id: str) -> list[str]:
    """Every line of the user's online JSONL files, in file (date) order."""
    folder = layout.online_predictions_file(user_id, date(2000, 1, 1)).parent
    lines: list[str] = []
    for path in sorted(folder.glob("*.jsonl")):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    return lines


def live_user(index: int, day: date, *, seed: int = 7) -> SyntheticUser:
    """One synthetic user's single day (not part of the training data)."""
    return generate_user(index, days=1, seed=seed, start_date=day)


class FakeClock:
    """A settable aware-UTC clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now = self.now + timedelta(seconds=seconds)
        return self.now


@dataclass
class _Event:
    bucket: str
    start: datetime
    duration: float
    data: dict[str, Any]
    waits_until_complete: bool
    server_id: int | None = None
    complete: bool = False

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration)

    def body(self, duration: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "timestamp": self.start.isoformat(),
            "duration": duration,
            "data": self.data,
        }
        if self.server_id is not None:
            out["id"] = self.server_id
        return out


@dataclass
class AwFeeder:
    """Replays ``export`` into the aw-server at ``url`` as the fake time advances."""

    url: str
    export: dict[str, Any]
    events: list[_Event] = field(default_factory=list)
    _next: int = 0
    _open: list[_Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        for bucket_id, bucket in sorted(self.export["buckets"].items()):
            is_input = bucket["type"] == "os.hid.input"
            for ev in bucket["events"]:
                active = is_input and any(bool(v) for v in ev["data"].values())
                self.events.append(
                    _Event(
                        bucket_id,
                        datetime.fromisoformat(ev["timestamp"]).astimezone(UTC),
                        float(ev["duration"]),
                        ev["data"],
                        waits_until_complete=active,
                    )
                )
        self.events.sort(key=lambda e: (e.start, e.bucket))

    @property
    def first_start(self) -> datetime:
        return self.events[0].start

    @property
    def last_end(self) -> datetime:
        return max(e.end for e in self.events)

    def create_buckets(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for bucket_id, bucket in sorted(self.export["buckets"].items()):
                meta = {k: bucket[k] for k in ("type", "client", "hostname")}
                r = client.post(f"/api/0/buckets/{bucket_id}", json=meta)
                assert r.status_code in (200, 304), r.text[:200]

    def advance(self, now: datetime) -> int:
        """Make the server hold what watchers would have reported by ``now``.

        One POST per bucket with changes (new events, and updates of growing ones by their
        server id), then one GET per bucket to learn the ids of newly posted growing events.
        Returns the number of requests sent.
        """
        while self._next < len(self.events) and self.events[self._next].start < now:
            self._open.append(self.events[self._next])
            self._next += 1
        bodies: dict[str, list[dict[str, Any]]] = {}
        new_open: dict[str, list[_Event]] = {}
        still_open: list[_Event] = []
        for ev in self._open:
            if ev.end > now and ev.waits_until_complete:
                still_open.append(ev)
                continue
            grown = min(ev.duration, (now - ev.start).total_seconds())
            bodies.setdefault(ev.bucket, []).append(ev.body(grown))
            if ev.end > now:
                still_open.append(ev)
                if ev.server_id is None:
                    new_open.setdefault(ev.bucket, []).append(ev)
        self._open = still_open
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for bucket_id, batch in sorted(bodies.items()):
                r = client.post(f"/api/0/buckets/{bucket_id}/events", json=batch)
                assert r.status_code == 200, r.text[:200]
            for bucket_id, events in sorted(new_open.items()):
                _learn_ids(client, bucket_id, events)
        return len(bodies) + len(new_open)

    def post_all(self) -> None:
        """Everything at once (as if the whole day had passed)."""
        self.advance(self.last_end + timedelta(seconds=1))


def _learn_ids(client: httpx.Client, bucket_id: str, events: list[_Event]) -> None:
    """Set the server ids of ``events`` just inserted (aw-server 0.12 does not return them).

    Events overlapping the queried range come back clipped to its start, so the match is on
    timestamp (aw-server keeps milliseconds) and data. Real exports hold duplicates (same
    start and data, different durations); inserted in one request, they get consecutive ids
    in posting order, so the k-th duplicate takes the k-th of the newest ids that match.
    Sharing one id would let a duplicate's shorter end overwrite a longer one.
    """
    lo = min(e.start for e in events)
    hi = max(e.start for e in events) + timedelta(microseconds=1)
    r = client.get(
        f"/api/0/buckets/{bucket_id}/events",
        params={"start": lo.isoformat(), "end": hi.isoformat(), "limit": "-1"},
    )
    assert r.status_code == 200, r.text[:200]
    served = r.json()
    groups: dict[tuple[datetime, str], list[_Event]] = {}
    for ev in events:
        start = ev.start.replace(microsecond=ev.start.microsecond // 1000 * 1000)  # stored in ms
        groups.setdefault((start, json.dumps(ev.data, sort_keys=True)), []).append(ev)
    for (start, data), group in groups.items():
        ids = sorted(
            int(e["id"])
            for e in served
            if datetime.fromisoformat(e["timestamp"]) == start
            and json.dumps(e["data"], sort_keys=True) == data
        )
        assert len(ids) >= len(group), (
            f"inserted event at {start.isoformat()} not found in {bucket_id}"
        )
        for ev, server_id in zip(group, ids[-len(group) :], strict=True):
            ev.server_id = server_id
