"""No raw window title, tab title or URL reaches any file under the taskclf home."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from taskclf.cli.main import run

TITLES = [
    "Quarterly-Report-Zebulon.docx - Word",
    "Re: Salary negotiation with Mxyzptlk",
    "patient_record_4711_Vandermeer.pdf",
    "Ünïcødé Tïtlé Ωmega",
]
URLS = [
    "https://intranet.secretcorp-xq.example/projects/zanzibar?token=hunter2",
    "https://mail.google.com/mail/u/0/#inbox/FMfcgzQbdrtBlQxq",
]
TAB_TITLES = ["Inbox (3) - alice.wonder@secretcorp-xq.example"]


def _secrets() -> list[bytes]:
    out = []
    for s in TITLES + URLS + TAB_TITLES:
        out.append(s.encode())
        out.append(s.lower().encode())
    # distinctive pieces too: hosts, tokens, query values
    out += [
        b"secretcorp-xq",
        b"zanzibar",
        b"hunter2",
        b"Mxyzptlk",
        b"Vandermeer",
        b"Zebulon",
        b"FMfcgzQbdrtBlQxq",
        b"alice.wonder",
    ]
    return out


def _readable(path: Path) -> bytes:
    """The file's bytes, plus every decoded cell and metadata for (compressed) parquet."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        cells = json.dumps(table.to_pylist(), default=str, ensure_ascii=False)
        meta = json.dumps({str(k): str(v) for k, v in (table.schema.metadata or {}).items()})
        data += cells.encode() + meta.encode()
    return data


def _export(path: Path) -> None:
    win, web = [], []
    for i in range(120):
        title = TITLES[i % len(TITLES)]
        ts = f"2024-05-06T10:{i // 4:02d}:{(i % 4) * 15:02d}+00:00"
        win.append({"timestamp": ts, "duration": 15, "data": {"app": "msedge.exe", "title": title}})
        web.append(
            {
                "timestamp": ts,
                "duration": 15,
                "data": {"url": URLS[i % 2], "title": TAB_TITLES[0], "audible": False},
            }
        )
    buckets = {
        "aw-watcher-window_box": {"type": "currentwindow", "hostname": "box", "events": win},
        "aw-watcher-web-edge_box": {"type": "web.tab.current", "hostname": "box", "events": web},
    }
    path.write_text(json.dumps({"buckets": buckets}))


def test_no_raw_title_or_url_on_disk(tmp_path):
    export = tmp_path / "input" / "export.json"
    export.parent.mkdir()
    _export(export)
    afk = tmp_path / "input" / "afk.csv"
    afk.write_text("timestamp,duration,status\n2024-05-06T10:00:00Z,1800,not-afk\n")
    home = tmp_path / "home"
    assert (
        run(
            [
                "--home",
                str(home),
                "ingest",
                "aw",
                "--input",
                str(export),
                "--afk-csv",
                str(afk),
                "--user-id",
                "p1",
            ]
        )
        == 0
    )
    assert (
        run(
            [
                "--home",
                str(home),
                "features",
                "build",
                "--from",
                "2024-05-06",
                "--to",
                "2024-05-06",
                "--user-id",
                "p1",
            ]
        )
        == 0
    )
    assert (
        run(
            [
                "--home",
                str(home),
                "features",
                "build",
                "--from",
                "2024-05-06",
                "--to",
                "2024-05-06",
                "--schema-version",
                "v1",
            ]
        )
        == 0
    )
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "events.parquet" for p in files)
    assert any(p.suffix == ".parquet" and "features_v3" in str(p) for p in files)
    assert any("features_v1" in str(p) for p in files)
    for p in files:
        data = _readable(p)
        for secret in _secrets():
            assert secret not in data, f"{secret!r} found in {p.relative_to(home)}"
