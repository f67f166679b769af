"""The online path of the pipeline: one closed minute at a time (:class:`OnlinePredictor`).

The same canonical order as :func:`~taskclf.infer.pipeline.run_pipeline`, with the one-row
forms of its steps, each tested equal to the batch step bit for bit: the compiled
:class:`~taskclf.infer._forest.Forest` (else LightGBM's prepared single-row call) for
``booster.predict``, :class:`~taskclf.infer._online_scorer.OnlineScorer` (the calibration and
reject of :func:`~taskclf.infer.pipeline.score_row`) for
:func:`~taskclf.infer.pipeline.score_matrix`, and the fold form of the rolling majority
(:class:`~taskclf.infer._online_smooth.OnlineSmoother`). Public as
``taskclf.infer.online.OnlinePredictor``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.errors import InputError
from taskclf.features._one import VectorPlan
from taskclf.infer._fast_predict import SingleRowPredictor
from taskclf.infer._online_scorer import OnlineScorer
from taskclf.infer._online_smooth import OnlineSmoother
from taskclf.infer.pipeline import (
    OnlineRecord,
    PipelineConfig,
    records_frame,
    round_confidence,
)
from taskclf.infer.prediction import probs_to_json
from taskclf.infer.smooth import SmoothedMinute


def _utc_datetime(value: Any) -> datetime:
    if type(value) is datetime and value.tzinfo is not None:
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    if isinstance(value, pd.Timestamp) and value.tzinfo is not None:  # feature rows carry these
        out: datetime = value.to_pydatetime()
        return out if out.tzinfo is UTC else out.astimezone(UTC)
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise InputError(f"bucket_start_ts {value!r} must be timezone-aware")
    return stamp.tz_convert("UTC").to_pydatetime()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OnlinePredictor:
    """One closed minute at a time through the same steps as :func:`run_pipeline`.

    Smoothing needs ``window // 2`` future minutes, so a minute's record is emitted that many
    minutes after it closes, as soon as a time gap longer than the idle gap ends its run (see
    :meth:`flush_idle`), or at :meth:`flush` (e.g. on shutdown).

    :meth:`predict_vector` is the fast path (a row already encoded, from
    ``FeatureState.close_until_vectors`` with :attr:`plan`: the online loop calls it once per
    closed minute); :meth:`predict_row` encodes a feature record first, and
    :meth:`predict_bucket` returns the same records as a frame. All predict with a
    :class:`SingleRowPredictor` (``booster.predict`` of the row, bit for bit) and score with
    an :class:`~taskclf.infer._online_scorer.OnlineScorer` (``score_row``, bit for bit). The
    taxonomy mapping of a label is computed once per configuration: like the batch, which
    maps the label names, it treats the label mapper as a function of each label alone.
    """

    def __init__(self, config: PipelineConfig) -> None:
        self._smoothers: dict[str, OnlineSmoother] = {}
        # each user's scored minutes by position: their records, smoothed labels to come
        self._pending: dict[str, dict[int, OnlineRecord]] = {}
        self._pushed: dict[str, int] = {}
        self._last_start: dict[str, datetime] = {}
        self.swap_config(config)

    def swap_config(self, config: PipelineConfig) -> None:
        """Use a new configuration from the next minute on (policy hot reload).

        Smoothing state and minutes waiting for it are kept, so no minute is lost or emitted
        twice; a changed smoothing window takes effect for users seen after the swap. A record
        names the model that scored its minute; its taxonomy mapping is the one current when
        it is emitted.
        """
        encoder = config.encoder()
        model = (
            None
            if config.booster is None
            else SingleRowPredictor(config.booster, num_threads=config.num_threads)
        )
        self.config, self._encoder, self._model = config, encoder, model
        #: how ``FeatureState.close_until_vectors`` fills this model's input rows (straight
        #: into the model's own input row)
        self.plan = VectorPlan(encoder)
        if model is not None and model.row.shape[1] == self.plan.row.size:
            self.plan.row = model.row[0]
        self._scorer = OnlineScorer(config)
        self._labels = [str(label) for label in config.label_set]
        self._mapped: dict[str, str] = {}
        # a user whose last minute started this long before the closed time has a gap ahead
        self._idle_after = timedelta(seconds=config.bucket_seconds + config.idle_gap_seconds)

    def with_empty_state(self) -> OnlinePredictor:
        """A predictor with this one's configuration and model and no minutes of its own."""
        other = copy.copy(self)
        other._smoothers, other._pending, other._pushed, other._last_start = {}, {}, {}, {}
        return other

    @property
    def lag_minutes(self) -> int:
        return self.config.smooth_window // 2

    def pending(self, user_id: str | None = None) -> int:
        """Minutes scored but not yet finalized (of one user, or of all)."""
        users = [user_id] if user_id is not None else list(self._pending)
        return sum(len(self._pending.get(u, {})) for u in users)

    def predict_row(self, row: Mapping[str, Any]) -> list[OnlineRecord]:
        """Score one feature row (a closed minute); return the records finalized by it.

        Rows of one user must come in time order (each minute once).
        """
        if self._model is None:
            raise InputError("this pipeline has no model; give probabilities (rule baseline)")
        x = self._encoder.encode_row(row, out=self._model.row)
        return self.predict_vector(str(row["user_id"]), _utc_datetime(row["bucket_start_ts"]), x)

    def predict_vector(
        self, user_id: str, start: datetime | int, x: NDArray[np.float64]
    ) -> list[OnlineRecord]:
        """:meth:`predict_row` of a row already encoded (``FeatureState.close_until_vectors``).

        Args:
            user_id: Whose minute it is.
            start: The minute's start (aware datetime, or µs since the epoch, UTC).
            x: The model's input row, shape ``(n_features,)`` or ``(1, n_features)``.
        """
        config = self.config
        model = self._model
        if model is None:
            raise InputError("this pipeline has no model; give probabilities (rule baseline)")
        if not isinstance(start, datetime):
            start = _EPOCH + timedelta(microseconds=start)
        scored = self._scorer.score(model.predict_view(x), user_id)
        smoother = self._smoothers.get(user_id)
        if smoother is None:
            smoother = self._smoothers[user_id] = OnlineSmoother(
                config.smooth_window,
                bucket_seconds=config.bucket_seconds,
                idle_gap_seconds=config.idle_gap_seconds,
            )
            self._pending[user_id] = {}
        position = self._pushed.get(user_id, 0)
        self._pushed[user_id] = position + 1
        core_label = self._labels[scored.core_index]
        self._pending[user_id][position] = {
            "user_id": user_id,
            "bucket_start_ts": start,
            "core_label": core_label,
            "confidence": round_confidence(scored.confidence),
            "is_rejected": scored.is_rejected,
            "predicted_label": None,  # the smoothed label, when final (``_emit``)
            "mapped_label": None,
            "core_probs": probs_to_json(scored.probs),
            "model_id": config.model_id,  # the model that scored it (a swap may come first)
        }
        done = smoother.push(MIXED_UNKNOWN if scored.is_rejected else core_label, start)
        self._last_start[user_id] = start
        return self._emit(user_id, done) if done else []

    def predict_bucket(self, row: Mapping[str, Any]) -> pd.DataFrame:
        """:meth:`predict_row` returning a normalized predictions frame."""
        return records_frame(self.predict_row(row))

    def flush_records(self, user_id: str | None = None) -> list[OnlineRecord]:
        """Finalize pending minutes (all users, or one), in (user, time) order."""
        users = [user_id] if user_id is not None else sorted(self._smoothers)
        out: list[OnlineRecord] = []
        for u in users:
            if u in self._smoothers:
                out.extend(self._emit(u, self._smoothers[u].flush()))
        return out

    def flush(self, user_id: str | None = None) -> pd.DataFrame:
        """:meth:`flush_records` as a normalized predictions frame."""
        return records_frame(self.flush_records(user_id))

    def flush_idle(self, closed_until: datetime) -> list[OnlineRecord]:
        """Finalize the runs that the next minute can no longer continue.

        Every minute starting before ``closed_until`` is closed, so a user whose last minute
        ended more than the idle gap before it has a gap ahead: smoothing (which never
        bridges such a gap) has all it needs for the pending minutes. Same records as
        waiting for the next minute, just sooner.
        """
        until = _utc_datetime(closed_until)
        idle = [
            user_id
            for user_id, last in self._last_start.items()
            if until - last > self._idle_after and self._pending[user_id]
        ]
        if not idle:
            return []
        out: list[OnlineRecord] = []
        for user_id in sorted(idle):
            out.extend(self.flush_records(user_id))
        return out

    def _emit(self, user_id: str, done: Sequence[SmoothedMinute]) -> list[OnlineRecord]:
        if not done:
            return []
        pending = self._pending[user_id]
        records = [pending.pop(m.position) for m in done]
        smoothed = [m.label for m in done]
        for record, label, mapped in zip(records, smoothed, self._map(smoothed), strict=True):
            record["predicted_label"] = label
            record["mapped_label"] = mapped
        return records

    def _map(self, labels: list[str]) -> list[str]:
        """The configuration's taxonomy mapping of ``labels``, remembered per label."""
        known = self._mapped
        try:
            return [known[label] for label in labels]
        except KeyError:
            mapped = self.config.map_labels(labels)
            known.update(zip(labels, mapped, strict=True))
            return mapped
