"""The README cannot rot: its CLI reference matches --help and its walkthrough runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from taskclf.cli._reference import END, START, render_cli_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        rf"<!-- {name}:start -->\s*```bash\n(.*?)```\s*<!-- {name}:end -->", text, re.S
    )
    assert match, f"README has no {name} block"
    return match.group(1)


def test_readme_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


def test_cli_reference_matches_help():
    text = README.read_text(encoding="utf-8")
    block = START + text.split(START, 1)[1].split(END, 1)[0] + END
    assert block == render_cli_reference(), "run 'make docs' to refresh the README"


def _prepare(tmp_path: Path) -> None:
    from taskclf.synthetic.generator import generate_dataset

    data = generate_dataset(
        tmp_path / "synthetic", users=1, days=12, seed=5, start_date=date(2026, 1, 5)
    )
    shutil.copy(data.exports["user-01"], tmp_path / "my-export.json")
    labels = data.labels_csv.read_text(encoding="utf-8").replace("user-01", "me")
    (tmp_path / "my-labels.csv").write_text(labels, encoding="utf-8")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["COLUMNS"] = "120"
    env.pop("TASKCLF_HOME", None)
    return env


@pytest.mark.slow
def test_walkthrough_runs_as_written(tmp_path, aw_server):
    _prepare(tmp_path)
    script = "set -euo pipefail\n" + _block("walkthrough")
    out = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    home = tmp_path / "taskclf-home"
    assert (home / "models" / "inference_policy.json").exists()
    assert list((home / "artifacts" / "reports").rglob("daily.png"))

    # The live block against a real aw-server holding the same export.
    import httpx

    body = (tmp_path / "my-export.json").read_bytes()
    resp = httpx.post(
        f"{aw_server.url}/api/0/import",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 200
    live = _block("live").replace("http://localhost:5600", aw_server.url)
    live = live.replace(
        "taskclf infer online", "taskclf infer online --max-polls 2 --poll-seconds 0.1"
    )
    script = f'set -euo pipefail\nexport TASKCLF_HOME="{home}"\n' + live
    out = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    flat = " ".join(out.stdout.split())
    assert re.search(r"\b0 new\b", flat), flat[-2000:]  # the export was ingested already
    assert "stopped after 2 poll(s)" in flat
