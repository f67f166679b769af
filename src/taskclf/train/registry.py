"""The model registry views: ``taskclf model list`` and ``taskclf model inspect``.

Each bundle under ``models/`` with its validation macro F1 (``metrics.json``), its stored test
evaluation (``train.evaluate``) and gate outcome, and whether it is the active model. A bundle
whose files cannot be read is listed with the problem instead of failing the whole list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from taskclf.core.errors import ArtifactError
from taskclf.core.model_io import (
    ModelMetadata,
    get_active_model,
    list_bundles,
    load_metadata,
    verify_bundle_files,
)
from taskclf.core.paths import Layout
from taskclf.train.evaluate import EvaluationReport, load_evaluation


class ModelSummary(BaseModel):
    """One row of ``taskclf model list``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    created_at: datetime | None
    schema_version: str | None
    data_provenance: str | None
    val_macro_f1: float | None
    test_macro_f1: float | None
    gates_passed: bool | None
    failed_gates: list[str]
    active: bool
    problem: str | None = None


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ArtifactError(f"'{run_dir / 'metrics.json'}' is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"'{run_dir / 'metrics.json'}' must hold a JSON object")
    return data


def _summarize(layout: Layout, run_dir: Path, active: Path | None) -> ModelSummary:
    is_active = active is not None and active.name == run_dir.name
    try:
        meta = load_metadata(run_dir)
        metrics = _read_metrics(run_dir)
        evaluation = load_evaluation(layout, run_dir.name)
    except ArtifactError as exc:
        return ModelSummary(
            run_id=run_dir.name,
            created_at=None,
            schema_version=None,
            data_provenance=None,
            val_macro_f1=None,
            test_macro_f1=None,
            gates_passed=None,
            failed_gates=[],
            active=is_active,
            problem=str(exc),
        )
    macro = metrics.get("macro_f1")
    return ModelSummary(
        run_id=run_dir.name,
        created_at=meta.created_at,
        schema_version=meta.schema_version,
        data_provenance=meta.data_provenance,
        val_macro_f1=float(macro) if isinstance(macro, int | float) else None,
        test_macro_f1=evaluation.classification.macro_f1 if evaluation else None,
        gates_passed=evaluation.gates.passed if evaluation else None,
        failed_gates=evaluation.gates.failed if evaluation else [],
        active=is_active,
    )


def list_models(layout: Layout) -> list[ModelSummary]:
    """Every bundle under ``models/`` (sorted by run id) with its scores and gate outcome."""
    active = get_active_model(layout)
    return [_summarize(layout, run_dir, active) for run_dir in list_bundles(layout)]


@dataclass(frozen=True)
class ModelInspection:
    """Everything ``taskclf model inspect`` shows."""

    run_dir: Path
    metadata: ModelMetadata
    metrics: dict[str, Any]
    evaluation: EvaluationReport | None
    active: bool


def inspect_model(layout: Layout, run_dir: Path) -> ModelInspection:
    """Verify a bundle's files and collect its metadata, metrics and stored evaluation."""
    verify_bundle_files(run_dir)
    active = get_active_model(layout)
    return ModelInspection(
        run_dir=run_dir,
        metadata=load_metadata(run_dir),
        metrics=_read_metrics(run_dir),
        evaluation=load_evaluation(layout, run_dir.name),
        active=active is not None and active.name == run_dir.name,
    )
