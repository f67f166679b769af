"""Day-blocked train/validation/test splits of labeled rows (re-exported by ``train.dataset``).

Splitting rule (:func:`split_by_time`): per user, the distinct *local* calendar days (the
user's time zone) are ordered in time and cut into three consecutive blocks: the first days go
to train, the next to validation, the last to test. A day is never split across sets, so no
minute of a test day is ever seen in training, and every test day lies after every training
day of the same user. Optionally a deterministic, seeded fraction of users is held out
entirely: all their rows go to test (the "unseen users" of the evaluation).

Block sizes are counted in days, ``n_test = max(1, round(n * (1 - train - val)))``,
``n_val = max(1, round(n * val))`` (each 0 when its ratio is 0; half rounds up), and train
takes the rest (at least one day). Users with fewer than three days cannot fill three blocks:
one day goes to train; two days go to train then validation (or test when ``val_ratio`` is
0). Such users are listed in ``summary.short_history_users`` and contribute no test days.

Frames without a ``user_id`` column (schema v2) are treated as a single user keyed
:data:`SINGLE_USER_KEY`; holding out users then is an error.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from taskclf.core.defaults import (
    DEFAULT_TIMEZONE,
    DEFAULT_TRAIN_RATIO,
    DEFAULT_VAL_RATIO,
)
from taskclf.core.errors import InputError
from taskclf.core.time import get_zone
from taskclf.core.types import LABEL_SET_V1

SplitName = Literal["train", "val", "test"]
SPLIT_NAMES: tuple[SplitName, ...] = ("train", "val", "test")
#: The user key of frames that have no ``user_id`` column (schema v2).
SINGLE_USER_KEY = "(all users)"
SPLIT_FORMAT_VERSION = 1


# Summary models ---------------------------------------------------------------------------


class DayRange(BaseModel):
    """Inclusive range of local days ``[first, last]`` and how many of them hold rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first: date
    last: date
    days: int


class UserSplit(BaseModel):
    """Where one user's days went."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    timezone: str
    held_out: bool
    train: DayRange | None
    val: DayRange | None
    test: DayRange | None


class SplitStats(BaseModel):
    """Size of one split: rows, user-days, users and rows per label (all eight labels)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    days: int
    users: list[str]
    class_counts: dict[str, int]


class SplitSummary(BaseModel):
    """What :func:`split_by_time` did; also the record that lets a split be re-applied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = SPLIT_FORMAT_VERSION
    train_ratio: float
    val_ratio: float
    holdout_user_fraction: float
    seed: int
    default_timezone: str
    holdout_users: list[str]
    short_history_users: list[str]
    splits: dict[str, SplitStats]
    users: list[UserSplit]

    def user(self, user_id: str) -> UserSplit | None:
        """The split of ``user_id`` (None if the user was not in the split frame)."""
        for u in self.users:
            if u.user_id == user_id:
                return u
        return None


@dataclass(frozen=True)
class DatasetSplits:
    """Train, validation and test frames (sorted by user, time) and their summary."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    summary: SplitSummary

    def frame(self, name: SplitName) -> pd.DataFrame:
        """The frame of split ``name``."""
        frames = {"train": self.train, "val": self.val, "test": self.test}
        return frames[name]


# Splitting --------------------------------------------------------------------------------


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def allocate_days(n_days: int, train_ratio: float, val_ratio: float) -> tuple[int, int, int]:
    """Days for (train, val, test) of a user with ``n_days`` days (rules in the module doc)."""
    test_ratio = 1.0 - train_ratio - val_ratio
    if n_days < 3:
        second = (0, 1, 0) if val_ratio > 0 else (0, 0, 1)
        return (1, 0, 0) if n_days == 1 else (1, second[1], second[2])
    n_test = max(1, _round_half_up(n_days * test_ratio)) if test_ratio > 1e-9 else 0
    n_val = max(1, _round_half_up(n_days * val_ratio)) if val_ratio > 0 else 0
    while n_days - n_val - n_test < 1:
        if n_val > n_test or (n_val == n_test and n_val > 1):
            n_val -= 1
        else:
            n_test -= 1
    return n_days - n_val - n_test, n_val, n_test


def _check_ratios(train_ratio: float, val_ratio: float, holdout_user_fraction: float) -> None:
    ok = 0 < train_ratio <= 1 and 0 <= val_ratio < 1 and train_ratio + val_ratio <= 1 + 1e-9
    if not ok:
        raise InputError(
            f"split ratios must satisfy 0 < train_ratio, 0 <= val_ratio, train + val <= 1; "
            f"got train_ratio={train_ratio}, val_ratio={val_ratio}"
        )
    if not 0 <= holdout_user_fraction < 1:
        raise InputError(f"--holdout-user-fraction must be in [0, 1), got {holdout_user_fraction}")


def user_keys(df: pd.DataFrame) -> pd.Series:
    """The user of every row as str (:data:`SINGLE_USER_KEY` when there is no user_id)."""
    if "user_id" not in df.columns:
        return pd.Series(SINGLE_USER_KEY, index=df.index, dtype=object)
    users = df["user_id"]
    if users.isna().any():
        row = int(np.flatnonzero(users.isna().to_numpy())[0])
        raise InputError(f"column 'user_id' is missing at row {row}; every row needs a user")
    return users.astype(str).astype(object)


def _groups(users: pd.Series) -> list[tuple[str, NDArray[np.intp]]]:
    """Row positions of each user, sorted by user id."""
    groups = users.groupby(users, sort=True).indices
    return [(str(u), np.asarray(idx, dtype=np.intp)) for u, idx in groups.items()]


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    for col in ("bucket_start_ts", "label"):
        if col not in df.columns:
            raise InputError(f"cannot split: the frame has no {col!r} column")
    if len(df) == 0:
        raise InputError("cannot split an empty dataset: there are no labeled rows")
    if not isinstance(df["bucket_start_ts"].dtype, pd.DatetimeTZDtype):
        raise InputError(
            f"column 'bucket_start_ts' must be timezone-aware, got {df['bucket_start_ts'].dtype}"
        )
    missing = df["label"].isna().to_numpy()
    if missing.any():
        raise InputError(
            f"cannot split: row {int(np.flatnonzero(missing)[0])} has no label; "
            "pass only labeled rows (load_labeled_features drops unlabeled minutes)"
        )
    keys = ["user_id", "bucket_start_ts"] if "user_id" in df.columns else ["bucket_start_ts"]
    return df.sort_values(keys, kind="mergesort").reset_index(drop=True)


def choose_holdout_users(users: Sequence[str], fraction: float, seed: int) -> list[str]:
    """Deterministically pick ``round(fraction * n)`` users (at least 1 if fraction > 0).

    Users are ranked by SHA-256 of ``"<seed>:<user_id>"``, so the choice depends only on the
    seed and the ids, not on row order. At least one user must remain for training.
    """
    unique = sorted(set(users))
    if fraction <= 0:
        return []
    if unique == [SINGLE_USER_KEY]:
        raise InputError("cannot hold out users: the frame has no user_id column (schema v2)")
    n_hold = max(1, _round_half_up(fraction * len(unique)))
    if n_hold >= len(unique):
        raise InputError(
            f"cannot hold out {n_hold} of {len(unique)} users with fraction {fraction}: at "
            "least one user must remain for training; lower --holdout-user-fraction"
        )

    def rank(user: str) -> str:
        return hashlib.sha256(f"{seed}:{user}".encode("utf-8", "surrogatepass")).hexdigest()

    return sorted(sorted(unique, key=rank)[:n_hold])


def _day_range(days: np.ndarray) -> DayRange | None:
    if days.size == 0:
        return None
    return DayRange(first=days[0], last=days[-1], days=int(days.size))


def _split_one_user(
    local_days: np.ndarray, held_out: bool, train_ratio: float, val_ratio: float
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Split codes (0 train, 1 val, 2 test) per row and the days of each split."""
    days = np.unique(local_days)
    if held_out:
        n_train, n_val = 0, 0
    else:
        n_train, n_val, _ = allocate_days(days.size, train_ratio, val_ratio)
    day_split = np.full(days.size, 2, dtype=np.int8)
    day_split[:n_train] = 0
    day_split[n_train : n_train + n_val] = 1
    codes = day_split[np.searchsorted(days, local_days)]
    parts = (days[:n_train], days[n_train : n_train + n_val], days[n_train + n_val :])
    return codes, parts


def _class_counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["label"].astype(str).value_counts()
    return {label: int(counts.get(label, 0)) for label in LABEL_SET_V1}


def split_by_time(
    df: pd.DataFrame,
    *,
    train_ratio: float = DEFAULT_TRAIN_RATIO,
    val_ratio: float = DEFAULT_VAL_RATIO,
    holdout_user_fraction: float = 0.0,
    timezones: Mapping[str, str] | None = None,
    default_timezone: str = DEFAULT_TIMEZONE,
    seed: int = 0,
) -> DatasetSplits:
    """Split labeled rows into train/val/test by whole local days per user (module doc).

    Args:
        df: Labeled feature rows: ``bucket_start_ts`` (tz-aware), ``label`` (no missing
            values), and ``user_id`` unless the frame is schema v2.
        train_ratio: Share of each user's days for training.
        val_ratio: Share of each user's days for validation (early stopping, calibration).
        holdout_user_fraction: Share of users held out entirely (all their rows go to test).
        timezones: Per-user IANA zones that define local days; others use
            ``default_timezone``.
        default_timezone: Zone of users not in ``timezones``.
        seed: Seed of the held-out user choice.

    Returns:
        The three frames (original columns, sorted by user and time, fresh index) and the
        summary.

    Raises:
        InputError: Empty or unlabeled input, bad ratios, or an impossible hold-out.
        ConfigError: An unknown time zone.
    """
    _check_ratios(train_ratio, val_ratio, holdout_user_fraction)
    frame = _prepare(df)
    zones = dict(timezones or {})
    for tz in {default_timezone, *zones.values()}:
        get_zone(tz)
    users = user_keys(frame)
    holdout = set(choose_holdout_users(users.tolist(), holdout_user_fraction, seed))
    local_days = _local_days(frame, users, lambda u: zones.get(u, default_timezone))
    codes = np.empty(len(frame), dtype=np.int8)
    user_splits: list[UserSplit] = []
    short: list[str] = []
    for user, idx in _groups(users):
        local = local_days[idx]
        user_codes, parts = _split_one_user(local, user in holdout, train_ratio, val_ratio)
        codes[idx] = user_codes
        if user not in holdout and parts[0].size + parts[1].size + parts[2].size < 3:
            short.append(user)
        user_splits.append(
            UserSplit(
                user_id=user,
                timezone=zones.get(user, default_timezone),
                held_out=user in holdout,
                train=_day_range(parts[0]),
                val=_day_range(parts[1]),
                test=_day_range(parts[2]),
            )
        )
    return _assemble(
        frame,
        codes,
        local_days,
        user_splits,
        train_ratio=train_ratio,
        val_ratio=val_ratio,
        holdout_user_fraction=holdout_user_fraction,
        seed=seed,
        default_timezone=default_timezone,
        holdout_users=sorted(holdout),
        short_history_users=sorted(short),
    )


def _local_days(
    frame: pd.DataFrame, users: pd.Series, tz_for: Callable[[str], str]
) -> NDArray[np.object_]:
    """Local calendar date of every row in its user's zone (object array of ``date``)."""
    out = np.empty(len(frame), dtype=object)
    ts = frame["bucket_start_ts"]
    for user, idx in _groups(users):
        out[idx] = ts.iloc[idx].dt.tz_convert(tz_for(user)).dt.date.to_numpy()
    return out


def _assemble(
    frame: pd.DataFrame,
    codes: NDArray[np.int8],
    local_days: NDArray[np.object_],
    user_splits: list[UserSplit],
    **params: object,
) -> DatasetSplits:
    frames = [frame[codes == i].reset_index(drop=True) for i in range(3)]
    users = user_keys(frame).to_numpy()
    stats: dict[str, SplitStats] = {}
    for i, name in enumerate(SPLIT_NAMES):
        mask = codes == i
        user_days = set(zip(users[mask].tolist(), local_days[mask].tolist(), strict=True))
        stats[name] = SplitStats(
            rows=int(mask.sum()),
            days=len(user_days),
            users=sorted({u for u, _ in user_days}),
            class_counts=_class_counts(frames[i]),
        )
    summary = SplitSummary.model_validate({**params, "splits": stats, "users": user_splits})
    return DatasetSplits(train=frames[0], val=frames[1], test=frames[2], summary=summary)


def assign_recorded_split(df: pd.DataFrame, summary: SplitSummary) -> DatasetSplits:
    """Re-apply a recorded split to (possibly new) labeled rows.

    Rows of held-out users and of users absent from ``summary`` go to test. For other users a
    local day up to the recorded last training day (from its first) is train, up to the last
    validation day is val, and any other day (later, or before training began) is test, so
    no row of a day the model was trained or early-stopped on ever counts as test.
    """
    frame = _prepare(df)
    users = user_keys(frame)
    by_user = {u.user_id: u for u in summary.users}

    def tz_for(user: str) -> str:
        rec = by_user.get(user)
        return rec.timezone if rec is not None else summary.default_timezone

    local_days = _local_days(frame, users, tz_for)
    codes = np.full(len(frame), 2, dtype=np.int8)
    for user, idx in _groups(users):
        rec = by_user.get(user)
        if rec is None or rec.held_out or rec.train is None:
            continue
        local = local_days[idx]
        last_fit = rec.val.last if rec.val is not None else rec.train.last
        in_train = (local >= rec.train.first) & (local <= rec.train.last)
        in_val = (local > rec.train.last) & (local <= last_fit)
        codes[idx] = np.where(in_train, 0, np.where(in_val, 1, 2)).astype(np.int8)
    return _assemble(frame, codes, local_days, list(summary.users), **_summary_params(summary))


def _summary_params(summary: SplitSummary) -> dict[str, object]:
    return {
        "train_ratio": summary.train_ratio,
        "val_ratio": summary.val_ratio,
        "holdout_user_fraction": summary.holdout_user_fraction,
        "seed": summary.seed,
        "default_timezone": summary.default_timezone,
        "holdout_users": summary.holdout_users,
        "short_history_users": summary.short_history_users,
    }
