"""The label store: label spans in SQLite at ``Layout.labels_db`` that never lose a label.

Rules (see :mod:`taskclf.labels._overlap` for the scope invariant and
:mod:`taskclf.labels._db` for durability):

* **Scope.** ``user_id`` None means "applies to every user". Spans of the same user, or where
  either span is user-agnostic, share a scope; no two stored spans sharing a scope overlap.
* **Adding.** An overlap is refused with :class:`LabelConflictError` naming the stored span,
  unless ``overwrite=True``, which truncates, splits or removes the stored spans the new one
  covers. A span of one user never cuts a user-agnostic span (that would silently remove the
  label for every other user): such an overlap is always a conflict.
* **Weak labels.** Spans with provenance ``weak:<rule>`` are machine proposals. A non-weak span
  always wins: adding one cuts the weak spans it overlaps without needing ``overwrite``. Weak
  proposals are stored only into unlabeled time (:meth:`LabelStore.fill_gaps`).
* **extend_forward** spans end where the next span sharing their scope starts; listings
  resolve that end (``resolve_extend=True``), the CSV export keeps the stored value.
* Every operation is one transaction (``BEGIN IMMEDIATE``); a method that returned has
  committed durably. A batch (import, gap filling) is all-or-nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from taskclf.core.errors import LabelConflictError, LabelError
from taskclf.core.paths import Layout
from taskclf.core.time import ensure_utc
from taskclf.core.types import LabelSpan, validate_user_id
from taskclf.labels._db import (
    DEFAULT_BUSY_TIMEOUT_SECONDS,
    SPAN_COLUMNS,
    Database,
    StoredSpan,
    from_us,
    row_to_stored,
    span_params,
    to_us,
)
from taskclf.labels._overlap import effective_end_us, occupied_us, overlapping

__all__ = [
    "SPAN_FRAME_COLUMNS",
    "WEAK_PREFIX",
    "AddResult",
    "FillResult",
    "ImportConflict",
    "ImportResult",
    "LabelStore",
    "StoredSpan",
    "is_weak",
]

#: The seven span columns of frames, CSV and Parquet files (DESIGN §4.1), in order.
SPAN_FRAME_COLUMNS: tuple[str, ...] = (
    "start_ts",
    "end_ts",
    "label",
    "provenance",
    "user_id",
    "confidence",
    "extend_forward",
)
#: Provenance prefix of weak-rule proposals.
WEAK_PREFIX = "weak:"
_MAX_LISTED_CONFLICTS = 3


def is_weak(span: LabelSpan) -> bool:
    """Whether ``span`` is a weak-rule proposal (provenance ``weak:<rule>``)."""
    return span.provenance.startswith(WEAK_PREFIX)


@dataclass(frozen=True)
class AddResult:
    """Outcome of :meth:`LabelStore.add` / :meth:`LabelStore.update`.

    Attributes:
        span_id: Id of the stored span.
        cut: Prior values of the stored spans that were truncated, split or removed.
    """

    span_id: int
    cut: tuple[StoredSpan, ...] = ()


@dataclass(frozen=True)
class ImportConflict:
    """One row of an import that overlaps a stored span and was not added."""

    row: int
    span: LabelSpan
    message: str


@dataclass(frozen=True)
class ImportResult:
    """Outcome of :meth:`LabelStore.import_spans` (rows are 1-based data row numbers)."""

    added: tuple[tuple[int, int], ...] = ()
    duplicates: tuple[int, ...] = ()
    conflicts: tuple[ImportConflict, ...] = ()
    cut: tuple[StoredSpan, ...] = ()

    @property
    def added_ids(self) -> list[int]:
        """Ids of the spans this import stored."""
        return [span_id for _, span_id in self.added]


@dataclass(frozen=True)
class FillResult:
    """Outcome of :meth:`LabelStore.fill_gaps`."""

    added: tuple[StoredSpan, ...] = ()
    proposed_seconds: float = 0.0
    added_seconds: float = 0.0
    skipped: tuple[LabelSpan, ...] = field(default=())


def _conflict_message(span: LabelSpan, hard: Sequence[StoredSpan]) -> str:
    who = f"user {span.user_id!r}" if span.user_id is not None else "every user"
    head = (
        f"label span [{span.start_ts.isoformat()}, {span.end_ts.isoformat()}) {span.label} "
        f"for {who} overlaps "
    )
    listed = "; ".join(s.describe() for s in hard[:_MAX_LISTED_CONFLICTS])
    more = f" and {len(hard) - _MAX_LISTED_CONFLICTS} more" if len(hard) > 3 else ""
    if span.user_id is not None and any(s.span.user_id is None for s in hard):
        advice = (
            "a span of one user cannot cut a span that applies to every user; delete or "
            "edit that span first, or add the new span without a user id"
        )
    else:
        advice = (
            "change the times, or add it with --overwrite (overwrite=True) to cut the stored span"
        )
    return f"{head}{listed}{more}; {advice}"


def _may_cut(stored: StoredSpan, new: LabelSpan, overwrite: bool) -> bool:
    if new.user_id is not None and stored.span.user_id is None:
        return False
    return overwrite or (is_weak(stored.span) and not is_weak(new))


def _cut(conn: sqlite3.Connection, stored: StoredSpan, start_us: int, end_us: int) -> None:
    s = stored.span
    a, b = to_us(s.start_ts), to_us(s.end_ts)
    keep_left, keep_right = a < start_us, b > end_us
    if keep_left and keep_right:
        conn.execute("UPDATE spans SET end_us = ? WHERE span_id = ?", (start_us, stored.span_id))
        right = s.model_copy(update={"start_ts": from_us(end_us)})
        conn.execute(
            "INSERT INTO spans (user_id, start_us, end_us, label, provenance, confidence, "
            "extend_forward) VALUES (?, ?, ?, ?, ?, ?, ?)",
            span_params(right),
        )
    elif keep_left:
        conn.execute("UPDATE spans SET end_us = ? WHERE span_id = ?", (start_us, stored.span_id))
    elif keep_right:
        conn.execute("UPDATE spans SET start_us = ? WHERE span_id = ?", (end_us, stored.span_id))
    else:
        conn.execute("DELETE FROM spans WHERE span_id = ?", (stored.span_id,))


def _make_room(
    conn: sqlite3.Connection, span: LabelSpan, *, overwrite: bool, exclude: int | None = None
) -> tuple[StoredSpan, ...]:
    start_us, end_us = to_us(span.start_ts), to_us(span.end_ts)
    found = overlapping(conn, span.user_id, start_us, end_us, exclude=exclude)
    hard = [s for s in found if not _may_cut(s, span, overwrite)]
    if hard:
        raise LabelConflictError(_conflict_message(span, hard))
    for stored in found:
        _cut(conn, stored, start_us, end_us)
    return tuple(found)


def _insert(conn: sqlite3.Connection, span: LabelSpan) -> int:
    cur = conn.execute(
        "INSERT INTO spans (user_id, start_us, end_us, label, provenance, confidence, "
        "extend_forward) VALUES (?, ?, ?, ?, ?, ?, ?)",
        span_params(span),
    )
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


def _find_identical(conn: sqlite3.Connection, span: LabelSpan) -> int | None:
    row = conn.execute(
        "SELECT span_id FROM spans WHERE user_id IS ? AND start_us = ? AND end_us = ? "
        "AND label = ? AND provenance = ? AND confidence IS ? AND extend_forward = ?",
        span_params(span),
    ).fetchone()
    return None if row is None else int(row[0])


def _gaps(start_us: int, end_us: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    cursor = start_us
    for a, b in taken:
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end_us:
        out.append((cursor, end_us))
    return out


class LabelStore:
    """Label spans in one SQLite file (safe for concurrent processes).

    Args:
        path: The database file (created with its directory if missing).
        busy_timeout: Seconds a write waits for another process's transaction.
    """

    def __init__(self, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS):
        self._db = Database(Path(path), busy_timeout=busy_timeout)

    @classmethod
    def for_layout(cls, layout: Layout) -> LabelStore:
        """The store at ``layout.labels_db``."""
        return cls(layout.labels_db)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    @property
    def db(self) -> Database:
        """Transactions on the underlying database (used by the labeling queue)."""
        return self._db

    # writes ---------------------------------------------------------------------------
    def add(self, span: LabelSpan, *, overwrite: bool = False) -> AddResult:
        """Store ``span``; raise :class:`LabelConflictError` on a refused overlap."""
        with self._db.write() as conn:
            cut = _make_room(conn, span, overwrite=overwrite)
            return AddResult(span_id=_insert(conn, span), cut=cut)

    def update(self, span_id: int, span: LabelSpan, *, overwrite: bool = False) -> AddResult:
        """Replace the value of stored span ``span_id`` (same overlap rules as :meth:`add`)."""
        with self._db.write() as conn:
            self._get(conn, span_id)
            cut = _make_room(conn, span, overwrite=overwrite, exclude=span_id)
            conn.execute(
                "UPDATE spans SET user_id = ?, start_us = ?, end_us = ?, label = ?, "
                "provenance = ?, confidence = ?, extend_forward = ? WHERE span_id = ?",
                (*span_params(span), span_id),
            )
            return AddResult(span_id=span_id, cut=cut)

    def delete(self, span_id: int) -> StoredSpan:
        """Remove stored span ``span_id`` and return what it was."""
        with self._db.write() as conn:
            stored = self._get(conn, span_id)
            conn.execute("DELETE FROM spans WHERE span_id = ?", (span_id,))
            return stored

    def import_spans(
        self,
        spans: Sequence[LabelSpan],
        *,
        overwrite: bool = False,
        strict: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportResult:
        """Merge ``spans`` into the store in one transaction, in order.

        A span identical (all seven fields) to a stored one is a duplicate and changes
        nothing, so importing the same file twice is a no-op. A span that overlaps stored
        spans (or an earlier span of the same batch) under the :meth:`add` rules is a
        conflict: it is listed in the result and not added while every other span is, or,
        with ``strict=True``, the whole import is refused and nothing changes.
        ``progress(done, total)`` is called after each span inside the transaction.
        """
        added: list[tuple[int, int]] = []
        duplicates: list[int] = []
        conflicts: list[ImportConflict] = []
        cut: list[StoredSpan] = []
        with self._db.write() as conn:
            for i, span in enumerate(spans, start=1):
                if _find_identical(conn, span) is not None:
                    duplicates.append(i)
                else:
                    try:
                        cut.extend(_make_room(conn, span, overwrite=overwrite))
                        added.append((i, _insert(conn, span)))
                    except LabelConflictError as exc:
                        conflicts.append(ImportConflict(row=i, span=span, message=str(exc)))
                if progress is not None:
                    progress(i, len(spans))
            if strict and conflicts:
                first = conflicts[0]
                raise LabelConflictError(
                    f"import refused (strict): {len(conflicts)} of {len(spans)} spans conflict "
                    f"with stored spans, nothing was imported; first, row {first.row}: "
                    f"{first.message}"
                )
        return ImportResult(tuple(added), tuple(duplicates), tuple(conflicts), tuple(cut))

    def fill_gaps(self, spans: Sequence[LabelSpan]) -> FillResult:
        """Store the parts of ``spans`` that fall in unlabeled time (one transaction).

        Nothing stored is changed: each span is clipped to the gaps left by the stored spans
        sharing its scope (``extend_forward`` spans count to their effective end) and by the
        spans of this batch stored before it. Used for weak-rule proposals.
        """
        added: list[StoredSpan] = []
        skipped: list[LabelSpan] = []
        proposed = stored_us = 0
        with self._db.write() as conn:
            for span in spans:
                a, b = to_us(span.start_ts), to_us(span.end_ts)
                proposed += b - a
                pieces = _gaps(a, b, occupied_us(conn, span.user_id, a, b))
                if not pieces:
                    skipped.append(span)
                for lo, hi in pieces:
                    piece = span.model_copy(update={"start_ts": from_us(lo), "end_ts": from_us(hi)})
                    added.append(StoredSpan(_insert(conn, piece), piece))
                    stored_us += hi - lo
        return FillResult(tuple(added), proposed / 1e6, stored_us / 1e6, tuple(skipped))

    def import_file(
        self,
        path: Path,
        *,
        overwrite: bool = False,
        strict: bool = False,
        user_id: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportResult:
        """Import a ``.csv`` or ``.parquet`` label file (see :mod:`taskclf.labels._io`).

        The file is validated completely first; then :meth:`import_spans` merges it.
        ``user_id`` is given to rows whose ``user_id`` cell is empty.
        """
        from taskclf.labels._io import import_labels

        return import_labels(
            self, path, overwrite=overwrite, strict=strict, user_id=user_id, progress=progress
        )

    def export_csv(
        self,
        path: Path,
        *,
        user_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> int:
        """Write the stored spans as a deterministic CSV (atomically); return the count."""
        from taskclf.labels._io import export_labels

        return export_labels(self, path, user_id=user_id, start=start, end=end)

    # reads ----------------------------------------------------------------------------
    def get(self, span_id: int) -> StoredSpan:
        """Stored span ``span_id`` (stored end, not resolved)."""
        with self._db.read() as conn:
            return self._get(conn, span_id)

    def _get(self, conn: sqlite3.Connection, span_id: int) -> StoredSpan:
        row = conn.execute(
            f"SELECT {SPAN_COLUMNS} FROM spans WHERE span_id = ?", (int(span_id),)
        ).fetchone()
        if row is None:
            raise LabelError(
                f"no label span #{span_id} in '{self.path}'; see the ids with 'taskclf labels list'"
            )
        return row_to_stored(row)

    def list_records(
        self,
        *,
        user_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        provenance: str | None = None,
        include_agnostic: bool = True,
        resolve_extend: bool = True,
    ) -> list[StoredSpan]:
        """Stored spans with their ids, sorted by start, user (agnostic first), id.

        Args:
            user_id: Only spans that apply to this user (its own and, with
                ``include_agnostic``, the user-agnostic ones); None lists every span.
            start: Keep spans ending after this instant (aware).
            end: Keep spans starting before this instant (aware).
            provenance: Exact provenance, or a prefix ending in ``:`` (``"weak:"``).
            include_agnostic: With ``user_id``, also list spans that apply to every user.
            resolve_extend: Report ``extend_forward`` spans with their effective end.
        """
        where: list[str] = []
        params: list[object] = []
        if user_id is not None:
            validate_user_id(user_id, where="in the label filter")
            where.append("(user_id = ? OR user_id IS NULL)" if include_agnostic else "user_id = ?")
            params.append(user_id)
        if end is not None:
            where.append("start_us < ?")
            params.append(to_us(ensure_utc(end, field="end")))
        start_us = None if start is None else to_us(ensure_utc(start, field="start"))
        if start_us is not None:
            where.append("(end_us > ? OR extend_forward = 1)" if resolve_extend else "end_us > ?")
            params.append(start_us)
        if provenance is not None:
            if provenance.endswith(":"):
                where.append("substr(provenance, 1, ?) = ?")
                params.extend([len(provenance), provenance])
            else:
                where.append("provenance = ?")
                params.append(provenance)
        sql = (
            f"SELECT {SPAN_COLUMNS} FROM spans WHERE {' AND '.join(where) or '1'} "
            "ORDER BY start_us, user_id IS NOT NULL, user_id, span_id"
        )
        out: list[StoredSpan] = []
        with self._db.read() as conn:
            for row in conn.execute(sql, params).fetchall():
                end_us = row[3]
                if resolve_extend and row[7]:
                    end_us = effective_end_us(conn, row[1], row[2], row[3], True)
                if start_us is not None and end_us <= start_us:
                    continue
                out.append(row_to_stored(row, end_us=end_us))
        return out

    def list_spans(
        self,
        *,
        user_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        provenance: str | None = None,
        include_agnostic: bool = True,
        resolve_extend: bool = True,
    ) -> list[LabelSpan]:
        """Like :meth:`list_records` without the ids."""
        return [
            r.span
            for r in self.list_records(
                user_id=user_id,
                start=start,
                end=end,
                provenance=provenance,
                include_agnostic=include_agnostic,
                resolve_extend=resolve_extend,
            )
        ]

    def spans_frame(
        self,
        *,
        user_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        provenance: str | None = None,
        include_agnostic: bool = True,
        resolve_extend: bool = True,
    ) -> pd.DataFrame:
        """The listed spans as a frame with :data:`SPAN_FRAME_COLUMNS`.

        Dtypes: ``start_ts``/``end_ts`` ``datetime64[us, UTC]``; ``label``, ``provenance``,
        ``user_id`` object (None = every user); ``confidence`` float64 (NaN = none);
        ``extend_forward`` bool.
        """
        spans = self.list_spans(
            user_id=user_id,
            start=start,
            end=end,
            provenance=provenance,
            include_agnostic=include_agnostic,
            resolve_extend=resolve_extend,
        )
        return spans_to_frame(spans)

    def count(self) -> int:
        """Number of stored spans."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    def user_ids(self) -> list[str]:
        """Sorted ids of the users that have spans of their own."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT user_id FROM spans WHERE user_id IS NOT NULL ORDER BY user_id"
            ).fetchall()
        return [str(r[0]) for r in rows]


def spans_to_frame(spans: Sequence[LabelSpan]) -> pd.DataFrame:
    """Spans as a frame with :data:`SPAN_FRAME_COLUMNS` (dtypes as :meth:`spans_frame`)."""
    utc = "datetime64[us, UTC]"
    return pd.DataFrame(
        {
            "start_ts": pd.Series([s.start_ts for s in spans], dtype=utc),
            "end_ts": pd.Series([s.end_ts for s in spans], dtype=utc),
            "label": pd.Series([s.label for s in spans], dtype=object),
            "provenance": pd.Series([s.provenance for s in spans], dtype=object),
            "user_id": pd.Series([s.user_id for s in spans], dtype=object),
            "confidence": pd.Series(
                [float("nan") if s.confidence is None else s.confidence for s in spans],
                dtype="float64",
            ),
            "extend_forward": pd.Series([s.extend_forward for s in spans], dtype=bool),
        },
        columns=list(SPAN_FRAME_COLUMNS),
    )
