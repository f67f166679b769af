"""SQLite plumbing of the label store: schema, connections, transactions, row conversion.

Durability: the database runs in WAL mode with ``synchronous=FULL``, so every ``COMMIT``
fsyncs the write-ahead log before it returns. ``NORMAL`` would keep the database consistent
but may lose the last acknowledged transactions on power loss; a label is the one thing a user
writes by hand, so we pay the fsync. Writers open their transaction with ``BEGIN IMMEDIATE``
(the write lock is taken up front, so two processes never both read-then-write the same state)
and wait up to ``busy_timeout`` seconds for each other; readers never block writers in WAL.

Timestamps are stored as integer microseconds since the Unix epoch (UTC), which round-trips
every aware ``datetime`` exactly and keeps interval comparisons integer-exact.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from taskclf.core.errors import ArtifactError
from taskclf.core.types import LabelSpan

#: Version of the on-disk schema (the ``schema_version`` table).
STORE_SCHEMA_VERSION: Final = 1
#: Seconds a writer waits for another process's transaction before giving up.
DEFAULT_BUSY_TIMEOUT_SECONDS: Final = 60.0

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)

_SCHEMA_SQL: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS spans (
        span_id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT,
        start_us INTEGER NOT NULL,
        end_us INTEGER NOT NULL,
        label TEXT NOT NULL,
        provenance TEXT NOT NULL,
        confidence REAL,
        extend_forward INTEGER NOT NULL CHECK (extend_forward IN (0, 1)),
        CHECK (end_us > start_us)
    )""",
    "CREATE INDEX IF NOT EXISTS spans_by_user_start ON spans (user_id, start_us)",
    "CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_us)",
    """CREATE TABLE IF NOT EXISTS queue (
        queue_id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        bucket_start_us INTEGER NOT NULL,
        local_day TEXT NOT NULL,
        reason TEXT NOT NULL,
        confidence REAL NOT NULL,
        core_label TEXT NOT NULL,
        predicted_label TEXT NOT NULL,
        model_id TEXT NOT NULL,
        UNIQUE (user_id, bucket_start_us)
    )""",
    "CREATE INDEX IF NOT EXISTS queue_by_day ON queue (user_id, local_day)",
)

SPAN_COLUMNS: Final = (
    "span_id, user_id, start_us, end_us, label, provenance, confidence, extend_forward"
)


def to_us(ts: datetime) -> int:
    """Aware ``ts`` as integer microseconds since the epoch (exact)."""
    return (ts - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """Inverse of :func:`to_us` (aware UTC)."""
    return _EPOCH + timedelta(microseconds=int(us))


@dataclass(frozen=True)
class StoredSpan:
    """A span as stored: its id (never reused) and its value.

    ``span.end_ts`` is the stored end unless the record came from a listing that resolved
    ``extend_forward`` spans, in which case it is the effective end.
    """

    span_id: int
    span: LabelSpan

    def describe(self) -> str:
        """Short human description for messages (no titles, nothing private)."""
        s = self.span
        who = f"user {s.user_id!r}" if s.user_id is not None else "every user"
        return (
            f"span #{self.span_id} [{s.start_ts.isoformat()}, {s.end_ts.isoformat()}) "
            f"{s.label} ({who}, provenance {s.provenance})"
        )


Row = tuple[int, str | None, int, int, str, str, float | None, int]


def row_to_stored(row: Row, *, end_us: int | None = None) -> StoredSpan:
    """Build a :class:`StoredSpan` from a ``SELECT SPAN_COLUMNS`` row (stored values trusted)."""
    span_id, user_id, start_us, stored_end, label, provenance, confidence, ef = row
    span = LabelSpan.model_construct(
        start_ts=from_us(start_us),
        end_ts=from_us(stored_end if end_us is None else end_us),
        label=label,
        provenance=provenance,
        user_id=user_id,
        confidence=confidence,
        extend_forward=bool(ef),
    )
    return StoredSpan(span_id=int(span_id), span=span)


def span_params(span: LabelSpan) -> tuple[str | None, int, int, str, str, float | None, int]:
    """Column values of ``span`` in ``SPAN_COLUMNS`` order (without the id)."""
    return (
        span.user_id,
        to_us(span.start_ts),
        to_us(span.end_ts),
        span.label,
        span.provenance,
        span.confidence,
        int(span.extend_forward),
    )


def _sqlite_failure(path: Path, exc: sqlite3.Error) -> ArtifactError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return ArtifactError(
            f"label store '{path}' stayed locked by another process; wait for it to finish "
            "and retry"
        )
    return ArtifactError(
        f"label store '{path}' cannot be used: {text}; if the file is corrupt, restore it "
        "from a backup or an exported CSV ('taskclf labels import')"
    )


class Database:
    """Connections and transactions on one SQLite file (one connection per operation).

    A connection per operation keeps the store safe across ``fork`` and threads: nothing
    stateful is shared between operations except the file itself.
    """

    def __init__(self, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS):
        self.path = path
        self.busy_timeout = busy_timeout
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactError(
                f"label store directory '{path.parent}' cannot be created: {exc}"
            ) from None
        self._initialize()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _initialize(self) -> None:
        with self.write() as conn:
            for stmt in _SCHEMA_SQL:
                conn.execute(stmt)
            rows = conn.execute("SELECT version FROM schema_version").fetchall()
            if not rows:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (1,))
            elif len(rows) != 1 or rows[0][0] != STORE_SCHEMA_VERSION:
                got = [r[0] for r in rows]
                raise ArtifactError(
                    f"label store '{self.path}' has schema version {got}, this taskclf "
                    f"reads version {STORE_SCHEMA_VERSION}; upgrade taskclf or export the "
                    "labels with the version that wrote them"
                )
        # WAL is a property of the file; switching needs no open transaction.
        conn = self._open()
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.Error as exc:
            raise _sqlite_failure(self.path, exc) from None
        finally:
            conn.close()
        if str(mode).lower() != "wal":
            raise ArtifactError(
                f"label store '{self.path}' cannot use WAL journaling (got {mode!r}); "
                "put TASKCLF_HOME on a local file system"
            )

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.Error as exc:
            raise _sqlite_failure(self.path, exc) from None

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error.

        The commit has returned (and fsynced the WAL) when the ``with`` block exits normally:
        that is the moment a write is acknowledged.
        """
        conn = self._open()
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _sqlite_failure(self.path, exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise _sqlite_failure(self.path, exc) from None
            except BaseException:
                _rollback(conn)
                raise
        finally:
            conn.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for all queries inside."""
        conn = self._open()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise _sqlite_failure(self.path, exc) from None
            finally:
                _rollback(conn)
        finally:
            conn.close()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
