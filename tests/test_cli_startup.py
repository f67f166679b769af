"""CLI start-up stays light: ``taskclf --help`` must not import the heavy libraries."""

from __future__ import annotations

import os
import subprocess
import sys

from test_cli_skeleton import GROUPS

HEAVY_MODULES = ("lightgbm", "sklearn", "scipy", "matplotlib", "pandas", "pyarrow", "numba")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import sys, taskclf.cli.main\n"
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    proc = _run("-c", code)
    assert proc.returncode == 0, proc.stderr
    loaded = [m for m in proc.stdout.strip().split(",") if m]
    assert not loaded, f"'import taskclf.cli.main' imported heavy modules: {loaded}"


def test_help_lists_every_command_group() -> None:
    proc = _run("-m", "taskclf", "--help")
    assert proc.returncode == 0, proc.stderr
    for name in GROUPS:
        assert name in proc.stdout, f"'{name}' missing from 'taskclf --help':\n{proc.stdout}"
