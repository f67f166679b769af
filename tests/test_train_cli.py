"""End to end: feature partitions + label store -> train lgbm -> bundle -> evaluate -> registry."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from taskclf.cli.main import run
from taskclf.core.model_io import get_active_model, list_bundles, load_model_bundle
from taskclf.core.types import LABEL_SET_V1
from taskclf.labels.store import LabelStore
from taskclf.train.dataset import SplitSummary, load_labeled_dataset, load_labeled_features
from taskclf.train.evaluate import EVALUATION_FILE, load_evaluation
from test_train_frames import make_labeled_frame, spans_from_frame, write_features

START = date(2026, 1, 5)
DAYS = 5


def _home(layout, frame, provenance="synthetic"):
    write_features(layout, frame)
    LabelStore.for_layout(layout).import_spans(spans_from_frame(frame, provenance), strict=True)


@pytest.fixture
def home(layout):
    frame = make_labeled_frame(n_users=4, n_days=DAYS, minutes_per_day=60, start=START, seed=11)
    _home(layout, frame)
    return layout, frame


def _args(layout, *rest):
    return ["--home", str(layout.home), *rest]


RANGE = ["--from", "2026-01-05", "--to", "2026-01-09"]


def test_load_labeled_features_returns_the_labeled_rows(home):
    layout, frame = home
    data = load_labeled_dataset(layout, START, date(2026, 1, 9))
    assert data.data_provenance == "synthetic"
    assert len(data.frame) == len(frame)
    got = data.frame.sort_values(["user_id", "bucket_start_ts"]).reset_index(drop=True)
    assert got["label"].tolist() == frame["label"].tolist()
    one = load_labeled_features(layout, START, START, user_ids=["user-1"])
    assert set(one["user_id"]) == {"user-1"} and len(one) == 60


def test_train_evaluate_and_registry_end_to_end(home, capsys):
    layout, _ = home
    code = run(
        _args(
            layout,
            "train",
            "lgbm",
            *RANGE,
            "--num-boost-round",
            "20",
            "--holdout-user-fraction",
            "0.25",
            "--seed",
            "3",
        )
    )
    out = capsys.readouterr().out
    assert code == 0, out
    bundles = list_bundles(layout)
    assert len(bundles) == 1
    run_dir = bundles[0]
    assert f"run id: {run_dir.name}" in out
    assert get_active_model(layout) == run_dir  # first model gets activated
    booster, meta, _ = load_model_bundle(run_dir)
    assert meta.data_provenance == "synthetic"
    assert meta.params["num_boost_round"] == 20
    assert booster.current_iteration() == meta.params["num_boost_round_used"]
    split = SplitSummary.model_validate(meta.params["split"])
    assert len(split.holdout_users) == 1 and split.seed == 3
    assert len(meta.dataset_hash) == 16

    code = run(_args(layout, "train", "evaluate", "--model-dir", str(run_dir)))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Acceptance gates" in out
    out_dir = layout.evaluation_run_dir(run_dir.name)
    assert {p.name for p in out_dir.iterdir()} >= {
        EVALUATION_FILE,
        "reliability.png",
        "confusion_matrix.png",
    }
    report = load_evaluation(layout, run_dir.name)
    assert report is not None
    assert report.unseen_users is not None and report.unseen_users.users == 1
    # Only test days: held-out user's days plus the last day of each seen user.
    assert report.rows == split.splits["test"].rows
    assert report.classification.macro_f1 > 0.5

    assert run(_args(layout, "model", "list")) == 0
    listing = capsys.readouterr().out
    assert run_dir.name in listing and "*" in listing
    assert run(_args(layout, "model", "inspect", run_dir.name)) == 0
    inspected = capsys.readouterr().out
    assert "Per user" in inspected and "Top confusions" in inspected

    # A second run does not take over the active pointer; set-active does.
    assert run(_args(layout, "train", "lgbm", *RANGE, "--num-boost-round", "5")) == 0
    second = next(b for b in list_bundles(layout) if b != run_dir)
    assert get_active_model(layout) == run_dir
    assert run(_args(layout, "model", "set-active", second.name)) == 0
    assert get_active_model(layout) == second


def test_same_seed_same_model_and_metrics(home):
    layout, _ = home
    for _ in range(2):
        assert run(_args(layout, "train", "lgbm", *RANGE, "--num-boost-round", "10")) == 0
    a, b = list_bundles(layout)
    for name in ("model.txt", "metrics.json", "categorical_encoders.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    meta_a = json.loads((a / "metadata.json").read_text())
    meta_b = json.loads((b / "metadata.json").read_text())
    assert meta_a["dataset_hash"] == meta_b["dataset_hash"]
    assert meta_a["params"] == meta_b["params"]


def test_build_dataset_writes_splits(home, capsys):
    layout, frame = home
    code = run(_args(layout, "train", "build-dataset", *RANGE, "--name", "mine"))
    assert code == 0, capsys.readouterr().out
    out = layout.datasets_dir / "mine"
    parts = {n: pd.read_parquet(out / f"{n}.parquet") for n in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(frame)
    summary = SplitSummary.model_validate(json.loads((out / "splits.json").read_text()))
    assert summary.splits["test"].rows == len(parts["test"])


def test_v2_rows_get_their_user_and_train(layout, capsys):
    frame = make_labeled_frame(
        n_users=2,
        n_days=4,
        minutes_per_day=30,
        start=START,
        schema_version="v2",
        keep_user_id=True,
    )
    write_features(layout, frame, "v2")
    LabelStore.for_layout(layout).import_spans(spans_from_frame(frame), strict=True)
    data = load_labeled_dataset(layout, START, date(2026, 1, 8), schema_version="v2")
    assert sorted(set(data.frame["user_id"])) == ["user-0", "user-1"]
    assert len(data.frame) == len(frame)
    code = run(
        _args(
            layout,
            "train",
            "lgbm",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-08",
            "--schema-version",
            "v2",
            "--num-boost-round",
            "5",
        )
    )
    assert code == 0, capsys.readouterr().err
    _, meta, encoders = load_model_bundle(list_bundles(layout)[0])
    assert meta.schema_version == "v2" and "user_id" not in encoders
    assert [u.user_id for u in SplitSummary.model_validate(meta.params["split"]).users] == [
        "user-0",
        "user-1",
    ]


def test_provenance_real_and_mixed(layout):
    frame = make_labeled_frame(n_users=2, n_days=3, minutes_per_day=30, start=START)
    write_features(layout, frame)
    spans = spans_from_frame(frame, "manual")
    store = LabelStore.for_layout(layout)
    store.import_spans(spans[:-3], strict=True)
    assert load_labeled_dataset(layout, START, date(2026, 1, 7)).data_provenance == "real"
    store.import_spans(
        [s.model_copy(update={"provenance": "synthetic"}) for s in spans[-3:]], strict=True
    )
    assert load_labeled_dataset(layout, START, date(2026, 1, 7)).data_provenance == "mixed"


@pytest.mark.parametrize(
    ("setup", "argv", "message"),
    [
        ("none", RANGE, "no feature rows"),
        ("features", RANGE, "covered by a label span"),
        ("single", RANGE, "at least two"),
        ("full", ["--from", "2027-01-01", "--to", "2027-01-31"], "no feature rows"),
        ("full", ["--from", "2026-13-01", "--to", "2026-01-09"], "YYYY-MM-DD"),
        ("full", ["--from", "2026-01-09", "--to", "2026-01-05"], "before"),
        ("full", [*RANGE, "--holdout-user-fraction", "1.5"], "holdout-user-fraction"),
    ],
)
def test_bad_input_exits_2(layout, capsys, setup, argv, message):
    frame = make_labeled_frame(n_users=2, n_days=DAYS, minutes_per_day=20, start=START)
    if setup == "single":
        frame["label"] = "Build"
    if setup != "none":
        write_features(layout, frame)
    if setup in ("single", "full"):
        LabelStore.for_layout(layout).import_spans(spans_from_frame(frame), strict=True)
    code = run(_args(layout, "train", "lgbm", *argv, "--num-boost-round", "5"))
    err = capsys.readouterr().err
    assert code == 2
    assert message in " ".join(err.split())
    assert list_bundles(layout) == []


def test_evaluate_without_model_exits_2(layout, capsys):
    assert run(_args(layout, "train", "evaluate")) == 2
    assert "no active model" in capsys.readouterr().err
    assert run(_args(layout, "model", "inspect")) == 2
    assert run(_args(layout, "model", "set-active", "2026-01-01_000000_run-0000")) == 2


def test_training_says_when_labels_cannot_teach_every_task_type(layout, capsys):
    frame = make_labeled_frame(n_users=2, n_days=DAYS, minutes_per_day=60, start=START, seed=5)
    frame = frame[frame["label"].isin(["BreakIdle", "Communicate"])].reset_index(drop=True)
    _home(layout, frame, provenance="weak:idle")
    assert run(_args(layout, "train", "lgbm", *RANGE, "--num-boost-round", "5")) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "note: no training minutes of Build, Debug, Meet, ReadResearch, Review, Write:" in out
    assert "every label in the range was proposed by 'labels weak-rules'" in out


def test_training_on_every_task_type_and_real_labels_has_no_label_notes(layout, capsys):
    frame = make_labeled_frame(n_users=2, n_days=DAYS, minutes_per_day=60, start=START, seed=5)
    assert set(frame["label"]) == {*LABEL_SET_V1}
    _home(layout, frame, provenance="manual")
    assert run(_args(layout, "train", "lgbm", *RANGE, "--num-boost-round", "5")) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "no training minutes" not in out and "weak-rules" not in out
