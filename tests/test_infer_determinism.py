"""Two ``taskclf infer batch`` runs over the same home write byte-identical files (DESIGN §7)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from _online_helpers import DAYS, FIRST_DAY, TrainedTemplate, trained_template
from taskclf.cli.main import run
from taskclf.core.config import load_config
from taskclf.core.paths import Layout
from taskclf.infer.batch import run_batch_inference
from taskclf.infer.resolve import resolve_settings

LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> TrainedTemplate:
    return trained_template(tmp_path_factory.mktemp("trained"))


def _outputs(layout: Layout) -> dict[str, bytes]:
    files = [
        *layout.predictions_dir.rglob("*"),
        *layout.reports_dir.rglob("*"),
    ]
    return {str(p.relative_to(layout.home)): p.read_bytes() for p in sorted(files) if p.is_file()}


def _batch(layout: Layout) -> None:
    args = ["infer", "batch", "--from", FIRST_DAY.isoformat(), "--to", LAST_DAY.isoformat()]
    assert run(["--home", str(layout.home), *args]) == 0


def test_two_batch_runs_write_identical_bytes(template: TrainedTemplate, tmp_path: Path) -> None:
    layout = Layout.resolve(tmp_path / "home")
    shutil.copytree(template.layout.home, layout.home)
    _batch(layout)
    first = _outputs(layout)
    _batch(layout)
    second = _outputs(layout)

    users = sorted(template.timezones)
    parquet = [
        k for k in first if k.startswith("artifacts/predictions/") and k.endswith(".parquet")
    ]
    # every user has predictions on each local day of the range (plus none elsewhere)
    assert len(parquet) >= len(users) * DAYS
    assert "artifacts/predictions/segments.json" in first
    for name in ("daily.json", "daily.csv", "daily.parquet", "daily.png"):
        assert sum(k.endswith(name) for k in first) >= len(users) * DAYS, name
    predictions = pd.concat([pd.read_parquet(layout.home / k) for k in parquet], ignore_index=True)
    assert sorted(predictions["user_id"].unique()) == users
    assert len(predictions) > 2000

    assert sorted(second) == sorted(first)
    changed = [k for k in first if first[k] != second[k]]
    assert changed == []


def test_batch_reports_progress_counts_the_reports(
    template: TrainedTemplate, tmp_path: Path
) -> None:
    layout = Layout.resolve(tmp_path / "home")
    shutil.copytree(template.layout.home, layout.home)
    messages: list[str] = []
    result = run_batch_inference(
        layout,
        FIRST_DAY,
        LAST_DAY,
        settings=resolve_settings(layout),
        config=load_config(layout),
        progress=messages.append,
    )
    n = len(result.report_files) // 4  # json, csv, parquet and png per report
    counted = [m for m in messages if m.startswith("writing daily reports")]
    assert n >= len(template.timezones) * DAYS
    assert counted == [f"writing daily reports ({i:,}/{n:,})" for i in range(n + 1)]


def test_a_bad_label_store_or_user_id_fails_before_anything_is_written(
    template: TrainedTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = Layout.resolve(tmp_path / "home")
    shutil.copytree(template.layout.home, layout.home)
    args = ["infer", "batch", "--from", FIRST_DAY.isoformat(), "--to", FIRST_DAY.isoformat()]
    layout.labels_db.write_bytes(b"garbage" * 100)
    for suffix in ("-wal", "-shm"):
        layout.labels_db.with_name(layout.labels_db.name + suffix).unlink(missing_ok=True)
    assert run(["--home", str(layout.home), *args]) == 2
    assert "file is not a database" in capsys.readouterr().err
    assert _outputs(layout) == {}
    shutil.copyfile(template.layout.labels_db, layout.labels_db)
    part = next(layout.features_dir("v3").glob(f"date={FIRST_DAY}/*.parquet"))
    frame = pd.read_parquet(part)
    frame["user_id"] = "../x"
    frame.to_parquet(part, index=False)
    assert run(["--home", str(layout.home), *args]) == 2
    assert "contains a path separator: '../x'" in " ".join(capsys.readouterr().err.split())
    assert _outputs(layout) == {}


def test_the_baseline_maps_through_the_homes_taxonomy(
    template: TrainedTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from taskclf.infer.taxonomy import load_taxonomy, map_labels

    layout = Layout.resolve(tmp_path / "home")
    shutil.copytree(template.layout.home, layout.home)
    day = FIRST_DAY.isoformat()
    assert run(["--home", str(layout.home), "infer", "batch", "--from", day, "--to", day]) == 0
    capsys.readouterr()
    args = ["infer", "baseline", "--from", day, "--to", day]
    assert run(["--home", str(layout.home), *args]) == 0
    out = " ".join(capsys.readouterr().out.split())
    n_users = len(template.timezones)
    assert f"note: replaced {n_users} day file(s) of predictions by model {template.run_id}" in out
    assert run(["--home", str(layout.home), *args]) == 0  # baseline over baseline: no note
    assert "note: replaced" not in capsys.readouterr().out
    got = pd.concat(
        [pd.read_parquet(p) for p in layout.predictions_dir.glob("date=*/*.parquet")],
        ignore_index=True,
    )
    assert set(got["model_id"]) == {"baseline-rules"}
    taxonomy = load_taxonomy(layout.taxonomy_file)
    want = map_labels(got["predicted_label"].tolist(), taxonomy)
    assert got["mapped_label"].tolist() == want
    assert set(want) - set(got["predicted_label"])  # bucket names, not the core labels
    layout.taxonomy_file.write_text("buckets: [", encoding="utf-8")
    assert run(["--home", str(layout.home), *args]) == 2  # a bad taxonomy is an error
