"""Scope and overlap rules of the label store (queries on an open connection).

Scope: a span of user ``u`` applies to ``u``; a span with ``user_id`` None applies to every
user. Two spans *share a scope* when they have the same user or either is user-agnostic.
The store keeps one invariant: **no two stored spans that share a scope overlap** (on their
stored ``[start_ts, end_ts)``). Consequently

* a user-agnostic span conflicts with every span it overlaps, of any user;
* inside one scope spans are disjoint, so at most one span that starts before an instant can
  contain it: the latest-starting one of each user group. Overlap queries therefore need only
  index range scans, never a scan of the whole table.

``extend_forward`` spans ("from now on") end where the next span sharing their scope starts
(see :func:`effective_end_us`). The extension is computed when reading, never stored, so it
never conflicts with anything and deleting the next span lets the extension run on again.
"""

from __future__ import annotations

import sqlite3

from taskclf.labels._db import SPAN_COLUMNS, Row, StoredSpan, row_to_stored, to_us


def _latest_before(
    conn: sqlite3.Connection, user_id: str | None, start_us: int, exclude: int | None
) -> Row | None:
    where = "user_id IS NULL" if user_id is None else "user_id = ?"
    params: list[object] = [] if user_id is None else [user_id]
    sql = (
        f"SELECT {SPAN_COLUMNS} FROM spans WHERE {where} AND start_us < ? AND span_id != ? "
        "ORDER BY start_us DESC LIMIT 1"
    )
    row = conn.execute(sql, (*params, start_us, -1 if exclude is None else exclude)).fetchone()
    return None if row is None else row


def _starting_within(
    conn: sqlite3.Connection, user_id: str | None, start_us: int, end_us: int, any_user: bool
) -> list[Row]:
    params: list[object]
    if any_user:
        where, params = "1", []
    elif user_id is None:
        where, params = "user_id IS NULL", []
    else:
        where, params = "user_id = ?", [user_id]
    sql = (
        f"SELECT {SPAN_COLUMNS} FROM spans WHERE {where} AND start_us >= ? AND start_us < ? "
        "ORDER BY start_us, span_id"
    )
    return list(conn.execute(sql, (*params, start_us, end_us)).fetchall())


def overlapping(
    conn: sqlite3.Connection,
    user_id: str | None,
    start_us: int,
    end_us: int,
    *,
    exclude: int | None = None,
) -> list[StoredSpan]:
    """Stored spans sharing a scope with ``user_id`` that overlap ``[start_us, end_us)``.

    Sorted by start. ``exclude`` leaves one span id out (used when updating a span).
    """
    rows: list[Row] = []
    if user_id is None:
        groups = [r[0] for r in conn.execute("SELECT DISTINCT user_id FROM spans")]
        rows.extend(_starting_within(conn, None, start_us, end_us, any_user=True))
    else:
        groups = [user_id, None]
        rows.extend(_starting_within(conn, user_id, start_us, end_us, any_user=False))
        rows.extend(_starting_within(conn, None, start_us, end_us, any_user=False))
    for group in groups:
        before = _latest_before(conn, group, start_us, exclude)
        if before is not None and before[3] > start_us:
            rows.append(before)
    found = {r[0]: r for r in rows if r[0] != exclude}
    return sorted(
        (row_to_stored(r) for r in found.values()),
        key=lambda s: (s.span.start_ts, s.span_id),
    )


def next_start_us(conn: sqlite3.Connection, user_id: str | None, after_us: int) -> int | None:
    """Start of the first span sharing a scope with ``user_id`` that starts after ``after_us``."""
    if user_id is None:
        row = conn.execute("SELECT MIN(start_us) FROM spans WHERE start_us > ?", (after_us,))
        value = row.fetchone()[0]
        return None if value is None else int(value)
    values = [
        conn.execute(
            "SELECT MIN(start_us) FROM spans WHERE user_id = ? AND start_us > ?",
            (user_id, after_us),
        ).fetchone()[0],
        conn.execute(
            "SELECT MIN(start_us) FROM spans WHERE user_id IS NULL AND start_us > ?",
            (after_us,),
        ).fetchone()[0],
    ]
    present = [int(v) for v in values if v is not None]
    return min(present) if present else None


def effective_end_us(
    conn: sqlite3.Connection, user_id: str | None, start_us: int, end_us: int, extend: bool
) -> int:
    """End of a span once ``extend_forward`` is resolved.

    A plain span ends at its stored end. An ``extend_forward`` span ends where the next span
    sharing its scope starts (for a user-agnostic span: the next span of anyone); when no span
    follows, it ends at its stored end (the time the label has been asserted up to).
    """
    if not extend:
        return end_us
    nxt = next_start_us(conn, user_id, start_us)
    return end_us if nxt is None else max(end_us, nxt)


def occupied_us(
    conn: sqlite3.Connection, user_id: str | None, start_us: int, end_us: int
) -> list[tuple[int, int]]:
    """Intervals inside ``[start_us, end_us)`` already labeled for ``user_id``'s scope.

    Unlike :func:`overlapping` this counts the *effective* extent of ``extend_forward`` spans,
    so filling gaps never shortens a "from now on" label. Sorted, clipped to the window.
    """
    spans = overlapping(conn, user_id, start_us, end_us)
    groups: list[str | None]
    if user_id is None:
        groups = [r[0] for r in conn.execute("SELECT DISTINCT user_id FROM spans")]
    else:
        groups = [user_id, None]
    seen = {s.span_id for s in spans}
    out: list[tuple[int, int]] = []
    for group in groups:
        row = _latest_before(conn, group, start_us, None)
        if row is not None and row[0] not in seen and row[7]:
            spans.append(row_to_stored(row))
    for stored in spans:
        s = stored.span
        a = to_us(s.start_ts)
        b = effective_end_us(conn, s.user_id, a, to_us(s.end_ts), s.extend_forward)
        lo, hi = max(a, start_us), min(b, end_us)
        if lo < hi:
            out.append((lo, hi))
    return sorted(out)
