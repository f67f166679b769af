"""The one-row fast predictor equals ``booster.predict`` bit for bit, on each of its paths.

Paths: the compiled :class:`~taskclf.infer._forest.Forest` (taskclf's multiclass models),
LightGBM's prepared C single-row call (other models), ``booster.predict`` itself (a LightGBM
without those symbols).
"""

from __future__ import annotations

import gc

import lightgbm as lgb
import numpy as np
import pytest
from numpy.typing import NDArray

from taskclf.infer import _fast_predict
from taskclf.infer._fast_predict import SingleRowPredictor
from taskclf.infer._forest import Forest

PATHS = ("compiled", "c_api", "python")

N_FEATURES = 7
CATEGORICAL = [5, 6]  # integer codes, as MatrixEncoder produces for categorical columns


def _rows(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    x = rng.normal(size=(n, N_FEATURES))
    numeric = x[:, :5]
    numeric[rng.random(numeric.shape) < 0.15] = np.nan
    x[:, 5] = rng.integers(0, 12, n)  # codes 10 and 11 never occur in training
    x[:, 6] = rng.integers(0, 4, n)
    x[rng.random(n) < 0.1, 6] = np.nan
    return x


def _train(seed: int, *, rounds: int = 12, early_stopping: bool = False) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = _rows(rng, 600)
    x[:, 5] = rng.integers(0, 10, 600)
    y = (np.nan_to_num(x[:, 0]) > 0).astype(int) + 2 * (x[:, 5] % 2 == 0)
    params = {
        "objective": "multiclass",
        "num_class": 4,
        "verbose": -1,
        "num_threads": 1,
        "seed": seed,
        "min_data_in_leaf": 5,
        "deterministic": True,
    }
    train = lgb.Dataset(x[:450], y[:450], categorical_feature=CATEGORICAL)
    if not early_stopping:
        return lgb.train(params, train, num_boost_round=rounds)
    valid = lgb.Dataset(x[450:], y[450:], reference=train)
    params |= {"learning_rate": 0.5}
    return lgb.train(
        params,
        train,
        num_boost_round=200,
        valid_sets=[valid],
        keep_training_booster=True,  # keeps the trees after the best iteration
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    return _train(0)


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on one prediction path (the others switched off)."""
    if request.param != "compiled":
        monkeypatch.setattr(_fast_predict.Forest, "from_booster", lambda *a, **k: None)
    if request.param == "python":
        monkeypatch.setattr(_fast_predict, "_c_api", lambda: None)
    return str(request.param)


def _check_path(predictor: SingleRowPredictor, path: str) -> None:
    assert predictor.compiled == (path == "compiled")
    assert predictor.fast == (path != "python")


def _assert_equal_to_booster(
    predictor: SingleRowPredictor, booster: lgb.Booster, seed: int
) -> None:
    x = _rows(np.random.default_rng(seed), 200)
    for i in range(len(x)):
        row = x[i : i + 1]
        expected = booster.predict(row, num_threads=1)
        got = predictor.predict(row)
        assert got.shape == expected.shape == (1, booster.num_model_per_iteration())
        assert np.array_equal(got, expected), f"row {i}: {got} != {expected}"


def test_fast_path_equals_booster_predict(booster: lgb.Booster, path: str) -> None:
    predictor = SingleRowPredictor(booster, num_threads=1)
    _check_path(predictor, path)
    _assert_equal_to_booster(predictor, booster, seed=1)
    # also equal to the default-threads batch predict of all rows at once
    x = _rows(np.random.default_rng(2), 50)
    batch = booster.predict(x)
    assert np.array_equal(np.vstack([predictor.predict(r) for r in x]), batch)


def test_filling_the_row_buffer_in_place_equals_passing_a_row(
    booster: lgb.Booster, path: str
) -> None:
    predictor = SingleRowPredictor(booster)
    _check_path(predictor, path)
    x = _rows(np.random.default_rng(3), 20)
    for row in x:
        predictor.row[0] = row
        in_place = predictor.predict(predictor.row)
        assert np.array_equal(in_place, booster.predict(row[None, :]))
    first = predictor.predict(x[0])
    predictor.predict(x[1])
    assert np.array_equal(first, booster.predict(x[:1]))  # results are not overwritten later


def test_uses_the_best_iteration_like_booster_predict(path: str) -> None:
    booster = _train(4, early_stopping=True)
    assert 0 < booster.best_iteration < booster.current_iteration()
    predictor = SingleRowPredictor(booster)
    _check_path(predictor, path)
    assert predictor.num_iteration == booster.best_iteration
    _assert_equal_to_booster(predictor, booster, seed=5)
    x = _rows(np.random.default_rng(6), 30)
    all_trees = booster.predict(x, num_iteration=-1)
    assert not np.array_equal(np.vstack([predictor.predict(r) for r in x]), all_trees)


def test_other_predictions_on_the_booster_do_not_change_it(booster: lgb.Booster) -> None:
    # LightGBM re-prepares its booster-wide single-row state for other settings; the
    # predictor's private copy of the trees is not affected.
    predictor = SingleRowPredictor(booster)
    x = _rows(np.random.default_rng(7), 5)
    booster.predict(x, num_iteration=2)
    booster.predict(x[:1], num_iteration=3)
    _assert_equal_to_booster(predictor, booster, seed=8)


def test_two_models_interleaved_as_after_a_policy_swap(booster: lgb.Booster, path: str) -> None:
    other = _train(9, rounds=20)
    old, new = SingleRowPredictor(booster), SingleRowPredictor(other)
    _check_path(new, path)
    x = _rows(np.random.default_rng(10), 40)
    for row in x:
        assert np.array_equal(new.predict(row), other.predict(row[None, :]))
        assert np.array_equal(old.predict(row), booster.predict(row[None, :]))
    assert not np.array_equal(old.predict(x[0]), new.predict(x[0]))


def test_predictor_outlives_the_callers_booster(path: str) -> None:
    booster = _train(11)
    x = _rows(np.random.default_rng(12), 10)
    expected = booster.predict(x)
    predictor = SingleRowPredictor(booster)
    _check_path(predictor, path)
    del booster
    gc.collect()
    assert np.array_equal(np.vstack([predictor.predict(r) for r in x]), expected)
    del predictor
    gc.collect()  # frees the prepared C state (must not crash)


def test_a_row_of_the_wrong_width_is_refused(booster: lgb.Booster, path: str) -> None:
    predictor = SingleRowPredictor(booster)
    _check_path(predictor, path)
    with pytest.raises(ValueError):
        predictor.predict(np.zeros((1, N_FEATURES + 1)))


def _hard_rows(forest: Forest, rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Rows at and next to the split thresholds, with NaN, zeros, -0.0, tiny, huge and
    negative values and unknown category codes mixed in."""
    x = rng.normal(size=(n, forest.n_features)) * 3
    for j in range(forest.n_features):
        at = forest.threshold[forest.feature == j]
        if at.size:
            pick = at[rng.integers(at.size, size=n)]
            x[:, j] = np.where(rng.random(n) < 0.5, pick, x[:, j])
    x = np.where(rng.random(x.shape) < 0.15, np.nextafter(x, np.inf), x)
    specials = np.array([np.nan, 0.0, -0.0, 1e-40, -1e-40, 1e300, -3.0, 11.0, 2.5e9])
    mask = rng.random(x.shape) < 0.2
    x[mask] = specials[rng.integers(specials.size, size=int(mask.sum()))]
    return x


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"zero_as_missing": True},  # missing type "zero"
        {"use_missing": False},  # missing type "none"
        {"max_cat_to_onehot": 16},  # one-vs-rest categorical splits
        {"num_leaves": 4, "min_data_in_leaf": 200},  # trees of one leaf among them
    ],
)
def test_compiled_forest_equals_booster_predict_on_hard_rows(extra: dict[str, object]) -> None:
    rng = np.random.default_rng(21)
    x = _rows(rng, 800)
    x[:, 5] = rng.integers(0, 10, 800)
    y = (np.nan_to_num(x[:, 0]) > 0).astype(int) + 2 * (x[:, 5] % 2 == 0)
    x[rng.random(x.shape) < 0.1] = 0.0
    params = {"objective": "multiclass", "num_class": 4, "verbose": -1, "num_threads": 1,
              "deterministic": True, "min_data_in_leaf": 5, **extra}  # fmt: skip
    booster = lgb.train(
        params, lgb.Dataset(x, y, categorical_feature=CATEGORICAL), num_boost_round=15
    )
    forest = Forest.from_booster(booster)
    assert forest is not None
    rows = np.vstack([_hard_rows(forest, rng, 400), _rows(rng, 100)])
    want = booster.predict(rows, num_threads=1)
    out = np.zeros(forest.n_class)
    for i, row in enumerate(rows):
        forest.predict(row, out)
        assert np.array_equal(out, want[i]), f"row {i}: {out} != {want[i]}"


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "multiclassova", "num_class": 3},
        {"objective": "binary"},
        {"objective": "multiclass", "num_class": 3, "linear_tree": True},
    ],
)
def test_models_the_forest_does_not_implement_take_the_c_path(params: dict[str, object]) -> None:
    rng = np.random.default_rng(22)
    x = rng.normal(size=(300, 4))
    y = rng.integers(0, int(params.get("num_class", 2)), 300)  # type: ignore[call-overload]
    booster = lgb.train(
        {"verbose": -1, "num_threads": 1, **params}, lgb.Dataset(x, y), num_boost_round=5
    )
    assert Forest.from_booster(booster) is None
    predictor = SingleRowPredictor(booster)
    assert predictor.fast and not predictor.compiled
    for row in x[:20]:
        got = predictor.predict(row)
        assert np.array_equal(got.reshape(-1), booster.predict(row[None, :]).reshape(-1))
