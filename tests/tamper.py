"""What someone holding the workspace (the SQLite file, or a login to the PostgreSQL database)
can do behind the app's back: a second connection of their own, on either backend."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from review_app.store.connection import Database, connect

_DROP_TRIGGER = re.compile(r"DROP TRIGGER (\w+?)_append_only_(update|delete)\s*$", re.I)


class Raw:
    """A connection outside the app: every statement commits at once (no transaction)."""

    def __init__(self, db: Database):
        self.db = db

    def execute(self, sql: str, params=()):
        drop = _DROP_TRIGGER.match(sql.strip())
        if drop and self.db.dialect == "postgresql":  # PostgreSQL names a trigger's table
            sql = f"DROP TRIGGER {drop.group(1)}_append_only_{drop.group(2)} ON {drop.group(1)}"
        return self.db.execute(sql, params)


@contextmanager
def raw(store) -> Iterator[Raw]:
    """A second connection to the workspace, as someone holding the file would have."""
    db = connect(str(store.path))
    try:
        yield Raw(db)
    finally:
        db.close()
