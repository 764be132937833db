"""What a report remembers, and what changed since: the manifest and the sellers' state.

Each report folder holds, beside ``report.html``:

- ``state.parquet``: every seller of the cache as the report saw it (``id``,
  ``display_name``, ``flagged``, ``deleted``, ``in_report``: live and matching the
  report's filter), so the next report can tell what changed;
- ``manifest.json``: when the report was made, from which API and cache, the cache's
  checkpoint, the filter and period, row counts, and each file's size and SHA-256.
  It is written last: a folder without it is not a finished report.

:func:`find_previous` picks the report to compare with: a report folder (or its
``report.html`` / ``manifest.json``) named by the analyst, else the newest finished
report in the same parent folder. :func:`changes_since_report` compares the cache with
that report's state; :func:`changes_since_date` does what the cache alone can (sellers
new and deleted since a day; flags and renames leave no trace there).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..cache.filters import SellerFilter
from ..errors import ExportError

__all__ = [
    "MANIFEST",
    "STATE",
    "Change",
    "Changes",
    "Previous",
    "changes_since_date",
    "changes_since_report",
    "checkpoint",
    "file_facts",
    "find_previous",
    "history",
    "write_manifest",
    "write_state",
]

MANIFEST = "manifest.json"
PARTIAL = ".manifest.partial.json"  # what the notebook knows; run_report finishes it
STATE = "state.parquet"
MANIFEST_FORMAT = 1
EXAMPLES = 5  # names kept per kind of change, for the sentences and the table
KINDS = ("new", "flagged", "unflagged", "renamed", "deleted")


@dataclass(frozen=True)
class Previous:
    """A finished earlier report: its folder, when it was made, and its manifest."""

    folder: Path
    made_at: datetime
    manifest: dict[str, Any]

    @property
    def state(self) -> Path:
        return self.folder / STATE

    @property
    def rows(self) -> dict[str, int]:
        return dict(self.manifest.get("rows", {}))


@dataclass(frozen=True)
class Change:
    """One kind of change: how many sellers, and a few of them (name, and the old name
    for a rename), sorted by name."""

    kind: str
    count: int
    examples: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Changes:
    """What changed since a previous report (``known`` holds all five kinds) or since a
    date (only ``new`` and ``deleted``: the cache keeps no history of flags and names)."""

    since: datetime
    previous: Previous | None
    kinds: dict[str, Change]

    def count(self, kind: str) -> int | None:
        change = self.kinds.get(kind)
        return change.count if change else None


# -- finding the previous report -------------------------------------------------------------


def read_manifest(folder: Path) -> Previous | None:
    """The finished report in ``folder``, or None (no manifest, or not one of ours)."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        made_at = datetime.fromisoformat(manifest["made_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if manifest.get("format") != MANIFEST_FORMAT or not (folder / STATE).is_file():
        return None
    return Previous(folder, made_at, manifest)


def find_previous(output: Path, since: str | os.PathLike[str] | None) -> Previous | None:
    """The report to compare with: ``since`` when it names a report (its folder,
    ``report.html`` or ``manifest.json``), else the newest finished report among
    ``output`` (a report about to be replaced) and the folders beside it."""
    if since is not None:
        named = Path(since).expanduser()
        folder = named.parent if named.is_file() or named.suffix in (".html", ".json") \
            else named
        found = read_manifest(folder)
        if found is None:
            raise ExportError(
                f"--since {str(since)!r} is neither a date (YYYY-MM-DD) nor a finished "
                f"report (a folder with {MANIFEST} and {STATE}); pass one of those"
            )
        return found
    parent = output.parent
    candidates = [output] + (sorted(p for p in parent.iterdir() if p.is_dir() and p != output)
                             if parent.is_dir() else [])
    found_all = [p for p in (read_manifest(c) for c in candidates) if p is not None]
    return max(found_all, key=lambda p: p.made_at, default=None)


def history(output: Path, filter_facts: dict[str, Any]) -> list[tuple[datetime, int, int]]:
    """(made_at, flagged, sellers) of every finished report beside ``output`` made with
    the same filter, oldest first: the points of the flagged share's trend."""
    parent = output.parent
    if not parent.is_dir():
        return []
    points = []
    for folder in parent.iterdir():
        found = read_manifest(folder) if folder.is_dir() and folder != output else None
        if found is None or found.manifest.get("filter") != filter_facts:
            continue
        rows = found.rows
        if isinstance(rows.get("flagged"), int) and isinstance(rows.get("sellers"), int):
            points.append((found.made_at, rows["flagged"], rows["sellers"]))
    return sorted(points)


# -- the state and the manifest ------------------------------------------------------------


def _scope(chosen: SellerFilter) -> str:
    """The filter as one SQL predicate with its values written in (COPY takes no
    parameters); the values are SQL literals quoted by filters.literal."""
    return chosen.inline()


def write_state(con: Any, chosen: SellerFilter, path: Path) -> None:
    """Every seller of the cache (tombstones too) with whether this report showed it."""
    tmp = path.with_name(f".{path.name}.part")
    con.execute(
        f"""COPY (SELECT id, display_name, flagged, deleted_at IS NOT NULL AS deleted,
                   coalesce(deleted_at IS NULL AND ({_scope(chosen)}), false) AS in_report
                FROM visible_sellers_all)
            TO '{_sql_path(tmp)}' (FORMAT parquet)"""
    )
    os.replace(tmp, path)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def checkpoint(con: Any) -> dict[str, Any]:
    """The cache's sync checkpoint per feed (rev or high water, and when it last synced)."""
    rows = con.execute(
        "SELECT feed, mode, since_rev, strftime(high_water, '%Y-%m-%dT%H:%M:%S.%fZ'), "
        "strftime(last_synced, '%Y-%m-%dT%H:%M:%S.%fZ') FROM sync_state ORDER BY feed"
    ).fetchall()
    return {feed: {"mode": mode, "since_rev": rev, "high_water": high, "last_synced": last}
            for feed, mode, rev, high, last in rows}


def file_facts(paths: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Each file's size and SHA-256, by name."""
    facts = {}
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        facts[path.name] = {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
    return facts


def write_partial(folder: Path, facts: dict[str, Any]) -> None:
    """What the notebook knows (when, source, checkpoint, filter, rows), for run_report."""
    (folder / PARTIAL).write_text(json.dumps(facts, indent=2, default=str), encoding="utf-8")


def partial_title(folder: Path) -> str:
    """The title the notebook used (for the page's <title>), "Seller report" if unknown."""
    try:
        return str(json.loads((folder / PARTIAL).read_text(encoding="utf-8"))["title"])
    except (OSError, ValueError, KeyError):
        return "Seller report"


def write_manifest(folder: Path, files: Sequence[Path]) -> Path:
    """Finish the report: the notebook's facts plus every file's checksum, written last
    and atomically, so a folder with a manifest holds a whole report."""
    partial = folder / PARTIAL
    try:
        facts = json.loads(partial.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ExportError(
            f"the report notebook left no facts in {partial}; it must call "
            f"reports.build(...) (see sellerbench/reports/report.ipynb)"
        ) from None
    manifest = {"format": MANIFEST_FORMAT, **facts,
                "files": file_facts([folder / STATE, *files])}
    path = folder / MANIFEST
    tmp = folder / f".{MANIFEST}.part"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    partial.unlink()
    return path


# -- what changed ----------------------------------------------------------------------------

_KIND_SQL = {
    "new": "cur.in_report AND (prev.id IS NULL OR prev.deleted)",
    "flagged": "NOT prev.deleted AND NOT cur.deleted AND NOT prev.flagged AND cur.flagged "
               "AND (cur.in_report OR prev.in_report)",
    "unflagged": "NOT prev.deleted AND NOT cur.deleted AND prev.flagged AND NOT cur.flagged "
                 "AND (cur.in_report OR prev.in_report)",
    "renamed": "NOT prev.deleted AND NOT cur.deleted "
               "AND prev.display_name IS DISTINCT FROM cur.display_name "
               "AND (cur.in_report OR prev.in_report)",
    "deleted": "prev.in_report AND NOT prev.deleted AND (cur.id IS NULL OR cur.deleted)",
}


def _aggregates(kinds: dict[str, str]) -> str:
    parts = []
    for condition in kinds.values():
        parts.append(f"count(*) FILTER (WHERE {condition})")
        parts.append(
            f"list([coalesce(cur.display_name, prev.display_name), prev.display_name] "
            f"ORDER BY coalesce(cur.display_name, prev.display_name), "
            f"coalesce(cur.id, prev.id)) FILTER (WHERE {condition})[1:{EXAMPLES}]"
        )
    return ", ".join(parts)


def _changes(row: Sequence[Any], kinds: Sequence[str]) -> dict[str, Change]:
    out = {}
    for i, kind in enumerate(kinds):
        count, examples = row[2 * i], row[2 * i + 1] or []
        out[kind] = Change(kind, int(count), [
            (str(new), str(old) if kind == "renamed" else None) for new, old in examples
        ])
    return out


# After changes_since_report, the flagged sellers that were not flagged (or not there).
NEWLY_FLAGGED_SQL = ("id IN (SELECT cur.id FROM report_changes WHERE cur.flagged AND "
                     "(prev.id IS NULL OR NOT prev.flagged OR prev.deleted))")


def changes_since_report(con: Any, chosen: SellerFilter, previous: Previous) -> Changes:
    """Compare the cache with the state a previous report kept, seller by seller. The
    sellers that differ stay in the connection's temporary table ``report_changes``
    (columns ``cur`` and ``prev``, structs), for NEWLY_FLAGGED_SQL."""
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE report_changes AS
            WITH prev AS (SELECT * FROM read_parquet('{_sql_path(previous.state)}')),
            cur AS (SELECT id, display_name, flagged, deleted_at IS NOT NULL AS deleted,
                           coalesce(deleted_at IS NULL AND ({_scope(chosen)}), false)
                               AS in_report
                    FROM visible_sellers_all)
            SELECT cur, prev FROM cur FULL OUTER JOIN prev ON cur.id = prev.id
            WHERE prev.id IS NULL OR cur.id IS NULL OR prev.deleted <> cur.deleted
               OR prev.flagged <> cur.flagged OR prev.in_report <> cur.in_report
               OR prev.display_name IS DISTINCT FROM cur.display_name""")
    except Exception as exc:  # a damaged or foreign state file
        raise ExportError(
            f"the previous report's {STATE} in {previous.folder} cannot be read "
            f"({str(exc).splitlines()[0]}); pass --since another report or a date"
        ) from None
    row = con.execute(f"SELECT {_aggregates(_KIND_SQL)} FROM report_changes").fetchone()
    return Changes(previous.made_at, previous, _changes(row, KINDS))


def changes_since_date(con: Any, chosen: SellerFilter, day: date) -> Changes:
    """Sellers created and deleted since ``day`` (midnight UTC): all the cache can tell."""
    scope = _scope(chosen)
    kinds = {
        "new": f"deleted_at IS NULL AND created_at >= $day AND ({scope})",
        "deleted": f"deleted_at >= $day AND ({scope})",
    }
    parts = []
    for condition in kinds.values():
        parts.append(f"count(*) FILTER (WHERE {condition})")
        parts.append(f"list([display_name, NULL] ORDER BY display_name, id) "
                     f"FILTER (WHERE {condition})[1:{EXAMPLES}]")
    since = datetime(day.year, day.month, day.day, tzinfo=UTC)
    row = con.execute(f"SELECT {', '.join(parts)} FROM visible_sellers_all",
                      {"day": since}).fetchone()
    return Changes(since, None, _changes(row, list(kinds)))
