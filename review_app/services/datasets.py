"""`export dataset`: a study's outputs, votes, verdicts and preference pairs as one folder that a
training pipeline reads directly, as Parquet files (pandas, pyarrow, polars) or as a Hugging Face
`DatasetDict` saved to disk (`datasets.load_from_disk`), written with pyarrow alone.

Votes, verdicts and preferences are outcomes: the export is refused until the study's
thresholds are locked (`export pairs` gives the outputs before). The folder is written beside
its target and renamed into place, so a failed export leaves nothing half-written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from review_app.errors import InputError, OutcomesHidden
from review_app.services import data
from review_app.services.context import StudyContext

__all__ = ["DATASET_FORMATS", "DATASET_SPLITS", "DatasetExport", "export_dataset"]

DATASET_FORMATS = ("parquet", "hf")

_TEXT = pa.string()
# Each split's columns and types, so a split with no rows still has its columns.
DATASET_SPLITS: dict[str, pa.Schema] = {
    "outputs": pa.schema(
        [
            ("item_id", _TEXT),
            ("category", _TEXT),
            ("prompt", _TEXT),
            ("reference", _TEXT),
            ("system", _TEXT),
            ("output", _TEXT),
            ("length", pa.int64()),
        ]
    ),
    "votes": pa.schema([(c, _TEXT) for c in data.EXPORT_COLUMNS["votes"]]),
    "verdicts": pa.schema([(c, _TEXT) for c in data.EXPORT_COLUMNS["verdicts"]]),
    # TRL's DPO columns first, then where each pair came from and how sure the humans were.
    "preferences": pa.schema(
        [
            ("prompt", _TEXT),
            ("chosen", _TEXT),
            ("rejected", _TEXT),
            ("item_id", _TEXT),
            ("category", _TEXT),
            ("chosen_system", _TEXT),
            ("rejected_system", _TEXT),
            ("n_votes", pa.int64()),
            ("n_chosen", pa.int64()),
            ("agreement", pa.float64()),
        ]
    ),
}


@dataclass(frozen=True)
class DatasetExport:
    """What one `export_dataset` wrote: the folder, its format and the rows of each split."""

    study: str
    fmt: str
    folder: Path
    rows: dict[str, int]

    def line(self) -> str:
        counts = ", ".join(f"{n} {split}" for split, n in self.rows.items())
        return f"wrote study {self.study} as {self.fmt} to {self.folder}: {counts}"


def export_dataset(ctx: StudyContext, fmt: str, out: str | Path) -> DatasetExport:
    """Write the study's dataset to the folder `out` (new, or empty) in `fmt` ("parquet": one
    `<split>.parquet` file per split; "hf": a `DatasetDict` folder). Preferences come from the
    human majority: a comparison whose majority is a tie, both bad or split evenly gives none.
    OutcomesHidden before the lock; InputError naming `--format` or `--out` for bad arguments."""
    if fmt not in DATASET_FORMATS:
        raise InputError(
            f"--format {fmt}: export dataset writes {' or '.join(DATASET_FORMATS)} "
            "(csv and jsonl are for the other exports)"
        )
    target = _checked_folder(out)
    try:
        ctx.lock.require_visible()
    except OutcomesHidden as exc:
        raise OutcomesHidden(f"{exc}; `export pairs` gives the outputs without outcomes") from exc
    tables = _tables(ctx)
    try:
        # Written beside the target, so the rename into place cannot cross file systems.
        partial = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        )
    except OSError as exc:
        raise _cannot_write(out, exc) from exc
    try:
        if fmt == "parquet":
            for split, table in tables.items():
                pq.write_table(table, partial / f"{split}.parquet")
        else:
            _write_dataset_dict(tables, partial)
        # An empty folder is replaced in one rename; a new one is created by it.
        os.replace(partial, target)
    except OSError as exc:
        raise _cannot_write(out, exc) from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return DatasetExport(ctx.name, fmt, target, {s: t.num_rows for s, t in tables.items()})


def _cannot_write(out: str | Path, exc: OSError) -> InputError:
    return InputError(f"--out {out}: cannot write it ({exc.strerror or exc})")


def _checked_folder(out: str | Path) -> Path:
    """`out` as an absolute path, when it is a new path or an empty folder whose parent exists."""
    if not str(out).strip():
        raise InputError("--out: name the folder to write the dataset to")
    target = Path(out).expanduser().absolute()
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise InputError(f"--out {out} exists and is not a folder; name a new or empty folder")
    if target.is_dir() and any(target.iterdir()):
        raise InputError(f"--out {out} is not empty; name a new or empty folder")
    if not target.parent.is_dir():
        raise InputError(f"--out {out}: its parent folder {target.parent} does not exist")
    return target


def _tables(ctx: StudyContext) -> dict[str, pa.Table]:
    store, study = ctx.store, ctx.name
    outputs = store.catalog.study_outputs(ctx.id).rename(
        columns={"item_key": "item_id", "text": "output"}
    )
    votes = pd.DataFrame(list(data.export_rows(store, "votes", study)))
    verdicts = pd.DataFrame(list(data.export_rows(store, "verdicts", study)))
    preferences = pd.DataFrame(
        list(data.export_rows(store, "preferences", study, settings=ctx.settings))
    )
    frames = {
        "outputs": outputs,
        "votes": votes,
        "verdicts": verdicts,
        "preferences": _with_agreement(preferences, votes, outputs),
    }
    return {split: _table(frames[split], schema) for split, schema in DATASET_SPLITS.items()}


def _with_agreement(
    preferences: pd.DataFrame, votes: pd.DataFrame, outputs: pd.DataFrame
) -> pd.DataFrame:
    """The preference pairs with their item's category, the votes for the chosen output and
    the share of the comparison's votes they are."""
    if preferences.empty:
        return preferences
    category = outputs.drop_duplicates("item_id").set_index("item_id")["category"]
    out = preferences.assign(category=preferences["item_id"].map(category))
    # A vote's pair is (item, system_a, system_b); the chosen system appears in one comparison
    # per other system, so its votes are counted against the rejected one.
    pair_votes = votes.assign(
        pair=[frozenset(p) for p in zip(votes["system_a"], votes["system_b"], strict=True)]
    )
    counts = pair_votes.groupby(["item_id", "pair", "winner"]).size()
    out["n_chosen"] = [
        int(counts.get((item, frozenset((won, lost)), won), 0))
        for item, won, lost in zip(
            out["item_id"], out["chosen_system"], out["rejected_system"], strict=True
        )
    ]
    out["agreement"] = out["n_chosen"] / out["n_votes"].where(out["n_votes"] > 0)
    return out


def _table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """`frame` as a table of `schema` (its columns in that order; none when it is empty)."""
    if frame.empty:
        return schema.empty_table()
    columns = {}
    for field in schema:
        values = frame[field.name].astype(object).where(frame[field.name].notna(), None)
        columns[field.name] = pa.array(values.tolist(), type=field.type)
    return pa.table(columns, schema=schema)


def _write_dataset_dict(tables: dict[str, pa.Table], folder: Path) -> None:
    """The folder `datasets.DatasetDict.save_to_disk` writes: `dataset_dict.json` naming the
    splits, and per split one Arrow stream file with its `dataset_info.json` (the features)
    and `state.json` (the file list and a fingerprint of the content)."""
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(tables)}))
    for split, table in tables.items():
        split_folder = folder / split
        split_folder.mkdir()
        arrow_file = "data-00000-of-00001.arrow"
        with pa.OSFile(str(split_folder / arrow_file), "wb") as sink:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        features = {
            f.name: {"dtype": _FEATURE_TYPES[f.type], "_type": "Value"} for f in table.schema
        }
        info = {
            "citation": "",
            "description": "",
            "features": features,
            "homepage": "",
            "license": "",
        }
        (split_folder / "dataset_info.json").write_text(json.dumps(info, indent=2))
        fingerprint = hashlib.sha256(
            (split_folder / arrow_file).read_bytes() + json.dumps(features).encode()
        ).hexdigest()[:16]
        state = {
            "_data_files": [{"filename": arrow_file}],
            "_fingerprint": fingerprint,
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": split,
        }
        (split_folder / "state.json").write_text(json.dumps(state, indent=2))


# The `datasets` Value dtype of each Arrow type a split uses.
_FEATURE_TYPES = {pa.string(): "string", pa.int64(): "int64", pa.float64(): "float64"}
