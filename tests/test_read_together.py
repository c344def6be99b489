"""Reads run together (`Store.read_together`): a study's frames read beside each other give the
frames read one after the other, a transaction's own changes stay visible, and a failing read
fails the whole call."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from review_app.store import now_iso
from review_app.store.base import READERS

pytestmark = pytest.mark.both_backends


def _study_id(store) -> int:
    return store.studies.require_study("demo")["id"]


def test_the_study_frames_read_together_equal_the_frames_read_in_turn(demo_store):
    study_id = _study_id(demo_store)
    pairs, votes, verdicts = demo_store.frames.study_frames(study_id)
    pd.testing.assert_frame_equal(pairs, demo_store.frames.pairs_frame(study_id, texts=False))
    pd.testing.assert_frame_equal(votes, demo_store.frames.votes_frame(study_id, texts=False))
    pd.testing.assert_frame_equal(verdicts, demo_store.frames.verdicts_frame(study_id, texts=False))
    assert len(pairs) and len(votes) and len(verdicts)
    with_texts = demo_store.frames.study_frames(study_id, texts=True)
    pd.testing.assert_frame_equal(with_texts[0], demo_store.frames.pairs_frame(study_id))


def test_the_later_reads_run_in_one_second_thread_beside_the_first(demo_store):
    assert READERS >= 2
    threads = []

    def read(k: int):
        threads.append(threading.get_ident())
        return demo_store.studies.require_study("demo")["name"], k

    results = demo_store.read_together(*(lambda k=k: read(k) for k in range(4)))
    assert results == [("demo", k) for k in range(4)]
    here = threading.get_ident()
    assert threads.count(here) == 1
    assert len(set(threads)) == 2


def test_inside_a_transaction_the_reads_see_its_changes(demo_store):
    study_id = _study_id(demo_store)
    before = demo_store.frames.study_frames(study_id)[2]
    pair = int(demo_store.frames.pairs_frame(study_id, texts=False).pair_id[0])

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        with demo_store.transaction():
            run_id = demo_store.judging.ensure_imported_run(study_id, "added-judge/v1")
            row = demo_store.frames.pairs_frame(study_id, texts=False).iloc[0]
            demo_store.judging.insert_verdicts(
                [
                    {
                        "run_id": run_id,
                        "pair_id": pair,
                        "first_system": row.system_x,
                        "winner": row.system_x,
                        "explanation": "",
                        "cost": 0.0,
                        "latency_ms": 1.0,
                        "created_at": now_iso(),
                    }
                ]
            )
            inside = demo_store.frames.study_frames(study_id)[2]
            assert len(inside) == len(before) + 1
            assert run_id in set(inside.run_id)
            raise Undo
    after = demo_store.frames.study_frames(study_id)[2]
    pd.testing.assert_frame_equal(after, before)


def test_a_failing_read_fails_the_call_after_every_read_has_finished(demo_store):
    finished = []

    def slow_ok():
        finished.append("first")
        return 1

    def fails():
        raise ValueError("broken read")

    def last():
        finished.append("last")
        return 3

    with pytest.raises(ValueError, match="broken read"):
        demo_store.read_together(slow_ok, fails, last)
    # The executor is left only once every submitted read ran: nothing outlives the call.
    assert finished == ["first", "last"]
