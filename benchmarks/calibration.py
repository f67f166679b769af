"""Calibration bars (DESIGN §7) and the synthetic per-user calibration table.

Bars (each a ratio of two timings taken in this run):

- ``fit_temperature_calibrator`` on an (n, 8) array <= 30x one ``softmax(log p)`` pass over it;
- per-user store fitting (``fit_personalized_calibrators``: global fit, eligibility, 3-fold
  keep-or-fallback, per-user fits) for 1,000 users x 500 rows <= 10x one global temperature fit
  on the same 500k rows;
- ``CalibratorStore.calibrate_batch`` throughput over 1,000 personalized users (rows/s).

Then a table of synthetic users whose probabilities are over- or under-confident by different
factors: fitted on 5 days, evaluated on 3 later days (mean NLL and top-label ECE).
"""

from __future__ import annotations

import numpy as np

from _common import best_of, report_bar
from taskclf.core.metrics import ece_top_label, nll
from taskclf.infer.calibration import CalibratorStore
from taskclf.train.calibrate import (
    fit_personalized_calibrators,
    fit_temperature_calibrator,
)

K = 8


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _users(n_users: int, rows: int, days: int, seed: int, factors: np.ndarray | None = None):
    """Labels ~ softmax(z); user u's model reports softmax(a_u z)."""
    rng = np.random.default_rng(seed)
    n = n_users * rows
    z = rng.normal(scale=1.6, size=(n, K))
    y = np.minimum((rng.random(n)[:, None] > np.cumsum(_softmax(z), axis=1)).sum(axis=1), K - 1)
    a = np.exp(rng.normal(0.0, 0.45, size=n_users)) if factors is None else factors
    codes = np.repeat(np.arange(n_users), rows)
    p = _softmax(z * a[codes][:, None])
    day = np.tile(np.repeat(np.arange(days), rows // days), n_users)
    users = np.array([f"user-{i:04d}" for i in range(n_users)], dtype=object)[codes]
    return y, p, users, day, a


def bench_temperature_fit() -> None:
    y, p, _, _, _ = _users(200, 1000, 5, seed=1)

    def softmax_pass() -> None:
        _softmax(np.log(p))

    t_soft = best_of(softmax_pass, repeat=5)
    t_fit = best_of(lambda: fit_temperature_calibrator(y, p), repeat=3)
    print(
        f"softmax(log p) on {p.shape}: {t_soft * 1e3:.1f} ms; temperature fit {t_fit * 1e3:.1f} ms"
    )
    report_bar("temperature_fit_vs_softmax_pass", t_fit / t_soft, 30.0)


def bench_store_fit() -> None:
    y, p, users, day, _ = _users(1000, 500, 5, seed=2)
    t_global = best_of(lambda: fit_temperature_calibrator(y, p), repeat=2)
    t_store = best_of(lambda: fit_personalized_calibrators(y, p, users, day), repeat=2)
    fit = fit_personalized_calibrators(y, p, users, day)
    print(
        f"global temperature fit on {len(y)} rows: {t_global:.2f} s; 1000-user store fit: "
        f"{t_store:.2f} s ({len(fit.user_calibrators)} users kept)"
    )
    report_bar("store_fit_1000x500_vs_global_fit", t_store / t_global, 10.0)
    store = CalibratorStore(fit.global_calibrator, fit.user_calibrators, method="temperature")
    t_batch = best_of(lambda: store.calibrate_batch(p, users), repeat=3)
    t_plain = best_of(lambda: store.global_calibrator.calibrate(p), repeat=3)
    print(
        f"calibrate_batch over {len(store.user_ids)} personal users: {t_batch * 1e3:.0f} ms "
        f"({t_batch / t_plain:.2f}x one global calibrate on the same rows)"
    )
    report_bar("calibrate_batch_rows_per_second", len(y) / t_batch, 500_000, higher_is_better=True)


def synthetic_table() -> None:
    factors = np.array([3.0, 2.0, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4])
    fit_days, test_days = 5, 3
    y, p, users, day, a = _users(len(factors), 960, fit_days + test_days, seed=3, factors=factors)
    fit_rows = day < fit_days
    fit = fit_personalized_calibrators(y[fit_rows], p[fit_rows], users[fit_rows], day[fit_rows])
    store = CalibratorStore(fit.global_calibrator, fit.user_calibrators, method="temperature")
    reports = {r.user_id: r for r in fit.users}
    print(f"\nglobal temperature {store.global_calibrator.temperature:.3f}")  # type: ignore[attr-defined]
    head = "user        a_u   T_user kept  NLL raw/global/store       ECE raw/global/store"
    print(head)
    rows = []
    for uid, factor in zip(sorted(reports), a, strict=True):
        test = (users == uid) & ~fit_rows
        yt, pt = y[test], p[test]
        q_g = store.global_calibrator.calibrate(pt)
        q_s = store.calibrate_batch(pt, users[test])
        r = reports[uid]
        nlls = (nll(yt, pt), nll(yt, q_g), nll(yt, q_s))
        eces = (ece_top_label(yt, pt), ece_top_label(yt, q_g), ece_top_label(yt, q_s))
        rows.append((*nlls, *eces))
        print(
            f"{uid}  {factor:4.1f}  {r.personal_temperature or float('nan'):6.3f}  "
            f"{'yes' if r.kept else 'no ':4} {nlls[0]:.3f}/{nlls[1]:.3f}/{nlls[2]:.3f}   "
            f"{eces[0]:.3f}/{eces[1]:.3f}/{eces[2]:.3f}"
        )
    m = np.mean(rows, axis=0)
    print(
        f"mean                          {m[0]:.3f}/{m[1]:.3f}/{m[2]:.3f}   "
        f"{m[3]:.3f}/{m[4]:.3f}/{m[5]:.3f}"
    )


def main() -> None:
    bench_temperature_fit()
    bench_store_fit()
    synthetic_table()


if __name__ == "__main__":
    main()
