"""Runs: what each fetch run did per source, and the operator alerts raised from them."""

from __future__ import annotations

import json
from datetime import datetime

from ..models import SourceResult
from .base import StoreBase, parse, utc
from .records import AlertState, SourceRunSummary

#: The newest runs read for a source's health (its failures in a row, its last success):
#: kept whatever their age, so pruning the history does not change what ``status`` says
#: of a source that runs every time (one disabled or removed loses its old runs).
HISTORY = 100
#: The most old runs one :meth:`RunsMixin.prune_runs` removes: a store years old catches
#: up over a few runs instead of making one cron cycle long.
PRUNE_BATCH = 1000


class RunsMixin(StoreBase):
    """Run history and alerts."""

    def first_run_started(self) -> datetime | None:
        """When the first run recorded here started. Runs are recorded one at a time, under
        the run lock, so the first is the lowest id: read from the table's start, not by a
        scan of every run (which a quiet cycle made before the first digest, growing with
        the run history)."""
        row = self.db.execute("SELECT started FROM runs ORDER BY id LIMIT 1").fetchone()
        return None if row is None else parse(row[0])

    def record_run(
        self, started: datetime, finished: datetime, results: tuple[SourceResult, ...]
    ) -> int:
        """The run, and what each source did in it; a source cut short on request is left
        out, so a stop neither resets nor lengthens its failures in a row."""
        results = tuple(r for r in results if not r.stopped)
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (started, finished, ok) VALUES (?, ?, ?)",
                (utc(started), utc(finished), int(all(r.ok for r in results))),
            )
            run_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO source_runs (run_id, source, ok, pages, not_modified, found, new,"
                " updated, duplicates, filtered, duration, error, warnings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        r.name,
                        int(r.ok),
                        r.pages,
                        r.not_modified,
                        r.found,
                        r.new,
                        r.updated,
                        r.duplicates,
                        r.filtered,
                        round(r.duration, 3),
                        r.error,
                        json.dumps(list(r.warnings), ensure_ascii=False),
                    )
                    for r in results
                ],
            )
        return run_id

    def prune_runs(self, before: datetime, *, keep: int = HISTORY, batch: int = PRUNE_BATCH) -> int:
        """Remove the runs that started before ``before`` (what each source did in them
        too), oldest first, at most ``batch``; returns how many. Kept whatever their age:
        the first run (a digest never sent is due counting from it) and the newest
        ``keep``. Runs are recorded one at a time under the run lock, so ids follow start
        times; the removal stops at the first run not older than ``before`` (a clock set
        back), and it reads only the rows it removes and one more."""
        ids = self.db.execute(
            "SELECT (SELECT min(id) FROM runs),"
            " (SELECT id FROM runs ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (max(keep, 1) - 1,),
        ).fetchone()
        first, newest_kept = ids[0], ids[1]
        if first is None or newest_kept is None:
            return 0
        last = None
        count = 0
        for run_id, started in self.db.execute(
            "SELECT id, started FROM runs WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
            (first, newest_kept, batch),
        ):
            if parse(started) >= before:
                break
            last = run_id
            count += 1
        if last is None:
            return 0
        with self.transaction() as db:
            db.execute("DELETE FROM source_runs WHERE run_id > ? AND run_id <= ?", (first, last))
            db.execute("DELETE FROM runs WHERE id > ? AND id <= ?", (first, last))
        return count

    def source_runs(self, run_id: int) -> list[SourceResult]:
        rows = self.db.execute(
            "SELECT * FROM source_runs WHERE run_id = ? ORDER BY source", (run_id,)
        ).fetchall()
        return [
            SourceResult(
                name=r["source"],
                ok=bool(r["ok"]),
                pages=r["pages"],
                not_modified=r["not_modified"],
                found=r["found"],
                new=r["new"],
                updated=r["updated"],
                duplicates=r["duplicates"],
                filtered=r["filtered"],
                duration=r["duration"],
                error=r["error"],
                warnings=tuple(json.loads(r["warnings"])),
            )
            for r in rows
        ]

    def source_history(self, source: str, *, limit: int = HISTORY) -> list[SourceRunSummary]:
        """The source's latest runs, newest first."""
        rows = self.db.execute(
            "SELECT r.started, sr.ok, sr.error FROM source_runs sr JOIN runs r"
            " ON r.id = sr.run_id WHERE sr.source = ? ORDER BY sr.run_id DESC LIMIT ?",
            (source, limit),
        )
        return [SourceRunSummary(parse(r[0]), bool(r[1]), str(r[2])) for r in rows]

    def run_sources(self) -> list[str]:
        """Every source with a run recorded, by name. Each is found by one seek in the
        (source, run_id) index, past the one before (a skip scan), so the cost follows the
        number of sources, not of runs: ``SELECT DISTINCT`` read the whole index, which a
        quiet cycle's health check did on every run."""
        return [
            str(r[0])
            for r in self.db.execute(
                "WITH RECURSIVE s (source) AS (SELECT min(source) FROM source_runs"
                " UNION ALL SELECT (SELECT min(source) FROM source_runs WHERE source > s.source)"
                " FROM s WHERE s.source IS NOT NULL)"
                " SELECT source FROM s WHERE source IS NOT NULL"
            )
        ]

    def alert(self, problem: str) -> AlertState | None:
        """The state of a known problem, or None."""
        row = self.db.execute(
            "SELECT active, last_sent FROM alerts WHERE problem = ?", (problem,)
        ).fetchone()
        if row is None:
            return None
        return AlertState(bool(row[0]), parse(row[1]) if row[1] else None)

    def alert_detail(self, problem: str) -> str:
        row = self.db.execute("SELECT detail FROM alerts WHERE problem = ?", (problem,)).fetchone()
        return "" if row is None else str(row[0])

    def active_alerts(self) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute("SELECT problem FROM alerts WHERE active = 1 ORDER BY problem")
        ]

    def set_alert(self, problem: str, *, active: bool, detail: str, sent: datetime | None) -> None:
        self.db.execute(
            "INSERT INTO alerts (problem, active, last_sent, detail) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (problem) DO UPDATE SET active = excluded.active,"
            " detail = excluded.detail,"
            " last_sent = coalesce(excluded.last_sent, alerts.last_sent)",
            (problem, int(active), utc(sent) if sent else None, detail),
        )

    def last_run_id(self) -> int | None:
        row = self.db.execute("SELECT max(id) FROM runs").fetchone()
        return None if row[0] is None else int(row[0])
