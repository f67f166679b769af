"""Per-user calibration on real people: the mouse-stress study in ``shared/data/real``.

71 office workers' computer-mouse sessions (Banholzer et al., "Computer mouse movements
indicate work stress"), each with the person's own valence and arousal ratings on 1-7 scales.
Not task types, but real multi-user labels where people use the scale differently and label
few sessions (1-62, median 30): the conditions personalization has to survive.

Each person's sessions in file order: the first half train one LightGBM model for everyone, the
next quarter is the calibration set, the last quarter is held out. Each session counts as its
own day (the file has no dates), and eligibility asks for 8 sessions and 2 distinct ratings
(the product's defaults, 200 minutes over 3 days, count minutes, not sessions).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from conftest import REAL_DATA
from taskclf.core.metrics import ece_top_label, nll
from taskclf.train._calibration_math import blend_isotonic
from taskclf.train._personalize import (
    DEFAULT_PRIOR_POSITIVES,
    PersonalizationFit,
    fit_personalized_calibrators,
)
from taskclf.train.calibrate import fit_isotonic_calibrator

FEATURES = ["n_traj", "speed", "accuracy", "clicks", "wheels", "afternoon"]
#: Nats per session. A kept user is scored on 5-15 held-out sessions, a small sample.
KEPT_USER_TOLERANCE = 0.05


@dataclass(frozen=True)
class Split:
    y_cal: np.ndarray
    p_cal: np.ndarray
    users_cal: np.ndarray
    order_cal: np.ndarray
    y_test: np.ndarray
    p_test: np.ndarray
    users_test: np.ndarray


@cache
def _split(target: str) -> Split:
    df = pd.read_csv(REAL_DATA / "mouse_stress_nbanho_data.csv")
    ratings = sorted(df[target].unique())
    df["y"] = df[target].map({r: i for i, r in enumerate(ratings)})
    df["afternoon"] = df["daytime"].eq("afternoon").astype(int)
    df["pos"] = df.groupby("user").cumcount()
    frac = df["pos"] / df.groupby("user")["user"].transform("size")
    train, cal, test = df[frac < 0.5], df[(frac >= 0.5) & (frac < 0.75)], df[frac >= 0.75]
    params = {
        "objective": "multiclass",
        "num_class": len(ratings),
        "min_data_in_leaf": 10,
        "seed": 0,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    booster = lgb.train(params, lgb.Dataset(train[FEATURES], train["y"]), num_boost_round=100)
    return Split(
        cal["y"].to_numpy(),
        np.asarray(booster.predict(cal[FEATURES])),
        cal["user"].to_numpy(),
        cal["pos"].to_numpy(),
        test["y"].to_numpy(),
        np.asarray(booster.predict(test[FEATURES])),
        test["user"].to_numpy(),
    )


def _fit(s: Split, method: str, **kwargs: float) -> PersonalizationFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isotonic on few rows warns, as it should
        return fit_personalized_calibrators(
            s.y_cal,
            s.p_cal,
            s.users_cal,
            s.order_cal,
            method=method,  # type: ignore[arg-type]
            min_windows=8,
            min_days=8,
            min_labels=2,
            **kwargs,
        )


def _kept_regressions(s: Split, fit: PersonalizationFit) -> dict[str, float]:
    """Held-out NLL of each kept user: their calibrator minus the global one."""
    out = {}
    for user, cal in fit.user_calibrators.items():
        mine = s.users_test == user
        if mine.any():
            y, p = s.y_test[mine], s.p_test[mine]
            out[user] = nll(y, cal.calibrate(p)) - nll(y, fit.global_calibrator.calibrate(p))
    return out


def _store_proba(s: Split, fit: PersonalizationFit) -> np.ndarray:
    q = fit.global_calibrator.calibrate(s.p_test)
    for user, cal in fit.user_calibrators.items():
        mine = s.users_test == user
        if mine.any():
            q[mine] = cal.calibrate(s.p_test[mine])
    return q


@pytest.mark.parametrize("target", ["valence", "arousal"])
@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_calibration_earns_its_confidence_on_real_people(target: str, method: str) -> None:
    s = _split(target)
    fit = _fit(s, method)
    raw, glob = s.p_test, fit.global_calibrator.calibrate(s.p_test)
    store = _store_proba(s, fit)
    assert nll(s.y_test, glob) < nll(s.y_test, raw) - 0.3  # the raw model is over-confident
    assert ece_top_label(s.y_test, glob) < ece_top_label(s.y_test, raw) / 2
    assert fit.user_calibrators, "nobody kept a personal calibrator"
    assert nll(s.y_test, store) <= nll(s.y_test, glob)
    worst = max(_kept_regressions(s, fit).values())
    assert worst <= KEPT_USER_TOLERANCE
    if method == "isotonic":  # per-class maps fix what one temperature cannot
        temperature = _fit(s, "temperature").global_calibrator.calibrate(s.p_test)
        assert nll(s.y_test, glob) < nll(s.y_test, temperature) + 0.05  # no zero blocks
        assert nll(s.y_test, store) < nll(s.y_test, glob) - 0.04
        assert ece_top_label(s.y_test, store) < ece_top_label(s.y_test, glob) - 0.02


def test_unblended_isotonic_maps_cost_real_people_dearly() -> None:
    """Why per-user maps are blended with the global ones (``train._personal_cv`` doc): maps
    fitted on a person's few sessions overfit them, and the keep test, on the same few
    sessions, lets some through."""
    s = _split("valence")
    worst = max(_kept_regressions(s, _fit(s, "isotonic", prior_positives=0)).values())
    assert worst > 10 * KEPT_USER_TOLERANCE


def test_blended_maps_keep_every_person_near_the_global_calibrator() -> None:
    """The numbers of the ``train._personal_cv`` doc: every person with 8 calibration sessions
    and 2 ratings gets their own maps (no keep test), unblended and blended."""
    s = _split("valence")
    k = s.p_cal.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glob = fit_isotonic_calibrator(s.y_cal, s.p_cal, k)
        diffs: dict[str, list[float]] = {"own": [], "blended": []}
        for user in sorted(set(s.users_cal.tolist())):
            cal, test = s.users_cal == user, s.users_test == user
            if cal.sum() < 8 or len(set(s.y_cal[cal].tolist())) < 2 or not test.any():
                continue
            own = fit_isotonic_calibrator(s.y_cal[cal], s.p_cal[cal], k)
            n = np.bincount(s.y_cal[cal], minlength=k)
            blended = blend_isotonic(own, glob, n / (n + DEFAULT_PRIOR_POSITIVES))
            y, p = s.y_test[test], s.p_test[test]
            base = nll(y, glob.calibrate(p))
            diffs["own"].append(nll(y, own.calibrate(p)) - base)
            diffs["blended"].append(nll(y, blended.calibrate(p)) - base)
    own_d, blended_d = np.array(diffs["own"]), np.array(diffs["blended"])
    assert own_d.size == 35
    assert (own_d > 0.1).sum() >= 10 and own_d.max() > 1.0
    assert blended_d.max() < 0.1 and blended_d.mean() < -0.05
