"""`taskclf taxonomy`: personal taxonomy of core labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from taskclf.cli._common import console, get_state
from taskclf.core.types import LABEL_SET_V1

if TYPE_CHECKING:
    from taskclf.infer.taxonomy import TaxonomyConfig

app = typer.Typer(
    help="Create, validate and show the personal taxonomy (core labels -> your buckets).",
    no_args_is_help=True,
)

_FILE_HELP = "Taxonomy YAML file (default: configs/taxonomy.yaml in the taskclf home)."


def _path(ctx: typer.Context, file: Path | None) -> Path:
    return file if file is not None else get_state(ctx).layout.taxonomy_file


@app.command("init")
def init(
    ctx: typer.Context,
    file: Path | None = typer.Option(None, "--file", help=_FILE_HELP),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write the default taxonomy (Deep work, Collaboration, Learning, Break)."""
    from taskclf.infer.taxonomy import default_taxonomy, save_taxonomy

    if file is not None:
        get_state(ctx).layout.check_output(file, option="--file")
    path = save_taxonomy(default_taxonomy(), _path(ctx, file), overwrite=force)
    console.print(f"Wrote the default taxonomy to {path}")
    _render(default_taxonomy(), str(path))


@app.command("validate")
def validate(
    ctx: typer.Context,
    file: Path | None = typer.Option(None, "--file", help=_FILE_HELP),
) -> None:
    """Check a taxonomy file; errors name the line and the bucket (exit code 2)."""
    from taskclf.infer.taxonomy import load_taxonomy

    path = _path(ctx, file)
    taxonomy = load_taxonomy(path)
    console.print(
        f"[green]ok[/]: {path}: {len(taxonomy.buckets)} buckets, aggregation "
        f"{taxonomy.aggregation}, reject label shown as {taxonomy.mixed_name!r}"
    )


@app.command("show")
def show(
    ctx: typer.Context,
    file: Path | None = typer.Option(None, "--file", help=_FILE_HELP),
) -> None:
    """Show the taxonomy in effect (the built-in default when no file exists)."""
    from taskclf.infer.taxonomy import default_taxonomy, load_taxonomy

    path = _path(ctx, file)
    if file is None and not path.exists():
        _render(default_taxonomy(), f"built-in default (no file at {path})")
        return
    _render(load_taxonomy(path), str(path))


def _render(taxonomy: TaxonomyConfig, source: str) -> None:
    from taskclf.infer.taxonomy import OTHER_BUCKET

    table = Table(title=f"Taxonomy: {source}")
    for column in ("bucket", "core labels", "color", "weight"):
        table.add_column(column)
    colors = taxonomy.colors()
    weights = taxonomy.weights()
    members: dict[str, list[str]] = {name: [] for name in taxonomy.bucket_names()}
    for label in LABEL_SET_V1:
        members[taxonomy.label_to_bucket[label]].append(label)
    for name in taxonomy.bucket_names():
        implicit = " (implicit)" if name == OTHER_BUCKET and not _listed(taxonomy, name) else ""
        color = colors[name]
        table.add_row(
            f"{name}{implicit}",
            ", ".join(members[name]),
            f"[{color}]■[/] {color}",
            f"{weights[name]:g}",
        )
    mixed_color = colors[taxonomy.mixed_name]
    table.add_row(
        taxonomy.mixed_name, "(rejected minutes)", f"[{mixed_color}]■[/] {mixed_color}", "-"
    )
    console.print(table)
    console.print(f"aggregation: {taxonomy.aggregation}")


def _listed(taxonomy: TaxonomyConfig, name: str) -> bool:
    return any(b.name == name for b in taxonomy.buckets)
