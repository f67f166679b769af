"""`taskclf model`: the model registry (list, inspect, set-active)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.table import Table

from taskclf.cli._common import console, get_state
from taskclf.core.errors import InputError
from taskclf.core.paths import Layout

if TYPE_CHECKING:
    from taskclf.train.evaluate import EvaluationReport
    from taskclf.train.registry import ModelInspection, ModelSummary

app = typer.Typer(help="List, inspect and activate model bundles.", no_args_is_help=True)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _gates(summary: ModelSummary) -> str:
    if summary.problem:
        return "[red]unreadable[/]"
    if summary.gates_passed is None:
        return "not evaluated"
    if summary.gates_passed:
        return "[green]pass[/]"
    return f"[red]fail[/] ({', '.join(summary.failed_gates)})"


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """List model bundles with their scores, gate outcome and the active marker."""
    from taskclf.train.registry import list_models

    models = list_models(get_state(ctx).layout)
    if not models:
        console.print("no model bundles yet; train one with 'taskclf train lgbm'")
        return
    table = Table(title="Model bundles", box=box.SIMPLE_HEAD)
    table.add_column("")
    table.add_column("run id", no_wrap=True)
    table.add_column("created (UTC)", min_width=10)
    for col in ("schema", "val F1", "test F1", "gates"):
        table.add_column(col)
    for m in models:
        created = m.created_at.strftime("%Y-%m-%d %H:%M") if m.created_at else "-"
        table.add_row(
            "[bold green]*[/]" if m.active else "",
            m.run_id,
            created,
            m.schema_version or "-",
            _score(m.val_macro_f1),
            _score(m.test_macro_f1),
            _gates(m),
        )
    console.print(table)
    console.print("* = active model; F1 = macro F1 on validation / test days")
    for m in models:
        if m.problem:
            console.print(f"[red]{m.run_id}[/]: {m.problem}")


def _resolve(layout: Layout, run_id: str | None, model_dir: Path | None) -> Path:
    if (run_id is None) == (model_dir is None):
        raise InputError("give exactly one of RUN_ID or --model-dir (see 'taskclf model list')")
    return model_dir if model_dir is not None else layout.run_dir(str(run_id))


def _metadata_table(info: ModelInspection) -> Table:
    meta = info.metadata
    params = meta.params
    table = Table(title=f"Model {info.run_dir.name}{' (active)' if info.active else ''}")
    table.add_column("field")
    table.add_column("value")
    rows: list[tuple[str, Any]] = [
        ("created", meta.created_at.isoformat()),
        ("schema", f"{meta.schema_version} ({meta.schema_hash})"),
        ("training range", f"{meta.train_date_from} .. {meta.train_date_to}"),
        ("labels", meta.data_provenance),
        ("dataset hash", meta.dataset_hash),
        ("rounds used", f"{params.get('num_boost_round_used')} of {params.get('num_boost_round')}"),
        ("class weight", params.get("class_weight")),
        ("seed", params.get("seed")),
        ("git commit", meta.git_commit or "-"),
        ("val macro F1", _score(info.metrics.get("macro_f1"))),
        ("val weighted F1", _score(info.metrics.get("weighted_f1"))),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    return table


def _confusions_table(cm: list[list[int]], labels: list[str], title: str) -> Table:
    from taskclf.core.metrics import top_confusions

    table = Table(title=title)
    for col in ("true", "predicted as", "rows"):
        table.add_column(col)
    for true, pred, count in top_confusions(cm, labels, k=5):
        table.add_row(true, pred, str(count))
    return table


def _per_user_table(report: EvaluationReport) -> Table:
    table = Table(title="Per user (test days)")
    for col in (
        "user",
        "seen",
        "rows",
        "macro F1",
        "accuracy",
        "reject rate",
        "flap raw",
        "flap smoothed",
    ):
        table.add_column(col)
    for u in report.per_user:
        table.add_row(
            u.user_id,
            "yes" if u.seen else "no",
            str(u.rows),
            _score(u.macro_f1),
            _score(u.accuracy),
            _score(u.reject_rate),
            _score(u.flap_rate_raw),
            _score(u.flap_rate_smoothed),
        )
    return table


@app.command("inspect")
def inspect_cmd(
    ctx: typer.Context,
    run_id: str | None = typer.Argument(None, help="Run id of a bundle under models/."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Bundle directory."),
) -> None:
    """Show a bundle's metadata, metrics, top confusions and its evaluation if present."""
    from taskclf.train.registry import inspect_model

    layout = get_state(ctx).layout
    info = inspect_model(layout, _resolve(layout, run_id, model_dir))
    console.print(_metadata_table(info))
    labels = list(info.metrics.get("label_names", info.metadata.label_set))
    cm = info.metrics.get("confusion_matrix")
    if isinstance(cm, list):
        console.print(_confusions_table(cm, labels, "Top confusions (validation)"))
    report = info.evaluation
    if report is None:
        console.print(f"not evaluated yet: run 'taskclf train evaluate --model-dir {info.run_dir}'")
        return
    console.print(
        f"test: macro F1 {report.classification.macro_f1:.3f}, weighted F1 "
        f"{report.classification.weighted_f1:.3f}, ECE {report.calibration.ece_top_label:.3f}, "
        f"reject rate {report.reject.reject_rate:.3f}; gates "
        f"{'pass' if report.gates.passed else 'FAIL: ' + ', '.join(report.gates.failed)}"
    )
    console.print(
        _confusions_table(
            report.classification.confusion_matrix, report.label_names, "Top confusions (test)"
        )
    )
    console.print(_per_user_table(report))


@app.command("set-active")
def set_active_cmd(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id of a bundle under models/."),
) -> None:
    """Make a verified bundle the active model."""
    from taskclf.core.model_io import set_active_model

    pointer = set_active_model(get_state(ctx).layout, run_id, reason="manual")
    console.print(f"active model: [bold]{pointer.run_id}[/] (set {pointer.set_at.isoformat()})")
