"""The one resolver of inference configuration (DESIGN §4.5).

Precedence for every value: explicit CLI flag > inference policy > active model (and its
bundle metadata) > built-in default. Each resolved value carries its source so the CLI can
print where it came from. Policy values for the calibrator store and thresholds are used only
when the policy is bound to the resolved model: a store or threshold tuned for another model
never silently applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from taskclf.core.defaults import (
    DEFAULT_BUCKET_SECONDS,
    DEFAULT_IDLE_GAP_SECONDS,
    DEFAULT_MIN_BLOCK_SECONDS,
    DEFAULT_REJECT_THRESHOLD,
    DEFAULT_SMOOTH_WINDOW,
)
from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.inference_policy import (
    InferencePolicy,
    check_policy_matches,
    load_inference_policy,
)
from taskclf.core.model_io import get_active_model, load_metadata, load_model_bundle
from taskclf.core.paths import Layout
from taskclf.infer.calibration import CalibratorStore, IsotonicCalibrator, load_calibrator_store
from taskclf.infer.pipeline import PipelineConfig
from taskclf.infer.taxonomy import load_taxonomy, map_labels

T = TypeVar("T")

FLAG = "flag"
POLICY = "policy"
ACTIVE = "active model"
BUNDLE = "bundle metadata"
DEFAULT = "default"
HOME = "home"
NONE = "none"


@dataclass(frozen=True)
class Resolved(Generic[T]):
    """A value and where it came from."""

    value: T
    source: str


@dataclass(frozen=True)
class InferenceSettings:
    """Resolved inference configuration (paths and numbers, nothing loaded yet)."""

    model_dir: Resolved[Path]
    calibrator_store_dir: Resolved[Path | None]
    reject_threshold: Resolved[float]
    per_user_reject_thresholds: Resolved[dict[str, float]]
    taxonomy_path: Resolved[Path | None]
    smooth_window: Resolved[int]
    policy: InferencePolicy | None = field(default=None, repr=False)

    def rows(self) -> list[tuple[str, str, str]]:
        """``(setting, value, source)`` rows for display."""
        per_user = self.per_user_reject_thresholds.value
        return [
            ("model", str(self.model_dir.value), self.model_dir.source),
            (
                "calibrator store",
                str(self.calibrator_store_dir.value or "identity (no calibration)"),
                self.calibrator_store_dir.source,
            ),
            (
                "reject threshold",
                f"{self.reject_threshold.value:.4f}",
                self.reject_threshold.source,
            ),
            (
                "per-user thresholds",
                f"{len(per_user)} user(s)" if per_user else "none",
                self.per_user_reject_thresholds.source,
            ),
            (
                "taxonomy",
                str(self.taxonomy_path.value or "none (core labels)"),
                self.taxonomy_path.source,
            ),
            ("smoothing window", str(self.smooth_window.value), self.smooth_window.source),
        ]


def _same_dir(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()


def resolve_settings(
    layout: Layout,
    *,
    model_dir: Path | None = None,
    calibrator_store: Path | None = None,
    reject_threshold: float | None = None,
    taxonomy: Path | None = None,
    smooth_window: int | None = None,
    policy: InferencePolicy | None = None,
    use_policy: bool = True,
) -> InferenceSettings:
    """Resolve every inference setting with one precedence (flag > policy > active model)."""
    if policy is None and use_policy:
        policy = load_inference_policy(layout)
    model = _resolve_model(layout, model_dir, policy)
    bound = policy is not None and _same_dir(policy_model_dir(layout, policy), model.value)
    store: Resolved[Path | None]
    if calibrator_store is not None:
        store = Resolved(calibrator_store, FLAG)
    elif bound and policy is not None and policy.calibrator_store_dir is not None:
        store = Resolved(policy_store_dir(layout, policy), POLICY)
    else:
        store = Resolved(None, NONE)
    threshold = _resolve_threshold(model.value, reject_threshold, policy if bound else None)
    per_user: Resolved[dict[str, float]]
    if reject_threshold is not None:
        per_user = Resolved({}, f"{FLAG} (--reject-threshold overrides per-user thresholds)")
    elif bound and policy is not None:
        per_user = Resolved(dict(policy.per_user_reject_thresholds), POLICY)
    else:
        per_user = Resolved({}, NONE)
    tax: Resolved[Path | None]
    if taxonomy is not None:
        tax = Resolved(taxonomy, FLAG)
    elif layout.taxonomy_file.exists():
        tax = Resolved(layout.taxonomy_file, HOME)
    else:
        tax = Resolved(None, NONE)
    window = (
        Resolved(smooth_window, FLAG)
        if smooth_window is not None
        else Resolved(DEFAULT_SMOOTH_WINDOW, DEFAULT)
    )
    if window.value < 1 or window.value % 2 == 0:
        raise InputError(f"--smooth-window must be an odd number >= 1, got {window.value}")
    return InferenceSettings(model, store, threshold, per_user, tax, window, policy)


def policy_model_dir(layout: Layout, policy: InferencePolicy) -> Path:
    """The policy's model directory (relative paths are relative to the home)."""
    path = Path(policy.model_dir)
    return path if path.is_absolute() else layout.home / path


def policy_store_dir(layout: Layout, policy: InferencePolicy) -> Path | None:
    """The policy's calibrator store directory (relative to the home if relative)."""
    if policy.calibrator_store_dir is None:
        return None
    path = Path(policy.calibrator_store_dir)
    return path if path.is_absolute() else layout.home / path


def _resolve_model(
    layout: Layout, model_dir: Path | None, policy: InferencePolicy | None
) -> Resolved[Path]:
    if model_dir is not None:
        return Resolved(model_dir, FLAG)
    if policy is not None:
        return Resolved(policy_model_dir(layout, policy), POLICY)
    active = get_active_model(layout)
    if active is not None:
        return Resolved(active, ACTIVE)
    raise InputError(
        f"no model to run: no --model-dir, no inference policy and no active model in "
        f"'{layout.models_dir}'; train one with 'taskclf train lgbm' or pass --model-dir"
    )


def _resolve_threshold(
    model_dir: Path, flag: float | None, policy: InferencePolicy | None
) -> Resolved[float]:
    if flag is not None:
        if not 0.0 <= flag <= 1.0:
            raise InputError(f"--reject-threshold must be in [0, 1], got {flag}")
        return Resolved(float(flag), FLAG)
    if policy is not None:
        return Resolved(float(policy.reject_threshold), POLICY)
    try:
        advisory = load_metadata(model_dir).reject_threshold
    except ArtifactError:
        advisory = None
    if advisory is not None:
        return Resolved(float(advisory), BUNDLE)
    return Resolved(DEFAULT_REJECT_THRESHOLD, DEFAULT)


def load_pipeline_config(settings: InferenceSettings, *, num_threads: int = 0) -> PipelineConfig:
    """Load the bundle, store and taxonomy named by ``settings`` into a pipeline config."""
    model_dir = settings.model_dir.value
    booster, metadata, encoders = load_model_bundle(model_dir)
    store = None
    if settings.calibrator_store_dir.value is not None:
        store = load_calibrator_store(settings.calibrator_store_dir.value)
        if store.model_schema_hash not in (None, metadata.schema_hash):
            raise ArtifactError(
                f"calibrator store '{settings.calibrator_store_dir.value}' was fitted for schema "
                f"{store.model_schema_hash}, the model uses {metadata.schema_hash}; re-run "
                "'taskclf train calibrate' for this model"
            )
        _check_store_classes(store, len(metadata.label_set), settings.calibrator_store_dir.value)
        if store.model_bundle_id not in (None, model_dir.name):
            raise ArtifactError(
                f"calibrator store '{settings.calibrator_store_dir.value}' was fitted for model "
                f"{store.model_bundle_id!r}, not {model_dir.name!r}; re-run 'taskclf train "
                "calibrate' for this model or pass the matching --calibrator-store"
            )
    policy = settings.policy
    if policy is not None and POLICY in (
        settings.model_dir.source,
        settings.calibrator_store_dir.source,
        settings.reject_threshold.source,
        settings.per_user_reject_thresholds.source,
    ):  # the policy's values are used: they must be the ones it recorded for this model
        from_policy = settings.calibrator_store_dir.source == POLICY
        check_policy_matches(
            policy,
            metadata,
            model_dir,
            settings.calibrator_store_dir.value,
            store.method if store is not None and from_policy else None,
            where="the inference policy (models/inference_policy.json)",
        )
    mapper = taxonomy_mapper(settings.taxonomy_path.value)
    return PipelineConfig(
        booster=booster,
        cat_encoders=encoders,
        schema_version=metadata.schema_version,
        model_id=model_dir.name,
        label_set=tuple(metadata.label_set),
        calibrator_store=store,
        reject_threshold=settings.reject_threshold.value,
        per_user_reject_thresholds=settings.per_user_reject_thresholds.value,
        smooth_window=settings.smooth_window.value,
        label_mapper=mapper,
        bucket_seconds=DEFAULT_BUCKET_SECONDS,
        idle_gap_seconds=DEFAULT_IDLE_GAP_SECONDS,
        min_block_seconds=DEFAULT_MIN_BLOCK_SECONDS,
        num_threads=num_threads,
    )


def taxonomy_mapper(path: Path | None) -> Callable[[Sequence[str]], list[str]] | None:
    """The pipeline's label mapper of the taxonomy file at ``path`` (None: labels as they are).

    Raises:
        ConfigError: A bad taxonomy file.
    """
    if path is None:
        return None
    tax = load_taxonomy(path)

    def mapper(labels: Sequence[str]) -> list[str]:
        return map_labels(labels, tax)

    return mapper


def _check_store_classes(store: CalibratorStore, n_classes: int, store_dir: Path) -> None:
    """Every isotonic map set of the store has one map per class of the model."""
    named = {"the global calibrator": store.global_calibrator}
    named |= {
        f"user {uid[:40]!r}'s calibrator": store.user_calibrators[uid] for uid in store.user_ids
    }
    for name, calibrator in named.items():
        if isinstance(calibrator, IsotonicCalibrator) and calibrator.n_classes != n_classes:
            raise ArtifactError(
                f"calibrator store '{store_dir}': {name} has {calibrator.n_classes} classes, "
                f"the model {n_classes}; re-run 'taskclf train calibrate' for this model"
            )
