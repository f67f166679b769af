"""Held-out comparison of calibration: raw model vs global calibrator vs per-user store.

Measured on the bundle's TEST days (the split recorded in the bundle), which neither training,
early stopping nor calibration saw. This is how the demo and the README show whether
personalization helps each user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.errors import InputError
from taskclf.core.metrics import ece_top_label, nll
from taskclf.core.model_io import load_model_bundle
from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.calibration import load_calibrator_store
from taskclf.train.dataset import assign_recorded_split, load_labeled_dataset
from taskclf.train.evaluate import recorded_split
from taskclf.train.lgbm import predict_proba


@dataclass(frozen=True)
class CalibrationComparison:
    """Per-user and overall held-out NLL / top-label ECE of the three probability sources."""

    table: pd.DataFrame  # one row per user + an "ALL" row
    n_rows: int


def _metrics(y: NDArray[np.int64], p: NDArray[np.float64]) -> tuple[float, float]:
    return nll(y, p), ece_top_label(y, p)


def compare_calibration(
    layout: Layout,
    model_dir: Path,
    store_dir: Path,
    date_from: date | None = None,
    date_to: date | None = None,
) -> CalibrationComparison:
    """Compare raw, global-calibrated and store-calibrated probabilities on test days."""
    booster, metadata, encoders = load_model_bundle(model_dir)
    start = date_from or metadata.train_date_from
    end = date_to or metadata.train_date_to
    if start is None or end is None:
        raise InputError(f"model bundle '{model_dir}' records no training range; give dates")
    split = recorded_split(metadata, model_dir)
    if split is None:
        raise InputError(f"model bundle '{model_dir}' records no split; cannot find test days")
    data = load_labeled_dataset(layout, start, end, schema_version=metadata.schema_version)
    test = assign_recorded_split(data.frame, split).test
    if test.empty:
        raise InputError(f"model bundle '{model_dir}' has no labeled test rows in {start}..{end}")
    store = load_calibrator_store(store_dir)
    raw = predict_proba(booster, test, encoders, metadata.schema_version)
    users = test["user_id"].astype(str).to_numpy(dtype=object)
    index = {label: i for i, label in enumerate(LABEL_SET_V1)}
    y = test["label"].map(index).to_numpy(dtype=np.int64)
    glob = store.global_calibrator.calibrate(raw)
    pers = store.calibrate_batch(raw, users)
    rows = []
    for user in [*sorted(set(users.tolist())), "ALL"]:
        mask = np.ones(len(users), bool) if user == "ALL" else users == user
        r, g, s = (_metrics(y[mask], p[mask]) for p in (raw, glob, pers))
        rows.append(
            {
                "user_id": user,
                "rows": int(mask.sum()),
                "personalized": user in store.user_calibrators,
                "nll_raw": r[0],
                "nll_global": g[0],
                "nll_store": s[0],
                "ece_raw": r[1],
                "ece_global": g[1],
                "ece_store": s[1],
            }
        )
    return CalibrationComparison(pd.DataFrame(rows), len(test))
