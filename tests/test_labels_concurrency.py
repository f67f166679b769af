"""Several processes writing at once, and a process killed in the middle of an import.

Concurrency check: four processes add, overwrite and import on shared users at the same
time and record every write the store acknowledged (with the ids it returned). Span ids are
AUTOINCREMENT values handed out inside ``BEGIN IMMEDIATE`` transactions, so they give the
commit order. Replaying exactly the acknowledged writes in that order, one at a time, into a
fresh store must succeed write for write and give the same final store: nothing acknowledged
was lost, nothing refused left a trace, and the scope invariant holds.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from taskclf.core.errors import LabelConflictError
from taskclf.core.types import LabelSpan
from taskclf.labels._io import format_labels_csv
from taskclf.labels.store import LabelStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LABELS = ["Build", "Debug", "Meet", "Write"]


def _random_span(rng: random.Random, worker: int) -> LabelSpan:
    start = rng.randrange(0, 240)
    user = rng.choice(["shared", "shared", f"own{worker}", None])
    return LabelSpan(
        start_ts=T0 + timedelta(minutes=start),
        end_ts=T0 + timedelta(minutes=start + rng.randrange(1, 25)),
        label=rng.choice(LABELS),
        user_id=user,
        provenance=f"worker{worker}",
        extend_forward=rng.random() < 0.1,
    )


def _worker(db: str, worker: int, out: str, barrier: object) -> None:
    rng = random.Random(1000 + worker)
    store = LabelStore(Path(db))
    acked: list[dict[str, object]] = []
    barrier.wait()  # type: ignore[attr-defined]
    for step in range(30):
        kind = rng.choice(["add", "add", "overwrite", "import"])
        try:
            if kind == "import":
                spans = [_random_span(rng, worker) for _ in range(rng.randrange(2, 6))]
                path = Path(out).with_suffix(f".{step}.csv")
                path.write_text(format_labels_csv(spans), encoding="utf-8")
                result = store.import_file(path)
                added = [(sid, spans[row - 1].model_dump(mode="json")) for row, sid in result.added]
                if added:
                    acked.append({"kind": "import", "order": added[0][0], "spans": added})
            else:
                span = _random_span(rng, worker)
                res = store.add(span, overwrite=kind == "overwrite")
                acked.append(
                    {
                        "kind": kind,
                        "order": res.span_id,
                        "spans": [(res.span_id, span.model_dump(mode="json"))],
                    }
                )
        except LabelConflictError:
            pass
    Path(out).write_text(json.dumps(acked), encoding="utf-8")


def _values(store: LabelStore) -> list[LabelSpan]:
    return store.list_spans(resolve_extend=False)


def test_four_processes_lose_no_acknowledged_write(tmp_path):
    db = tmp_path / "labels.sqlite"
    LabelStore(db)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    outs = [tmp_path / f"w{i}.json" for i in range(4)]
    procs = [
        ctx.Process(target=_worker, args=(str(db), i, str(outs[i]), barrier)) for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    ops = [op for out in outs for op in json.loads(out.read_text(encoding="utf-8"))]
    assert len(ops) >= 20  # many writes were acknowledged; conflicting ones were refused
    assert any(op["kind"] == "overwrite" for op in ops)
    assert any(op["kind"] == "import" for op in ops)

    final = LabelStore(db)
    spans = _values(final)
    for i, x in enumerate(spans):
        for y in spans[i + 1 :]:
            if x.user_id is None or y.user_id is None or x.user_id == y.user_id:
                assert x.end_ts <= y.start_ts or y.end_ts <= x.start_ts, (x, y)

    replay = LabelStore(tmp_path / "replay.sqlite")
    for op in sorted(ops, key=lambda o: o["order"]):
        batch = [LabelSpan.model_validate(s) for _, s in op["spans"]]
        if op["kind"] == "import":
            result = replay.import_spans(batch)
            assert result.conflicts == () and len(result.added) == len(batch)
        else:
            replay.add(batch[0], overwrite=op["kind"] == "overwrite")
    assert _values(replay) == spans
    assert replay.list_spans() == final.list_spans()


_CHILD = """
import sys, time
from pathlib import Path
from taskclf.labels.store import LabelStore

db, csv, marker, pause_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def progress(done, total):
    if done == pause_at:
        Path(marker).write_text("mid")
        time.sleep(120)

store = LabelStore(Path(db))
Path(marker + ".ready").write_text("ready")
store.import_file(Path(csv), progress=progress if pause_at > 0 else None)
Path(marker + ".done").write_text("done")
"""


def _big_import(tmp_path: Path, n: int) -> tuple[Path, list[LabelSpan]]:
    spans = [
        LabelSpan(
            start_ts=T0 + timedelta(days=1, minutes=2 * i),
            end_ts=T0 + timedelta(days=1, minutes=2 * i + 1),
            label=LABELS[i % 4],
            user_id=f"user{i % 3}",
            provenance="import",
        )
        for i in range(n)
    ]
    path = tmp_path / "big.csv"
    path.write_text(format_labels_csv(spans), encoding="utf-8")
    return path, spans


def _seed(db: Path) -> list[LabelSpan]:
    store = LabelStore(db)
    for i in range(30):
        store.add(
            LabelSpan(
                start_ts=T0 + timedelta(minutes=5 * i),
                end_ts=T0 + timedelta(minutes=5 * i + 4),
                label="Write",
                user_id="user0",
            )
        )
    return _values(store)


def _spawn(db: Path, csv: Path, marker: Path, pause_at: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), str(csv), str(marker), str(pause_at)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(path: Path, proc: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, f"child never wrote {path.name}"
        time.sleep(0.01)


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_sigkill_in_the_middle_of_an_import_leaves_the_store_as_before(tmp_path):
    db = tmp_path / "labels.sqlite"
    before = _seed(db)
    csv, _ = _big_import(tmp_path, 20000)
    marker = tmp_path / "marker"
    proc = _spawn(db, csv, marker, pause_at=10000)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _integrity(db) == "ok"
    assert _values(LabelStore(db)) == before


def test_sigkill_at_random_moments_gives_before_or_after(tmp_path):
    db = tmp_path / "labels.sqlite"
    before = _seed(db)
    csv, spans = _big_import(tmp_path, 30000)
    after_store = LabelStore(tmp_path / "expected.sqlite")
    after_store.import_spans(before)
    after_store.import_spans(spans)
    after = _values(after_store)
    rng = random.Random(3)
    for trial in range(3):
        marker = tmp_path / f"m{trial}"
        proc = _spawn(db, csv, marker, pause_at=0)
        _wait_for(Path(str(marker) + ".ready"), proc)
        time.sleep(rng.uniform(0.05, 1.2))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _integrity(db) == "ok"
        now = _values(LabelStore(db))
        assert now in (before, after)
        if now == after:
            break
