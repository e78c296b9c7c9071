"""Databases as an older iomfeed left them, for the tests of a schema step."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from iomfeed.store import MIGRATIONS
from iomfeed.store.schema import statements


def step_of(marker: str) -> int:
    """The index in MIGRATIONS of the step whose text holds ``marker`` (such as its
    ``-- issue 10 (languages)`` comment): tests never count steps themselves."""
    return next(n for n, script in enumerate(MIGRATIONS) if marker in script)


def database_before(path: Path, marker: str, *, foreign_keys: bool = False) -> sqlite3.Connection:
    """A database at the schema just before the step holding ``marker``, in autocommit
    mode (``foreign_keys`` on or off for what the test then writes into it)."""
    db = sqlite3.connect(str(path), isolation_level=None)
    if foreign_keys:
        db.execute("PRAGMA foreign_keys = ON")
    for version, script in enumerate(MIGRATIONS[: step_of(marker)], start=1):
        for statement in statements(script):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {version}")
    return db
