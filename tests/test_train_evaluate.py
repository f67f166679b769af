from __future__ import annotations

import json

import numpy as np
import pytest

from taskclf.core.defaults import DEFAULT_REJECT_THRESHOLD
from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.metrics import classification_summary, evaluate_gates
from taskclf.core.model_io import (
    build_metadata,
    generate_run_id,
    save_model_bundle,
    set_active_model,
)
from taskclf.core.types import LABEL_SET_V1
from taskclf.train.dataset import split_by_time
from taskclf.train.evaluate import (
    CONFUSION_PNG,
    EVALUATION_FILE,
    RELIABILITY_PNG,
    EvaluationReport,
    evaluate_predictions,
    load_evaluation,
    write_evaluation,
)
from taskclf.train.lgbm import predict_proba, train_lgbm
from taskclf.train.registry import inspect_model, list_models
from test_train_frames import make_labeled_frame


@pytest.fixture(scope="module")
def trained():
    frame = make_labeled_frame(n_users=4, n_days=5, minutes_per_day=50, seed=2)
    splits = split_by_time(frame, holdout_user_fraction=0.25, seed=1)
    booster, metrics, cm, params, enc = train_lgbm(splits.train, splits.val, num_boost_round=15)
    params["split"] = splits.summary.model_dump(mode="json")
    proba = predict_proba(booster, splits.test, enc, "v3")
    return splits, (booster, metrics, cm, params, enc), proba


def _report(trained):
    splits, _, proba = trained
    return evaluate_predictions(
        splits.test, proba, seen_users=splits.summary.splits["train"].users, run_id="r"
    )


def test_report_counts_users_and_seen_vs_unseen(trained):
    splits, _, proba = trained
    report = _report(trained)
    held = splits.summary.holdout_users
    assert len(held) == 1
    assert report.rows == len(splits.test)
    assert [u.user_id for u in report.per_user] == sorted(set(splits.test["user_id"]))
    assert {u.user_id for u in report.per_user if not u.seen} == set(held)
    assert report.unseen_users is not None and report.seen_users is not None
    held_rows = int((splits.test["user_id"] == held[0]).sum())
    assert report.unseen_users.rows == held_rows
    assert report.seen_users.rows + report.unseen_users.rows == report.rows
    truth = np.array([LABEL_SET_V1.index(v) for v in splits.test["label"]])
    assert report.classification.accuracy == pytest.approx((proba.argmax(1) == truth).mean())


def test_reject_and_flap_rates_match_direct_computation(trained):
    splits, _, proba = trained
    report = _report(trained)
    assert report.reject.threshold == DEFAULT_REJECT_THRESHOLD
    assert report.reject.reject_rate == pytest.approx((proba.max(1) < 0.55).mean())
    assert report.reject.coverage == pytest.approx(1 - report.reject.reject_rate)
    raw = np.asarray(LABEL_SET_V1, dtype=object)[proba.argmax(1)]
    users = splits.test["user_id"].to_numpy()
    changes = steps = 0
    for u in np.unique(users):
        seq = raw[users == u]
        changes += int((seq[1:] != seq[:-1]).sum())
        steps += len(seq) - 1
    assert report.flap.raw == pytest.approx(changes / steps)
    assert 0 <= report.flap.smoothed <= 1


def test_calibration_and_gates_are_reported(trained):
    report = _report(trained)
    cal = report.calibration
    assert cal.n_bins == 15 and len(cal.reliability) == 15
    assert sum(b.count for b in cal.reliability) == report.rows
    names = [g.name for g in report.gates.gates]
    assert names == [
        "macro_f1",
        "weighted_f1",
        "breakidle_precision",
        "breakidle_recall",
        "min_class_precision",
        "reject_rate",
    ]
    assert report.gates.passed == all(g.status != "fail" for g in report.gates.gates)


def test_gates_on_the_seen_users_rows_alone(trained):
    splits, _, proba = trained
    report = _report(trained)
    seen = splits.test["user_id"].isin(splits.summary.splits["train"].users).to_numpy()
    truth = np.array([LABEL_SET_V1.index(v) for v in splits.test["label"]])[seen]
    summary = classification_summary(truth, proba[seen].argmax(1), LABEL_SET_V1)
    rejected = float((proba[seen].max(1) < DEFAULT_REJECT_THRESHOLD).mean())
    assert report.gates_seen == evaluate_gates(summary, rejected)
    assert report.gates_seen != report.gates  # the unseen user's rows change them
    everyone = evaluate_predictions(splits.test, proba, seen_users=set(splits.test["user_id"]))
    assert everyone.gates_seen is None  # no unseen user: the gates are already the seen ones
    old = report.model_dump(mode="json")
    del old["gates_seen"]  # an evaluation.json written before the field still loads
    assert EvaluationReport.model_validate(old).gates_seen is None


def test_written_evaluation_round_trips_and_is_deterministic(trained, layout):
    report = _report(trained)
    out = layout.evaluation_run_dir("2026-01-01_000000_run-abcd")
    stored = write_evaluation(out, report)
    assert stored.plots == [RELIABILITY_PNG, CONFUSION_PNG]
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(first) == {EVALUATION_FILE, RELIABILITY_PNG, CONFUSION_PNG}
    assert first[RELIABILITY_PNG][:8] == b"\x89PNG\r\n\x1a\n"
    json.loads(first[EVALUATION_FILE])  # strict JSON (no NaN)
    write_evaluation(out, report)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert load_evaluation(layout, "2026-01-01_000000_run-abcd") == stored
    assert load_evaluation(layout, "2026-01-01_000000_run-ffff") is None
    (out / EVALUATION_FILE).write_text("{broken")
    with pytest.raises(ArtifactError, match="re-run"):
        load_evaluation(layout, "2026-01-01_000000_run-abcd")


def test_empty_test_rows_are_an_input_error(trained):
    splits, _, proba = trained
    with pytest.raises(InputError, match="no test rows"):
        evaluate_predictions(splits.test.iloc[:0], proba[:0], seen_users=[])


def _save(layout, trained):
    _, (booster, metrics, cm, params, enc), _ = trained
    meta = build_metadata(
        label_set=list(LABEL_SET_V1), params=params, git_commit=None, data_provenance="synthetic"
    )
    run_id = generate_run_id(layout.models_dir)
    save_model_bundle(layout.run_dir(run_id), booster, meta, metrics, cm, enc)
    return run_id


def test_registry_lists_inspects_and_marks_active(trained, layout):
    first = _save(layout, trained)
    second = _save(layout, trained)
    set_active_model(layout, second)
    models = {m.run_id: m for m in list_models(layout)}
    assert set(models) == {first, second}
    assert models[second].active and not models[first].active
    assert models[first].gates_passed is None and models[first].test_macro_f1 is None
    assert models[first].val_macro_f1 == pytest.approx(trained[1][1]["macro_f1"])
    write_evaluation(layout.evaluation_run_dir(first), _report(trained))
    listed = {m.run_id: m for m in list_models(layout)}[first]
    assert listed.gates_passed is not None and listed.test_macro_f1 is not None
    info = inspect_model(layout, layout.run_dir(first))
    assert info.evaluation is not None and not info.active
    assert info.metadata.params["split"]["holdout_users"] == trained[0].summary.holdout_users
    (layout.run_dir(second) / "metadata.json").write_text("{}")
    broken = {m.run_id: m for m in list_models(layout)}[second]
    assert broken.problem is not None
    with pytest.raises(ArtifactError, match="checksum"):
        inspect_model(layout, layout.run_dir(second))
