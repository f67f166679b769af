"""``taskclf demo``: the whole product on synthetic data, end to end (small: 3 users x 7 days)."""

from __future__ import annotations

import pytest

from taskclf.cli.main import run
from taskclf.core.paths import Layout


@pytest.mark.slow
def test_demo_runs_every_step_and_summarizes(tmp_path, capsys, monkeypatch) -> None:
    from taskclf.cli._common import console

    monkeypatch.setattr(console, "_width", 200)
    home = tmp_path / "home"
    assert run(["--home", str(home), "demo", "--users", "3", "--days", "7"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for part in (
        "demo finished",
        "Held-out test days: global calibrator vs per-user store",
        "Where the time went",
        "Where everything was written",
    ):
        assert part in out
    layout = Layout.resolve(home)
    (summary,) = layout.reports_dir.glob("range=*")
    assert sorted(p.name for p in summary.glob("*.png")) == ["user-01.png", "user-02.png",
                                                            "user-03.png"]  # fmt: skip
    assert layout.inference_policy.exists() and layout.segments_file.exists()
