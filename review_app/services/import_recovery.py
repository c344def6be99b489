"""Imports whose process died: telling them from running ones, and dealing with them at the next
import or server start (`recover_imports`). Apart from `data`, which finishes or discards them:
`data` brings in SciPy, the gate and the report (half a second of CPU), and a server start
almost always finds nothing to recover, so `data` is imported only when there is something."""

from __future__ import annotations

import os
import socket
import time

from review_app.store import Store

__all__ = ["ABANDONED_AFTER_S", "HOST", "abandoned", "recover_imports"]

# An import whose process has not been heard of for this long is taken over (its process
# writes a heartbeat with every batch, a few times a second).
ABANDONED_AFTER_S = 300
HOST = socket.gethostname()


def recover_imports(store: Store) -> list[str]:
    """Deal with imports whose process died: finish those that were committed (every row had
    been checked), discard those that were not. Returns one line for each."""
    lines = []
    for job in store.imports.import_jobs():
        if not abandoned(job):
            continue
        with store.transaction():
            taken = store.imports.take_over_import_job(job, os.getpid(), HOST)
        if not taken:  # another process got there first
            continue
        from review_app.services import data  # only now: see the module's docstring

        lines.append(data.finish_abandoned(store, job))
    store.imports.delete_orphaned_staging_files()
    return lines


def abandoned(job: dict) -> bool:
    """Whether the process importing `job` is gone (or silent for too long)."""
    if time.time() - job["heartbeat_at"] > ABANDONED_AFTER_S:
        return True
    if job["host"] != HOST:
        return False
    try:
        os.kill(job["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
