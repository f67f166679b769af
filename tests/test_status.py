"""``taskclf status``: what a home holds, stage by stage, and the next command to run."""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from _online_helpers import FIRST_DAY, TrainedTemplate, trained_template
from taskclf.cli.main import run
from taskclf.core.paths import Layout
from taskclf.report.status import home_status, next_step


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> TrainedTemplate:
    return trained_template(tmp_path_factory.mktemp("trained"))


def _copy_newer(src: Path, dst: Path, *, than: float | None) -> None:
    """Copy a partition, dated one minute after ``than`` (a later ingest or build)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    stamp = (than or time.time()) + 60
    os.utime(dst, (stamp, stamp))


def _span(coverage: Any) -> str:
    return f"--from {coverage.first} --to {coverage.last}"


def _status(home: Any, capsys: pytest.CaptureFixture[str]) -> str:
    code = run(["--home", str(home), "status"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out
    return out


def test_an_empty_home_is_told_to_ingest(tmp_path, capsys) -> None:
    out = _status(tmp_path / "home", capsys)
    assert "events (ingested, UTC days) 0 - - -" in out
    assert "next: bring your ActivityWatch data in: taskclf ingest aw" in out
    assert not (tmp_path / "home").exists()  # status only reads


def test_each_stage_names_the_next_command(template, tmp_path, capsys) -> None:
    home = tmp_path / "home"
    shutil.copytree(template.layout.home, home)
    layout = Layout.resolve(home)
    out = _status(home, capsys)
    got = home_status(layout)
    assert got.events.days_by_user.keys() == template.timezones.keys()
    assert got.features.first is not None and got.label_spans > 0 and got.label_users > 0
    assert got.active_model == template.run_id and got.policy_model == template.run_id
    assert got.calibration == "temperature" and got.problems == []
    assert f"model: {template.run_id} active (1 bundle(s))" in out
    by_label = got.label_minutes_by_label
    assert sum(by_label.values()) == pytest.approx(got.label_minutes)
    assert f"Build {by_label['Build'] / 60:.1f} h" in out and "none yet of" not in out
    assert f"next: predict: taskclf infer batch --from {got.features.first} " in out
    day = FIRST_DAY.isoformat()
    assert run(["--home", str(home), "infer", "batch", "--from", day, "--to", day]) == 0
    capsys.readouterr()
    out = _status(home, capsys)
    assert f"next: all set: taskclf report daily --from {day} --to {day}" in out
    # a new week's export: event days after the last feature day, then their features
    got = home_status(layout)
    later = got.features.last + timedelta(days=3)
    user = next(iter(got.events.days_by_user))
    src = layout.raw_events_partition(user, got.events.last)
    _copy_newer(src, layout.raw_events_partition(user, later), than=got.features.newest)
    step = next_step(home_status(layout))
    assert step.endswith(f"features build --from {got.features.last} --to {later}"), step
    feats = next(layout.features_dir("v3").glob(f"date={got.features.last}/*.parquet"))
    _copy_newer(feats, layout.features_partition(later, user), than=got.predictions.newest)
    step = next_step(home_status(layout))
    assert step.endswith(f"infer batch --from {got.predictions.last} --to {later}"), step
    preds = next(layout.predictions_dir.glob("date=*/*.parquet"))
    _copy_newer(preds, layout.predictions_partition(later, user), than=time.time())
    assert next_step(home_status(layout)).startswith("all set")
    # going back stage by stage
    layout.inference_policy.unlink()
    assert next_step(home_status(layout)).startswith("personalize: taskclf train calibrate")
    layout.active_pointer.unlink()
    assert next_step(home_status(layout)).startswith("train a model on your labels")
    from taskclf.labels.store import LabelStore

    store = LabelStore.for_layout(layout)
    for record in store.list_records():
        if record.span.label in ("Meet", "Review"):
            store.delete(record.span_id)
    assert "; none yet of Meet, Review" in _status(home, capsys)
    layout.labels_db.unlink()
    got = home_status(layout)
    step = next_step(got)
    assert step.startswith("label some of your time"), step
    assert step.endswith(f"meanwhile: taskclf report summary {_span(got.predictions)} (baseline)")
    shutil.rmtree(layout.predictions_dir)
    step = next_step(home_status(layout))
    assert step.endswith(f"meanwhile: taskclf infer baseline {_span(got.features)}"), step
    shutil.rmtree(layout.features_dir("v3"))
    assert next_step(home_status(layout)).startswith("build per-minute features")


def test_an_unreadable_artifact_is_a_problem_not_a_failure(template, tmp_path, capsys) -> None:
    home = tmp_path / "home"
    shutil.copytree(template.layout.home, home)
    Layout.resolve(home).inference_policy.write_text("{not json", encoding="utf-8")
    out = _status(home, capsys)
    assert "problem: inference policy '" in out and "not readable JSON" in out
    assert "inference policy: none" in out


def test_a_policy_that_no_longer_matches_its_model_sends_back_to_personalize(
    template, tmp_path, capsys, monkeypatch
) -> None:
    import json

    from taskclf.cli._common import console

    monkeypatch.setattr(console, "_width", 300)  # the long path on one line

    home = tmp_path / "home"
    shutil.copytree(template.layout.home, home)
    layout = Layout.resolve(home)
    assert home_status(layout).policy_ok
    policy = json.loads(layout.inference_policy.read_text())
    layout.inference_policy.write_text(json.dumps(policy | {"model_schema_hash": "0" * 12}))
    got = home_status(layout)
    assert not got.policy_ok
    assert next_step(got).startswith("the inference policy is invalid (see 'problem'), personalize")
    out = _status(home, capsys)
    assert f"problem: inference policy '{layout.inference_policy}': model_schema_hash" in out
