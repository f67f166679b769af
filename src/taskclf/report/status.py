"""What a taskclf home holds, stage by stage, and the next command to run (``taskclf status``).

Read-only and cheap: it lists partitions (directory names, no Parquet is read), counts label
spans in the label store, and reads the small JSON artifacts (active pointer, bundle
metadata, inference policy, calibrator store manifest). A stage whose artifact cannot be read
is reported with the problem instead of failing the whole status.

Stages, in workflow order: events (``ingest``), features (``features build``), labels, model
(``train lgbm``), calibration and policy (``train calibrate``, ``train tune-reject
--write-policy``), predictions (``infer batch``). :func:`next_step` names the first command
the home still needs, including features for event days after the last feature day that
arrived since the last build, and predictions for feature days after the last predicted day
built since the last predictions (a new week's export).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from taskclf.core.config import Config, load_config
from taskclf.core.errors import TaskclfError
from taskclf.core.model_io import get_active_model, list_bundles, load_metadata
from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1


@dataclass(frozen=True)
class DayCoverage:
    """Partitions of one stage: how many per user, the first and last day overall, and when
    each day's newest partition was written (``mtimes``, seconds)."""

    days_by_user: dict[str, int]
    first: date | None
    last: date | None
    mtimes: dict[date, float] = field(default_factory=dict)

    @property
    def days(self) -> int:
        return sum(self.days_by_user.values())

    @property
    def newest(self) -> float | None:
        return max(self.mtimes.values(), default=None)

    def newer_days(self, than: DayCoverage) -> list[date]:
        """Days after ``than``'s last day written after ``than``'s newest partition: days
        the next stage has not been run on since they arrived."""
        if than.last is None or than.newest is None:
            return []
        newest = than.newest
        return sorted(d for d, t in self.mtimes.items() if d > than.last and t > newest)


@dataclass(frozen=True)
class HomeStatus:
    """Everything ``taskclf status`` shows (see the module docstring)."""

    home: Path
    config: Config
    config_exists: bool
    events: DayCoverage
    features: DayCoverage
    label_spans: int
    label_minutes: float
    label_users: int
    label_minutes_by_label: dict[str, float]
    bundles: int
    active_model: str | None
    policy_model: str | None
    calibration: str | None
    personalized_users: int
    predictions: DayCoverage
    taxonomy: bool
    problems: list[str] = field(default_factory=list)
    policy_ok: bool = True  # False: a policy file that inference refuses


def _coverage(parts: list[tuple[str, date, Path]]) -> DayCoverage:
    by_user: dict[str, int] = {}
    mtimes: dict[date, float] = {}
    for user, day, path in parts:
        by_user[user] = by_user.get(user, 0) + 1
        try:
            mtimes[day] = max(mtimes.get(day, 0.0), path.stat().st_mtime)
        except OSError:  # removed meanwhile
            continue
    first, last = min(mtimes, default=None), max(mtimes, default=None)
    return DayCoverage(dict(sorted(by_user.items())), first, last, mtimes)


def _day(name: str) -> date | None:
    if not name.startswith("date="):
        return None
    try:
        return date.fromisoformat(name[5:])
    except ValueError:
        return None


def _by_day_dirs(root: Path) -> list[tuple[str, date, Path]]:
    """``root/date=YYYY-MM-DD/<user>.parquet`` partitions as (user file stem, day, path)."""
    if not root.is_dir():
        return []
    out = []
    for child in root.iterdir():
        day = _day(child.name)
        if day is not None and child.is_dir():
            out += [(p.stem, day, p) for p in child.glob("*.parquet")]
    return out


def _events(layout: Layout) -> list[tuple[str, date, Path]]:
    """``raw/aw/<user>/date=YYYY-MM-DD/events.parquet`` partitions as (user dir, day, path)."""
    root = layout.raw_aw_dir
    if not root.is_dir():
        return []
    out = []
    for user in root.iterdir():
        if user.is_dir():
            for child in user.iterdir():
                day = _day(child.name)
                if day is not None and (child / "events.parquet").exists():
                    out.append((user.name, day, child / "events.parquet"))
    return out


def home_status(layout: Layout, *, schema_version: str = "v3") -> HomeStatus:
    """Gather the status of ``layout`` (see the module docstring)."""
    from taskclf.core.inference_policy import (
        load_inference_policy,
        read_store_manifest,
        validate_policy,
    )
    from taskclf.labels.store import LabelStore

    problems: list[str] = []
    config = load_config(layout)
    spans: list[tuple[str | None, str, float]] = []
    if layout.labels_db.exists():
        try:
            spans = [
                (s.user_id, s.label, (s.end_ts - s.start_ts).total_seconds() / 60.0)
                for s in LabelStore.for_layout(layout).list_spans()
            ]
        except TaskclfError as exc:
            problems.append(f"labels: {exc}")
    active: str | None = None
    try:
        run_dir = get_active_model(layout)
        active = None if run_dir is None else run_dir.name
    except TaskclfError as exc:
        problems.append(f"active model: {exc}")
    policy_model = calibration = None
    personalized = 0
    policy_ok = True
    try:
        policy = load_inference_policy(layout)
        if policy is not None:
            policy_model = Path(policy.model_dir).name
            if policy.calibrator_store_dir is not None:
                store = layout.home / policy.calibrator_store_dir  # an absolute one stays
                manifest = read_store_manifest(store)
                calibration, personalized = manifest.method, manifest.user_count
            validate_policy(policy, layout)  # inference refuses a policy that fails this
    except TaskclfError as exc:
        text = str(exc)
        problems.append(
            text if text.startswith("inference policy") else f"inference policy: {text}"
        )
        policy_ok = False
    if active is not None:
        try:
            schema_version = load_metadata(layout.run_dir(active)).schema_version
        except TaskclfError as exc:
            problems.append(f"active model: {exc}")
    return HomeStatus(
        home=layout.home,
        config=config,
        config_exists=layout.config_file.exists(),
        events=_coverage(_events(layout)),
        features=_coverage(_by_day_dirs(layout.features_dir(schema_version))),
        label_spans=len(spans),
        label_minutes=sum(m for _, _, m in spans),
        label_users=len({u for u, _, _ in spans if u is not None}),
        label_minutes_by_label={
            label: sum(m for _, lab, m in spans if lab == label) for label in LABEL_SET_V1
        },
        bundles=len(list_bundles(layout)),
        active_model=active,
        policy_model=policy_model,
        calibration=calibration,
        personalized_users=personalized,
        predictions=_coverage(_by_day_dirs(layout.predictions_dir)),
        taxonomy=layout.taxonomy_file.exists(),
        problems=problems,
        policy_ok=policy_ok,
    )


def _range(coverage: DayCoverage) -> str:
    return f"--from {coverage.first} --to {coverage.last}"


def next_step(status: HomeStatus) -> str:
    """The first command the home still needs, with its dates where they are known."""
    if not status.events.days:
        return (
            "bring your ActivityWatch data in: taskclf ingest aw --input EXPORT.json "
            "(or taskclf ingest live --from ... --to ... with the server running)"
        )
    if not status.features.days:
        return f"build per-minute features: taskclf features build {_range(status.events)}"
    new_events = status.events.newer_days(status.features)
    if new_events:
        return (
            "features for the days ingested since the last build: taskclf features build "
            f"--from {status.features.last} --to {new_events[-1]}"
        )
    if not status.label_spans:
        meanwhile = f"taskclf infer baseline {_range(status.features)}"
        if status.predictions.days and not status.features.newer_days(status.predictions):
            meanwhile = f"taskclf report summary {_range(status.predictions)} (baseline)"
        return (
            "label some of your time (taskclf labels import FILE.csv, labels add-block, "
            f"labels label-now); meanwhile: {meanwhile}"
        )
    if status.active_model is None:
        return f"train a model on your labels: taskclf train lgbm {_range(status.features)}"
    if status.policy_model is None or not status.policy_ok:
        redo = "" if status.policy_ok else "the inference policy is invalid (see 'problem'), "
        return (
            f"{redo}personalize: taskclf train calibrate {_range(status.features)}, then "
            f"taskclf train tune-reject {_range(status.features)} --write-policy"
        )
    if not status.predictions.days:
        return f"predict: taskclf infer batch {_range(status.features)}"
    new_features = status.features.newer_days(status.predictions)
    if new_features:
        return (
            "predict the days built since the last predictions: taskclf infer batch --from "
            f"{status.predictions.last} --to {new_features[-1]}"
        )
    return (
        f"all set: taskclf report daily {_range(status.predictions)}, or predict live with "
        "taskclf infer online"
    )
