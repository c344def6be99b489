"""Whole-workspace copies between backends: every table's rows, in an order that satisfies the
foreign keys, with their ids, into an empty workspace of the same schema version."""

from __future__ import annotations

from collections.abc import Iterator

from review_app.store.base import Aggregate

# Written by the migrations themselves with values of their own (random keys): a copy replaces
# them with the source's, so the copy blinds and seals exactly as the source does.
SINGLETONS = ("workspace_secrets", "sealed_label_key")
# Bookkeeping of the schema, not workspace content.
SCHEMA_TABLES = ("_migrations",)
CHUNK_ROWS = 2000


class CopyQueries(Aggregate):
    def tables_in_order(self) -> list[str]:
        """Every content table, each after the tables its foreign keys point at."""
        with self._reading() as db:
            references = db.references()
        ordered: list[str] = []
        placed: set[str] = set()
        pending = sorted(t for t in references if t not in SCHEMA_TABLES)
        while pending:
            ready = [t for t in pending if references[t] <= placed | {t}]
            if not ready:  # a cycle of foreign keys: the schema does not have one
                raise RuntimeError(f"no order satisfies the foreign keys of {pending}")
            for table in ready:
                ordered.append(table)
                placed.add(table)
            pending = [t for t in pending if t not in placed]
        return ordered

    def content_rows(self) -> dict[str, int]:
        """Rows of every content table outside the migrations' own singletons."""
        counts = self.store.table_counts()
        return {t: n for t, n in counts.items() if t not in SCHEMA_TABLES and t not in SINGLETONS}

    def read_table(self, table: str) -> Iterator[tuple[list[str], list[tuple]]]:
        """The table's rows in the order of its primary key, a chunk at a time, with the column
        names."""
        with self._reading() as db:
            order = ", ".join(f'"{c}"' for c in db.primary_key(table))
            cursor = db.execute(f'SELECT * FROM "{table}" ORDER BY {order}')
            names = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(CHUNK_ROWS):
                yield names, [tuple(r) for r in rows]

    def write_rows(self, table: str, names: list[str], rows: list[tuple]) -> None:
        """Append rows as they are, ids included (inside the caller's transaction)."""
        columns = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" * len(names))
        self.db.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', rows)

    def clear_singleton(self, table: str) -> None:
        if table not in SINGLETONS:
            raise ValueError(f"{table} is not one of the migrations' singletons")
        self.db.execute(f'DELETE FROM "{table}"')

    def continue_numbering(self, table: str) -> None:
        self.db.continue_numbering(table)
