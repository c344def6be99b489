"""Eval sets, their items, the systems and the outputs each system gave: the content a study
compares, with the digests imports use to tell new rows from changed ones."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable

import pandas as pd

from review_app.errors import NotFound
from review_app.store.base import Aggregate, now_iso


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def item_fingerprint(prompt: str, reference: str | None, category: str) -> str:
    # repr of the tuple tells every (prompt, reference, category) apart, faster than JSON.
    return text_digest(repr((prompt, reference, category)))


# An output as the final review shows it, and the outputs of one system in one eval set.
_OUTPUT_WITH_TEXTS = "o.id AS output_id, i.item_key, i.category, i.prompt, o.text"
_OUTPUTS_OF_SYSTEM = (
    "FROM outputs o JOIN items i ON i.id = o.item_id WHERE i.eval_set_id = ? AND o.system = ?"
)


class CatalogQueries(Aggregate):
    def eval_set(self, name: str) -> dict | None:
        return self._one("SELECT * FROM eval_sets WHERE name = ?", [name])

    def require_eval_set(self, name: str) -> dict:
        row = self.eval_set(name)
        if row is None:
            known = ", ".join(r["name"] for r in self._rows("SELECT name FROM eval_sets")) or "none"
            raise NotFound(f"no eval set named {name!r} (known: {known})")
        return row

    def ensure_eval_set(self, name: str) -> dict:
        row = self.eval_set(name)
        if row is None:
            self.db.execute(
                "INSERT INTO eval_sets (name, created_at) VALUES (?, ?)", [name, now_iso()]
            )
            row = self.eval_set(name)
        return row

    def eval_sets(self) -> list[dict]:
        return self._rows(
            "SELECT e.*, (SELECT count(*) FROM items i WHERE i.eval_set_id = e.id) AS n_items "
            "FROM eval_sets e ORDER BY e.name"
        )

    def item_index(self, eval_set_id: int) -> dict[str, tuple[int, str]]:
        """item_key -> (item id, fingerprint of prompt/reference/category)."""
        with self._reading() as db:
            cursor = db.execute(
                "SELECT item_key, id, prompt, reference, category FROM items WHERE eval_set_id = ?",
                [eval_set_id],
            )
            return {
                key: (item_id, item_fingerprint(prompt, reference, category))
                for key, item_id, prompt, reference, category in cursor
            }

    def item_ids_by_key(self, eval_set_id: int) -> dict[str, int]:
        return {key: item_id for key, (item_id, _) in self.item_index(eval_set_id).items()}

    def output_index(self, eval_set_id: int) -> dict[tuple[int, str], str]:
        """(item id, system) -> digest of the stored output text."""
        with self._reading() as db:
            cursor = db.execute(
                "SELECT o.item_id, o.system, o.text FROM outputs o JOIN items i ON i.id = o.item_id "
                "WHERE i.eval_set_id = ?",
                [eval_set_id],
            )
            return {(item_id, system): text_digest(text) for item_id, system, text in cursor}

    def insert_items(self, eval_set_id: int, items: list[dict]) -> dict[str, int]:
        """Insert new items; returns item_key -> id."""
        with self._lock:
            self.db.executemany(
                "INSERT INTO items (eval_set_id, item_key, prompt, reference, category, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        eval_set_id,
                        it["item_key"],
                        it["prompt"],
                        it["reference"],
                        it["category"],
                        json.dumps(it["metadata"], ensure_ascii=False),
                    )
                    for it in items
                ],
            )
            return self.item_ids_for_keys(eval_set_id, [it["item_key"] for it in items])

    def item_ids_for_keys(self, eval_set_id: int, keys: Iterable[str]) -> dict[str, int]:
        """item_key -> id for those of `keys` the eval set holds."""
        keys = list(keys)
        ids: dict[str, int] = {}
        with self._reading() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, item_id in db.execute(
                    f"SELECT item_key, id FROM items WHERE eval_set_id = ? AND item_key IN ({marks})",
                    [eval_set_id, *chunk],
                ):
                    ids[key] = item_id
        return ids

    def update_item(self, item_id: int, item: dict) -> None:
        self.db.execute(
            "UPDATE items SET prompt = ?, reference = ?, category = ?, metadata = ? WHERE id = ?",
            [
                item["prompt"],
                item["reference"],
                item["category"],
                json.dumps(item["metadata"], ensure_ascii=False),
                item_id,
            ],
        )

    def ensure_systems(self, names: Iterable[str]) -> None:
        self.db.executemany(
            "INSERT INTO systems (name) VALUES (?) ON CONFLICT DO NOTHING",
            [(n,) for n in set(names)],
        )

    def system_names(self) -> list[str]:
        return [r["name"] for r in self._rows("SELECT name FROM systems ORDER BY name")]

    def upsert_outputs(self, rows: list[tuple[int, str, str]]) -> None:
        """(item id, system, text) rows; an existing (item, system) is overwritten."""
        with self._lock:
            self.db.executemany(
                "INSERT INTO outputs (item_id, system, text) VALUES (?, ?, ?) "
                "ON CONFLICT (item_id, system) DO UPDATE SET text = excluded.text",
                rows,
            )

    def outputs_of_system(self, eval_set_id: int, system: str) -> list[dict]:
        """Every output of `system` in the eval set, by item key, with its item's category and
        prompt and its text."""
        return self._rows(
            f"SELECT {_OUTPUT_WITH_TEXTS} {_OUTPUTS_OF_SYSTEM} ORDER BY i.item_key",
            [eval_set_id, system],
        )

    def output_keys_of_system(self, eval_set_id: int, system: str) -> list[dict]:
        """`outputs_of_system` without texts: output_id and item_key (texts are read for the few
        shown, `outputs_with_texts`)."""
        return self._rows(
            f"SELECT o.id AS output_id, i.item_key {_OUTPUTS_OF_SYSTEM} ORDER BY i.item_key",
            [eval_set_id, system],
        )

    def count_outputs_of_system(self, eval_set_id: int, system: str) -> int:
        return self._one(f"SELECT count(*) AS n {_OUTPUTS_OF_SYSTEM}", [eval_set_id, system])["n"]

    def outputs_with_texts(self, output_ids: Iterable[int]) -> dict[int, dict]:
        """output id -> the row `outputs_of_system` gives, for these outputs."""
        ids = list(output_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._rows(
            f"SELECT {_OUTPUT_WITH_TEXTS} FROM outputs o JOIN items i ON i.id = o.item_id "
            f"WHERE o.id IN ({marks})",
            ids,
        )
        return {row["output_id"]: row for row in rows}

    def items_with_outputs(self, eval_set_id: int, systems: Iterable[str]) -> dict[str, set[int]]:
        """system -> ids of items of the eval set that have an output from it."""
        found: dict[str, set[int]] = {s: set() for s in systems}
        if not found:
            return found
        marks = ",".join("?" * len(found))
        with self._reading() as db:
            for item_id, system in db.execute(
                f"SELECT o.item_id, o.system FROM outputs o JOIN items i ON i.id = o.item_id "
                f"WHERE i.eval_set_id = ? AND o.system IN ({marks})",
                [eval_set_id, *found],
            ):
                found[system].add(item_id)
        return found

    def eval_set_content_hash(self, eval_set_id: int) -> str:
        """Hash of the eval set's items (the held-out questions), in a stable order. Outputs of
        a frozen set cannot change, so the hash with the study's systems pins what was judged."""
        digest = hashlib.sha256()
        with self._reading() as db:
            for row in db.execute(
                "SELECT item_key, prompt, coalesce(reference, ''), category, metadata FROM items "
                "WHERE eval_set_id = ? ORDER BY item_key",
                [eval_set_id],
            ):
                digest.update(json.dumps(row, ensure_ascii=False).encode())
        return digest.hexdigest()

    def outputs_hash(self, eval_set_id: int, systems: Iterable[str]) -> str:
        """Hash of the outputs the named systems gave on the eval set's items, in a stable
        order: with the eval set's hash, what a study over those systems compares."""
        names = sorted(set(systems))
        digest = hashlib.sha256()
        with self._reading() as db:
            for row in db.execute(
                "SELECT i.item_key, o.system, o.text FROM outputs o JOIN items i ON i.id = o.item_id "
                f"WHERE i.eval_set_id = ? AND o.system IN ({','.join('?' * len(names))}) "
                "ORDER BY i.item_key, o.system",
                [eval_set_id, *names],
            ):
                digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def freeze_eval_set(self, eval_set_id: int) -> str:
        content_hash = self.eval_set_content_hash(eval_set_id)
        self.db.execute(
            "UPDATE eval_sets SET content_hash = ?, frozen_at = coalesce(frozen_at, ?) WHERE id = ?",
            [content_hash, now_iso(), eval_set_id],
        )
        return content_hash

    def systems_in_eval_set(self, eval_set_id: int) -> list[str]:
        """The systems with at least one output in the eval set, by name."""
        return [
            r["system"]
            for r in self._rows(
                "SELECT DISTINCT o.system FROM outputs o JOIN items i ON i.id = o.item_id "
                "WHERE i.eval_set_id = ? ORDER BY o.system",
                [eval_set_id],
            )
        ]

    def unfreeze_eval_set(self, eval_set_id: int) -> None:
        """Let the eval set change again (its content hash stays as the record of what it was)."""
        self.db.execute("UPDATE eval_sets SET frozen_at = NULL WHERE id = ?", [eval_set_id])

    def studies_using_eval_set(self, eval_set_id: int) -> list[str]:
        return [
            r["name"]
            for r in self._rows("SELECT name FROM studies WHERE eval_set_id = ?", [eval_set_id])
        ]

    # ---- the items browser and the dataset export ----

    def study_outputs(self, study_id: int) -> pd.DataFrame:
        """Every output of the systems a study compares on its eval set's items, by item key and
        system: item_key, category, prompt, reference, system, text, length."""
        return self._frame(
            "SELECT i.item_key, i.category, i.prompt, i.reference, o.system, o.text, "
            f"length(o.text) AS length {_STUDY_OUTPUTS} WHERE {_OF_STUDY} "
            "ORDER BY i.item_key, o.system",
            [study_id],
        )

    def matching_outputs(
        self,
        study_id: int,
        text: str = "",
        categories: Iterable[str] = (),
        systems: Iterable[str] = (),
        min_length: int | None = None,
        max_length: int | None = None,
    ) -> pd.DataFrame:
        """The outputs of a study (as `study_outputs`) whose prompt or text contains `text`
        (case-insensitive), of the given categories and systems (empty: any), whose length in
        characters lies in [min_length, max_length]: output_id, item_id, item_key, system,
        length, by item key and system. Ids and names only: the texts of one page are read with
        `outputs_by_id`."""
        where, params = [_OF_STUDY], [study_id]
        if text:
            # LIKE with its wildcards escaped, lower() on both sides: case-insensitive everywhere.
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
            where.append(
                "(lower(i.prompt) LIKE lower(?) ESCAPE '\\' "
                "OR lower(o.text) LIKE lower(?) ESCAPE '\\')"
            )
            params += [pattern, pattern]
        for column, values in (("i.category", list(categories)), ("o.system", list(systems))):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params += values
        if min_length is not None:
            where.append("length(o.text) >= ?")
            params.append(min_length)
        if max_length is not None:
            where.append("length(o.text) <= ?")
            params.append(max_length)
        return self._frame(
            "SELECT o.id AS output_id, i.id AS item_id, i.item_key, o.system, "
            f"length(o.text) AS length {_STUDY_OUTPUTS} WHERE {' AND '.join(where)} "
            "ORDER BY i.item_key, o.system",
            params,
        )

    def outputs_by_id(self, output_ids: Iterable[int]) -> pd.DataFrame:
        """The outputs with these ids and their items: output_id, item_key, category, prompt,
        reference, system, text, length; by item key and system."""
        ids = [int(i) for i in output_ids]
        marks = ",".join("?" * len(ids)) or "NULL"
        return self._frame(
            "SELECT o.id AS output_id, i.item_key, i.category, i.prompt, i.reference, o.system, "
            "o.text, length(o.text) AS length FROM outputs o JOIN items i ON i.id = o.item_id "
            f"WHERE o.id IN ({marks}) ORDER BY i.item_key, o.system",
            ids,
        )

    def study_categories(self, study_id: int) -> list[str]:
        """The categories of a study's items, by name."""
        return [
            r["category"]
            for r in self._rows(
                "SELECT DISTINCT i.category FROM studies s JOIN items i "
                "ON i.eval_set_id = s.eval_set_id WHERE s.id = ? ORDER BY i.category",
                [study_id],
            )
        ]

    def longest_output(self, study_id: int) -> int:
        """The length in characters of the study's longest output (0 without outputs)."""
        row = self._one(
            f"SELECT coalesce(max(length(o.text)), 0) AS n {_STUDY_OUTPUTS} WHERE {_OF_STUDY}",
            [study_id],
        )
        return int(row["n"])


# The outputs a study covers: its eval set's items, answered by the systems it compares.
_STUDY_OUTPUTS = "FROM studies s JOIN items i ON i.eval_set_id = s.eval_set_id JOIN outputs o ON o.item_id = i.id"
_OF_STUDY = (
    "s.id = ? AND o.system IN (SELECT system_a FROM study_comparisons WHERE study_id = s.id "
    "UNION SELECT system_b FROM study_comparisons WHERE study_id = s.id)"
)
