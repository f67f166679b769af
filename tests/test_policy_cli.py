"""CLI: train calibrate -> train tune-reject --write-policy -> policy show/create/remove.

The labeled rows come from a synthetic frame handed to ``train.dataset.load_labeled_features``
(the only stand-in); splitting, encoding, the booster, the store, the tuning and the policy are
the real ones.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from taskclf.cli.main import run
from taskclf.core.encoding import encode_features, feature_columns, fit_categorical_encoders
from taskclf.core.inference_policy import load_inference_policy, validate_policy
from taskclf.core.model_io import build_metadata, save_model_bundle
from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.calibration import load_calibrator_store
from taskclf.train import dataset

RUN = "2026-03-01_120000_run-cc03"
ROWS_PER_DAY = 90


def _frame(users: dict[str, float], days: int, seed: int) -> pd.DataFrame:
    """v3-shaped labeled rows; ``users`` maps user -> how noisy its label signal is."""
    rng = np.random.default_rng(seed)
    parts = []
    for user, noise in users.items():
        n = days * ROWS_PER_DAY
        day = np.repeat(np.arange(days), ROWS_PER_DAY)
        minute = np.tile(np.arange(ROWS_PER_DAY), days)
        ts = pd.Timestamp("2026-01-05T08:00:00Z") + pd.to_timedelta(day, "D")
        ts = ts + pd.to_timedelta(minute, "min")
        part = {c: rng.random(n) for c in feature_columns("v3")}
        label_idx = rng.integers(0, len(LABEL_SET_V1), size=n)
        part["keys_per_min"] = label_idx + rng.normal(scale=noise, size=n)
        part |= {"app_id": "code", "app_category": "editor", "domain_category": "non_browser"}
        part |= {"user_id": user, "bucket_start_ts": ts, "schema_version": "v3"}
        part["label"] = np.asarray(LABEL_SET_V1, dtype=object)[label_idx]
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def home(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> Layout:
    train = _frame({"t": 0.8}, days=4, seed=1)
    encoders = fit_categorical_encoders(train, "v3")
    y = train["label"].map({lab: i for i, lab in enumerate(LABEL_SET_V1)}).to_numpy()
    params = {"objective": "multiclass", "num_class": 8, "verbose": -1, "num_threads": 1}
    booster = lgb.train(
        params, lgb.Dataset(encode_features(train, encoders, "v3"), label=y), num_boost_round=10
    )
    metadata = build_metadata(
        label_set=LABEL_SET_V1,
        schema_version="v3",
        train_date_from=datetime(2026, 1, 5, tzinfo=UTC).date(),
        train_date_to=datetime(2026, 1, 24, tzinfo=UTC).date(),
        git_commit="0" * 40,
    )
    save_model_bundle(layout.run_dir(RUN), booster, metadata, {}, pd.DataFrame(), encoders)
    labeled = _frame({"amy": 0.3, "bob": 0.8, "cat": 2.5}, days=20, seed=2)

    def fake_load(
        layout_: Layout, date_from: object, date_to: object, **kw: object
    ) -> pd.DataFrame:
        assert layout_ == layout and kw["schema_version"] == "v3"
        return labeled

    monkeypatch.setattr(dataset, "load_labeled_features", fake_load)
    return layout


def _cli(layout: Layout, *args: str) -> int:
    return run(["--home", str(layout.home), *args])


def test_calibrate_tune_and_policy_commands(home: Layout, capsys: pytest.CaptureFixture) -> None:
    assert _cli(home, "train", "calibrate", "--model-dir", f"models/{RUN}") == 0
    out = capsys.readouterr().out
    for user in ("amy", "bob", "cat"):
        assert user in out
    assert "Store written to" in out
    store = load_calibrator_store(home.calibrator_store_dir)
    assert store.model_bundle_id == RUN and store.model_schema_hash == "7f29b4b8795e"
    report = json.loads((home.calibrator_store_dir / "calibration_report.json").read_text())
    assert [u["user_id"] for u in report["users"]] == ["amy", "bob", "cat"]
    assert all(u["labeled_days"] == 3 for u in report["users"])  # the validation days only

    assert _cli(home, "train", "tune-reject", "--model-dir", f"models/{RUN}", "--write-policy") == 0
    out = capsys.readouterr().out
    assert "Inference policy written to" in out
    tuning = json.loads((home.calibrator_store_dir / "reject_tuning.json").read_text())
    policy = load_inference_policy(home)
    assert policy is not None and policy.source == "tune-reject"
    assert policy.reject_threshold == tuning["global_choice"]["threshold"]
    eligible = {u["user_id"] for u in report["users"] if u["is_eligible"]}
    assert set(store.user_ids) <= eligible  # every eligible user, kept calibrator or not
    assert set(policy.per_user_reject_thresholds) == eligible
    assert policy.calibrator_store_dir == "artifacts/calibrator_store"
    validate_policy(policy, home)

    assert _cli(home, "policy", "show") == 0
    assert "valid:" in capsys.readouterr().out

    assert (
        _cli(home, "policy", "create", "--model-dir", f"models/{RUN}", "--reject-threshold", "0.4")
        == 0
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "note: it replaced the policy from tune-reject (threshold" in out
    created = load_inference_policy(home)
    assert created is not None and created.reject_threshold == 0.4
    assert created.calibrator_store_dir == "artifacts/calibrator_store"  # the default store
    assert created.per_user_reject_thresholds == {}

    assert _cli(home, "policy", "remove") == 0
    assert _cli(home, "policy", "show") == 0
    assert "No inference policy" in capsys.readouterr().out


def test_isotonic_option_and_custom_output(home: Layout, tmp_path: Path) -> None:
    out_dir = tmp_path / "iso-store"
    args = ["train", "calibrate", "--model-dir", str(home.run_dir(RUN)), "--method", "isotonic"]
    with pytest.warns(UserWarning, match="fewer than 1000 rows"):
        assert _cli(home, *args, "--out", str(out_dir), "--min-days", "2") == 0
    assert load_calibrator_store(out_dir).method == "isotonic"
    # a global calibrator with one map too few is refused naming it, not at predict time
    from taskclf.core.errors import ArtifactError
    from taskclf.infer.resolve import load_pipeline_config, resolve_settings

    body = json.loads((out_dir / "global.json").read_text())
    (out_dir / "global.json").write_text(json.dumps(body | {"regressors": body["regressors"][1:]}))
    settings = resolve_settings(home, model_dir=home.run_dir(RUN), calibrator_store=out_dir)
    with pytest.raises(ArtifactError, match="the global calibrator has 7 classes, the model 8"):
        load_pipeline_config(settings)


def test_errors_exit_with_code_2(home: Layout, capsys: pytest.CaptureFixture) -> None:
    assert _cli(home, "train", "calibrate") == 2  # no --model-dir and no active model
    assert "no active model" in capsys.readouterr().err
    assert _cli(home, "train", "calibrate", "--model-dir", "models/nope") == 2
    assert (
        _cli(
            home,
            "train",
            "calibrate",
            "--model-dir",
            str(home.run_dir(RUN)),
            "--from",
            "2026-13-01",
        )
        == 2
    )
    assert "YYYY-MM-DD" in capsys.readouterr().err
    # a store fitted for another model is refused before any work
    other = home.home / "other-store"
    assert (
        _cli(home, "train", "calibrate", "--model-dir", str(home.run_dir(RUN)), "--out", str(other))
        == 0
    )
    manifest = json.loads((other / "store.json").read_text())
    (other / "store.json").write_text(json.dumps(manifest | {"model_bundle_id": "x"}))
    capsys.readouterr()
    args = ["train", "tune-reject", "--model-dir", str(home.run_dir(RUN))]
    assert _cli(home, *args, "--calibrator-store", str(other)) == 2
    assert "fitted for model 'x'" in capsys.readouterr().err
    assert (
        _cli(
            home,
            "policy",
            "create",
            "--model-dir",
            str(home.run_dir(RUN)),
            "--calibrator-store",
            str(other),
        )
        == 2
    )
    assert (
        _cli(
            home,
            "policy",
            "create",
            "--model-dir",
            str(home.run_dir(RUN)),
            "--reject-threshold",
            "2",
        )
        == 2
    )
    assert load_inference_policy(home) is None


def test_calibrate_out_on_a_folder_that_is_not_a_store_fails_before_the_fit(
    home: Layout, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskclf.train import calibrate as calibrate_mod

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fit ran")

    monkeypatch.setattr(calibrate_mod, "fit_calibrator_store_with_report", no_fit)
    mine = home.home.parent / "my-folder"
    (mine / "notes").mkdir(parents=True)
    (mine / "todo.txt").write_text("keep me")
    args = ["train", "calibrate", "--model-dir", str(home.run_dir(RUN))]
    assert _cli(home, *args, "--out", str(mine)) == 2
    assert "not a calibrator store" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes", "todo.txt"]
    assert (mine / "todo.txt").read_text() == "keep me"
    assert _cli(home, *args, "--out", str(home.models_dir)) == 2  # the home's own data
    assert "inside the taskclf home's own data" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("model_schema_hash", "000000000000", "model_schema_hash '000000000000' but the bundle"),
        ("calibration_method", "isotonic", "calibration_method 'isotonic' but the store"),
        ("model_label_set", sorted(LABEL_SET_V1, reverse=True), "model_label_set ['Write'"),
    ],
)
def test_inference_refuses_a_policy_that_does_not_match_its_model(
    home: Layout, field: str, value: object, error: str
) -> None:
    from taskclf.core.inference_policy import PolicyError
    from taskclf.infer.resolve import load_pipeline_config, resolve_settings

    run_dir = str(home.run_dir(RUN))
    assert _cli(home, "train", "calibrate", "--model-dir", run_dir, "--min-days", "2") == 0
    assert _cli(home, "policy", "create", "--model-dir", f"models/{RUN}") == 0
    assert load_pipeline_config(resolve_settings(home)).calibrator_store is not None
    policy = json.loads(home.inference_policy.read_text())
    home.inference_policy.write_text(json.dumps(policy | {field: value}))
    with pytest.raises(PolicyError, match=re.escape(error)):
        load_pipeline_config(resolve_settings(home))
    assert _cli(home, "policy", "show") == 2  # shown, then said to be invalid
    # the policy's per-user thresholds still apply with the model given by flag: refused too
    with pytest.raises(PolicyError, match=re.escape(error)):
        load_pipeline_config(resolve_settings(home, model_dir=home.run_dir(RUN)))
    # flags for everything the policy would give: the policy is not used
    settings = resolve_settings(
        home, model_dir=home.run_dir(RUN), calibrator_store=home.calibrator_store_dir,
        reject_threshold=0.5,
    )  # fmt: skip
    assert load_pipeline_config(settings).reject_threshold == 0.5
