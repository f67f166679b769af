"""Shared fixtures: temp homes, a tiny LightGBM model, and a real aw-server."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import settings

from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1

# CI (CI=true) runs hypothesis derandomized: the same examples every run, so a landing never
# depends on luck; locally the "dev" profile keeps exploring new examples. Neither has a
# per-example deadline: on these shared machines a first example (imports, numba's cache)
# can take longer than any deadline without anything being wrong.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"
if not REAL_DATA.is_dir():  # a checkout elsewhere: fall back to the workspace copy
    REAL_DATA = Path("/work/shared/data/real")


@pytest.fixture(autouse=True)
def _utc_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as on a UTC machine (a home without a configured zone uses the machine's)."""
    monkeypatch.setenv("TZ", "UTC")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """A fresh taskclf home in a temp dir."""
    return Layout.resolve(tmp_path / "home")


@pytest.fixture(scope="session")
def tiny_booster() -> lgb.Booster:
    """A small deterministic 8-class booster over 5 numeric features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = (np.abs(x[:, 0] * 3 + x[:, 1]).astype(int)) % len(LABEL_SET_V1)
    params = {
        "objective": "multiclass",
        "num_class": len(LABEL_SET_V1),
        "verbose": -1,
        "num_threads": 1,
        "seed": 0,
        "deterministic": True,
    }
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aw_server_executable() -> Path:
    """The aw-server installed by the Makefile into ``.venv-aw``."""
    override = os.environ.get("TASKCLF_AW_SERVER")
    path = Path(override) if override else REPO_ROOT / ".venv-aw" / "bin" / "aw-server"
    if not path.exists():
        pytest.fail(f"aw-server not found at {path}; run 'make aw' (make test does it)")
    return path


class AwServer:
    """A real aw-server process on 127.0.0.1 (``--testing``), stopped by pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(os.environ)
        for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            env[name] = str(self.root / name.lower())
        log = open(self.root / "aw-server.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                str(aw_server_executable()),
                "--testing",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/0/info", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"aw-server exited early; see {self.root / 'aw-server.log'}")
            time.sleep(0.1)
        raise RuntimeError("aw-server did not become ready in 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def aw_server(tmp_path: Path) -> Iterator[AwServer]:
    """A running aw-server with empty data; stopped by pid afterwards."""
    root = tmp_path / "aw"
    root.mkdir()
    server = AwServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
