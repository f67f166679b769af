"""`taskclf policy`: the inference policy binding model, calibrators and thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from taskclf.cli._common import console, get_state
from taskclf.cli._train_personalize import resolve_model_dir
from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.paths import Layout

if TYPE_CHECKING:
    from taskclf.core.inference_policy import InferencePolicy

app = typer.Typer(help="Show, create or remove the inference policy.", no_args_is_help=True)


def _policy_table(policy: InferencePolicy) -> Table:
    table = Table(title="Inference policy", show_header=False)
    table.add_column("field")
    table.add_column("value")
    per_user = policy.per_user_reject_thresholds
    rows = [
        ("policy_version", str(policy.policy_version)),
        ("model_dir", policy.model_dir),
        ("model_schema_hash", policy.model_schema_hash),
        ("model_label_set", ", ".join(policy.model_label_set)),
        ("calibrator_store_dir", policy.calibrator_store_dir or "none (no calibration)"),
        ("calibration_method", policy.calibration_method or "-"),
        ("reject_threshold", f"{policy.reject_threshold:.4f}"),
        ("per_user_reject_thresholds", f"{len(per_user)} users"),
        ("created_at", policy.created_at.isoformat()),
        ("source", policy.source),
        ("git_commit", policy.git_commit or "-"),
    ]
    for name, value in rows:
        table.add_row(name, escape(value))
    for uid, thr in list(per_user.items())[:20]:
        table.add_row(f"  {escape(uid[:40])}", f"{thr:.4f}")
    if len(per_user) > 20:
        table.add_row("  ...", f"{len(per_user) - 20} more")
    return table


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the policy's fields and whether its model and store still match it (exit 2 if not)."""
    from taskclf.core.inference_policy import load_inference_policy, validate_policy

    layout = get_state(ctx).layout
    policy = load_inference_policy(layout)
    if policy is None:
        console.print(
            f"No inference policy at {escape(str(layout.inference_policy))}; create one with "
            "'taskclf train tune-reject --write-policy' or 'taskclf policy create'."
        )
        return
    console.print(_policy_table(policy))
    try:
        validate_policy(policy, layout)
    except ArtifactError as exc:
        console.print(f"[bold red]invalid:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None  # inference refuses this policy too
    console.print("[bold green]valid:[/] the model loads and the store was fitted for it")


def _default_store(layout: Layout) -> Path | None:
    from taskclf.core.inference_policy import STORE_MANIFEST_FILE

    store = layout.calibrator_store_dir
    return store if (store / STORE_MANIFEST_FILE).is_file() else None


@app.command("create")
def create(
    ctx: typer.Context,
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="Model bundle (default: the active model)."
    ),
    calibrator_store: Path | None = typer.Option(
        None,
        "--calibrator-store",
        help="Calibrator store (default: <home>/artifacts/calibrator_store if it exists).",
    ),
    reject_threshold: float | None = typer.Option(
        None,
        "--reject-threshold",
        help="Global reject threshold in [0, 1] (default: the bundle's, else 0.55).",
    ),
) -> None:
    """Write a validated policy binding a model, its calibrator store and a threshold."""
    from taskclf.core.inference_policy import (
        build_inference_policy,
        load_inference_policy,
        save_inference_policy,
        validate_policy,
    )

    layout = get_state(ctx).layout
    run_dir = resolve_model_dir(layout, model_dir)
    store = calibrator_store if calibrator_store is not None else _default_store(layout)
    if store is not None and not store.exists() and (layout.home / store).exists():
        store = layout.home / store
    if reject_threshold is not None and not 0.0 <= reject_threshold <= 1.0:
        raise InputError(f"--reject-threshold must be in [0, 1], got {reject_threshold}")
    policy = build_inference_policy(
        layout, run_dir, calibrator_store_dir=store, reject_threshold=reject_threshold
    )
    validate_policy(policy, layout)
    try:
        before = load_inference_policy(layout)
    except ArtifactError:
        before = None  # an unreadable policy is simply replaced
    path = save_inference_policy(policy, layout)
    console.print(_policy_table(policy))
    console.print(f"Inference policy written to {escape(str(path))}")
    if before is not None:
        per_user = len(before.per_user_reject_thresholds)
        console.print(
            f"[yellow]note:[/] it replaced the policy from {escape(before.source)} (threshold "
            f"{before.reject_threshold:.4g}, {per_user} per-user threshold(s), created "
            f"{before.created_at:%Y-%m-%d %H:%M} UTC)"
        )


@app.command("remove")
def remove(ctx: typer.Context) -> None:
    """Delete the policy (inference then falls back to the active model)."""
    from taskclf.core.inference_policy import remove_inference_policy

    layout = get_state(ctx).layout
    if remove_inference_policy(layout):
        console.print(f"Removed {escape(str(layout.inference_policy))}")
    else:
        console.print(f"No inference policy at {escape(str(layout.inference_policy))}")
