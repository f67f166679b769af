"""The canonical event order and the block-built frame equal what pandas gives directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.features._frame import BlockFrame
from taskclf.features._minutes import _canonical_order

_IDS = st.text(alphabet="ab-Zé0", min_size=0, max_size=3)


def _events(starts: list[int], ids: list[str | None], unit: str) -> pd.DataFrame:
    base = pd.Timestamp("2024-03-04T09:00:00Z").as_unit(unit)
    return pd.DataFrame(
        {
            "start_ts": base + pd.to_timedelta(starts, unit="us").as_unit(unit),
            "event_id": np.array(ids, dtype=object),
        },
        index=pd.RangeIndex(10, 10 + len(starts)),  # not 0..n-1: positions, not labels
    )


def _pandas_order(df: pd.DataFrame) -> list[int]:
    keys = df.reset_index(drop=True)
    return keys.sort_values(["start_ts", "event_id"], kind="mergesort").index.tolist()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 5), _IDS), min_size=0, max_size=30),
    unit=st.sampled_from(["us", "ns"]),
    as_str=st.booleans(),
)
def test_canonical_order_matches_pandas_sort(
    rows: list[tuple[int, str]], unit: str, as_str: bool
) -> None:
    """Ties on the start (many here) are broken by id, then by input position."""
    df = _events([s for s, _ in rows], [i for _, i in rows], unit)
    if as_str:
        df["event_id"] = df["event_id"].astype("str")
    assert _canonical_order(df).tolist() == _pandas_order(df)


def test_canonical_order_with_missing_ids_matches_pandas_sort() -> None:
    df = _events([3, 1, 1, 1, 0], ["b", None, "a", "c", None], "us")
    assert _canonical_order(df).tolist() == _pandas_order(df) == [4, 2, 3, 1, 0]


def _columns(n: int, rng: np.random.Generator) -> dict[str, object]:
    return {
        "s": np.array(rng.choice(["x", "y"], n), dtype=object),
        "none": np.full(n, None, dtype=object),  # all missing: pandas keeps object
        "f": rng.random(n),
        "i": rng.integers(0, 9, n),
        "b": rng.random(n) > 0.5,
        "f2": rng.random(n),
        "t": pd.DatetimeIndex(pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC")),
    }


@pytest.mark.parametrize("n", [0, 1, 7])
def test_block_frame_equals_dataframe_of_dict(n: int) -> None:
    rng = np.random.default_rng(n)
    cols = _columns(n, rng)
    extra = rng.random((2, n))
    order = ["t", "r1", "s", "f", "none", "i", "r0", "b", "f2"]
    blocks = BlockFrame(n, cols, reserve=["r0", "r1"])
    blocks.reserved()[:] = extra
    got = blocks.frame(order)
    want = pd.DataFrame({**cols, "r0": extra[0], "r1": extra[1]})[order]
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got.dtypes) == list(want.dtypes)
    assert got.columns.dtype == want.columns.dtype


def test_block_frame_rejects_an_order_missing_a_column() -> None:
    blocks = BlockFrame(2, {"a": np.zeros(2), "b": np.ones(2, dtype=np.int64)})
    with pytest.raises(ValueError, match="every column exactly once"):
        blocks.frame(["a"])
