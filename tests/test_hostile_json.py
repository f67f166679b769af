"""Every JSON file taskclf reads refuses nesting too deep for Python's parser with its error.

``json.loads`` raises ``RecursionError`` (not ``JSONDecodeError``) on about a thousand nested
arrays; each reader turns that into the project's error naming the file, so the CLI exits 2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskclf.core.errors import TaskclfError

DEEP = "[" * 100_000 + "]" * 100_000


def _policy(path: Path) -> Any:
    from taskclf.core.inference_policy import load_inference_policy

    return load_inference_policy(path)


def _manifest(path: Path) -> Any:
    from taskclf.core.inference_policy import read_store_manifest

    return read_store_manifest(path.parent)


def _bundle_json(path: Path) -> Any:
    from taskclf.core.model_io import _read_json

    return _read_json(path)


def _calibrator(path: Path) -> Any:
    from taskclf.infer.calibration import load_calibrator

    return load_calibrator(path)


def _segments(path: Path) -> Any:
    from taskclf.report.export import read_segments

    return read_segments(path)


def _export(path: Path) -> Any:
    from taskclf.adapters.activitywatch.export import parse_export

    return parse_export(path)


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("inference_policy.json", _policy),
        ("store.json", _manifest),
        ("metadata.json", _bundle_json),
        ("global.json", _calibrator),
        ("segments.json", _segments),
        ("export.json", _export),
    ],
)
def test_deeply_nested_json_is_an_error_naming_the_file(
    tmp_path: Path, name: str, read: Callable[[Path], Any]
) -> None:
    path = tmp_path / name
    path.write_text(DEEP, encoding="utf-8")
    with pytest.raises(TaskclfError, match=str(path)):
        read(path)
