"""The one encoding of a feature frame into a model matrix (training, batch and online).

Numeric and boolean columns become float64 with NaN kept as missing (LightGBM handles it
natively). Categorical columns become integer codes into a sorted vocabulary that always
contains the reserved ``__unknown__`` value; values never seen in training map to its code,
missing values stay NaN.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.preprocessing import LabelEncoder

from taskclf.core.defaults import UNKNOWN_CATEGORY
from taskclf.core.errors import ArtifactError, SchemaError
from taskclf.core.schema import get_schema

DEFAULT_CHUNK_ROWS = 16_384
"""Rows per chunk of :meth:`MatrixEncoder.iter_chunks` (~40 MB at the 308 v3 columns)."""


def feature_columns(schema_version: str) -> list[str]:
    """Model feature columns of ``schema_version`` in schema order."""
    return list(get_schema(schema_version).feature_columns())


def categorical_columns(schema_version: str) -> list[str]:
    """Categorical model features of ``schema_version``."""
    return list(get_schema(schema_version).categorical_columns())


def make_encoder(vocabulary: Sequence[str]) -> LabelEncoder:
    """A fitted ``LabelEncoder`` over ``vocabulary`` plus ``__unknown__`` (sorted)."""
    enc = LabelEncoder()
    enc.classes_ = np.array(sorted({*map(str, vocabulary), UNKNOWN_CATEGORY}), dtype=object)
    return enc


def fit_categorical_encoders(df: pd.DataFrame, schema_version: str) -> dict[str, LabelEncoder]:
    """Fit one encoder per categorical feature on the non-missing values of ``df``."""
    encoders: dict[str, LabelEncoder] = {}
    for col in categorical_columns(schema_version):
        if col not in df.columns:
            raise SchemaError(f"cannot fit encoders: column {col!r} is missing")
        values = df[col].dropna().astype(str).unique().tolist()
        encoders[col] = make_encoder(values)
    return encoders


def encoders_to_json(encoders: Mapping[str, LabelEncoder]) -> dict[str, list[str]]:
    """``{column: [sorted vocabulary]}`` (the bundle's ``categorical_encoders.json``)."""
    return {col: [str(v) for v in enc.classes_] for col, enc in sorted(encoders.items())}


def encoders_from_json(
    data: object, *, where: str = "categorical_encoders.json"
) -> dict[str, LabelEncoder]:
    """Inverse of :func:`encoders_to_json`, validating the structure."""
    if not isinstance(data, dict):
        raise ArtifactError(f"'{where}': expected an object of column -> vocabulary")
    out: dict[str, LabelEncoder] = {}
    for col, vocab in data.items():
        if not isinstance(vocab, list) or not all(isinstance(v, str) for v in vocab):
            raise ArtifactError(f"'{where}': vocabulary of {col!r} must be a list of strings")
        if vocab != sorted(vocab) or UNKNOWN_CATEGORY not in vocab:
            raise ArtifactError(
                f"'{where}': vocabulary of {col!r} must be sorted and contain {UNKNOWN_CATEGORY!r}"
            )
        out[str(col)] = make_encoder(vocab)
    return out


class MatrixEncoder:
    """Encodes frames or single rows into the model matrix with one set of lookups.

    Built once per (encoders, schema) pair; :meth:`encode_frame` serves training and batch,
    :meth:`encode_row` the online path (no pandas per minute). Both produce identical values.
    """

    def __init__(self, cat_encoders: Mapping[str, LabelEncoder], schema_version: str) -> None:
        self.schema_version = schema_version
        self.columns = feature_columns(schema_version)
        cats = categorical_columns(schema_version)
        absent = sorted(set(cats) - set(cat_encoders))
        if absent:
            raise ArtifactError(f"categorical encoders missing for {absent}")
        self._lookups: dict[str, dict[str, float]] = {
            col: {str(v): float(i) for i, v in enumerate(cat_encoders[col].classes_)}
            for col in cats
        }
        self._unknown = {col: lk[UNKNOWN_CATEGORY] for col, lk in self._lookups.items()}
        self._plan: list[tuple[int, str, dict[str, float] | None]] = [
            (j, col, self._lookups.get(col)) for j, col in enumerate(self.columns)
        ]
        self._categorical = [(j, c, lk) for j, c, lk in self._plan if lk is not None]
        numeric = [(j, c) for j, c, lk in self._plan if lk is None]
        self._numeric_runs = _runs([j for j, _ in numeric])
        self._numeric_getter = _getter([c for _, c in numeric])

    def code(self, column: str, value: object) -> float:
        """The model value of one categorical cell: its vocabulary code (NaN when missing)."""
        return self._code(column, self._lookups[column], value)

    def _code(self, col: str, lookup: dict[str, float], value: object) -> float:
        if value is None or (isinstance(value, float) and value != value):
            return float("nan")
        return lookup.get(str(value), self._unknown[col])

    def encode_frame(self, df: pd.DataFrame) -> NDArray[np.float64]:
        """Shape ``(len(df), n_features)`` float64; NaN stays NaN."""
        sources = self._sources(df)
        out = np.empty((len(df), len(self.columns)), dtype=np.float64)
        for j, src in enumerate(sources):
            out[:, j] = src
        return out

    def iter_chunks(
        self, df: pd.DataFrame, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> Iterator[tuple[slice, NDArray[np.float64]]]:
        """Encode ``df`` in row chunks: ``(rows, encode_frame(df)[rows])`` pairs.

        Every chunk is written into one reused buffer (valid until the next chunk is
        requested), so encoding a million rows never allocates — and page-faults in — a
        multi-gigabyte matrix; a chunk stays small enough to remain in cache for the model.
        """
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        sources = self._sources(df)
        n = len(df)
        buffer = np.empty((min(chunk_rows, n), len(self.columns)), dtype=np.float64)
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            view = buffer[: stop - start]
            for j, src in enumerate(sources):
                view[:, j] = src[start:stop]
            yield slice(start, stop), view

    def _sources(self, df: pd.DataFrame) -> list[NDArray[np.float64]]:
        """One float64 array per model column (views of ``df`` where its dtype allows)."""
        missing_cols = [c for c in self.columns if c not in df.columns]
        if missing_cols:
            raise SchemaError(
                f"feature frame (schema {self.schema_version}) lacks model columns "
                f"{missing_cols[:8]}"
            )
        return [
            df[col].to_numpy(dtype=np.float64, na_value=np.nan)
            if lookup is None
            else self._encode_categorical(df[col], col, lookup)
            for _, col, lookup in self._plan
        ]

    def _encode_categorical(
        self, series: pd.Series, col: str, lookup: dict[str, float]
    ) -> NDArray[np.float64]:
        # factorize once, look up the few distinct values, then gather: O(n) in C.
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        unique_codes = np.array(
            [self._code(col, lookup, v) for v in uniques] + [np.nan], dtype=np.float64
        )
        return unique_codes[codes]  # code -1 (missing) picks the trailing NaN

    def encode_row(
        self, row: Mapping[str, object], *, out: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """One feature row (a mapping) as shape ``(1, n_features)``.

        Args:
            row: Column name -> value (at least every model column).
            out: A float64 array of shape ``(1, n_features)`` to write into (e.g. a model's
                reusable input row); a new one when not given.

        Returns:
            ``out`` (or the new array).
        """
        if out is None:
            out = np.empty((1, len(self.columns)), dtype=np.float64)
        numeric = self._numeric_getter(row)
        try:  # one C-level conversion; None becomes NaN
            values = np.array(numeric, dtype=np.float64)
        except (TypeError, ValueError):  # pd.NA and other exotic missing values
            values = np.array(
                [
                    np.nan if v is None or v is pd.NA else float(v)  # type: ignore[arg-type]
                    for v in numeric
                ],
                dtype=np.float64,
            )
        dst = out[0]
        for start, stop, src in self._numeric_runs:  # model columns j..stop <- values src..
            dst[start:stop] = values[src : src + stop - start]
        for j, col, lookup in self._categorical:
            dst[j] = self._code(col, lookup, row[col])
        return out


def _runs(positions: list[int]) -> list[tuple[int, int, int]]:
    """Maximal runs of consecutive ``positions``: ``(start, stop, index of start)`` each."""
    runs: list[tuple[int, int, int]] = []
    for i, j in enumerate(positions):
        if runs and runs[-1][1] == j:
            start, _, src = runs[-1]
            runs[-1] = (start, j + 1, src)
        else:
            runs.append((j, j + 1, i))
    return runs


def _getter(keys: list[str]) -> Callable[[Mapping[str, object]], tuple[object, ...]]:
    """``row -> tuple(row[k] for k in keys)``, in C (``operator.itemgetter``)."""
    if not keys:
        return lambda row: ()
    if len(keys) == 1:
        single = operator.itemgetter(keys[0])
        return lambda row: (single(row),)
    return operator.itemgetter(*keys)


def encode_features(
    df: pd.DataFrame,
    cat_encoders: Mapping[str, LabelEncoder],
    schema_version: str,
) -> NDArray[np.float64]:
    """Encode ``df`` into the model matrix, shape ``(n_rows, n_features)``, float64.

    Column order is :func:`feature_columns`; the same call serves training and inference.
    """
    return MatrixEncoder(cat_encoders, schema_version).encode_frame(df)


def categorical_feature_indices(schema_version: str) -> list[int]:
    """Positions of the categorical columns in :func:`feature_columns`."""
    cols = feature_columns(schema_version)
    cats = set(categorical_columns(schema_version))
    return [i for i, c in enumerate(cols) if c in cats]
