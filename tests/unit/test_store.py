import sqlite3

import pytest

from elad.annotation import Annotation
from elad.store import RunStore
from elad.tasks import Example
from elad.teachers.base import Completion, Response


def _response(prompt=10, completion=5, cache_hit=False):
    return Response([Completion("text", prompt, completion)], backend="replay", model="m", cache_hit=cache_hit)


def test_teacher_totals_per_round_and_cache_hits_are_free(tmp_path):
    store = RunStore(tmp_path / "run.db")
    messages = ({"role": "user", "content": "q"},)
    store.add_teacher_call(1, "a", "cot", _response(10, 5), messages, 0.5)
    store.add_teacher_call(2, "b", "cot", _response(20, 7), messages, 1.0)
    store.add_teacher_call(2, "b", "cot", _response(20, 7, cache_hit=True), messages, 0.0)
    first = store.teacher_totals(up_to_round=1)
    assert (first.calls, first.prompt_tokens, first.completion_tokens, first.dollars) == (1, 10, 5, 0.5)
    total = store.teacher_totals()
    assert (total.calls, total.prompt_tokens, total.completion_tokens, total.dollars) == (2, 30, 12, 1.5)


def test_selection_annotations_and_handled_survive_reopening(tmp_path):
    store = RunStore(tmp_path / "run.db")
    store.add_examples("pool", "valid", [Example("a", "q", "neutral"), Example("b", "q2", "entailment")])
    store.add_selection(1, "random", [("b", 0.9, {"x": 1}), ("a", 0.1, {})], chosen={"b"})
    store.add_annotation(1, "b", Annotation("cot", "because", "entailment", "because\nSo the answer is entailment.", "raw"))
    store.add_rejected(1, "a", "no answer", "raw")
    store.close()

    reopened = RunStore(tmp_path / "run.db")
    assert reopened.example_ids("pool") == ["a", "b"]
    assert reopened.chosen(1) == ["b"]
    assert reopened.ever_chosen() == {"b"}
    assert reopened.handled() == {"a", "b"}
    [annotation] = reopened.annotations(up_to_round=1)
    assert annotation["answer"] == "entailment" and annotation["round"] == 1
    assert reopened.annotations(up_to_round=0) == []


def test_failed_transaction_leaves_nothing_behind(tmp_path):
    store = RunStore(tmp_path / "run.db")
    with pytest.raises(RuntimeError):
        with store.transaction() as db:
            db.execute("INSERT INTO metrics VALUES (1, 'test', 'accuracy', 0.5)")
            raise RuntimeError("crash mid-write")
    assert store.metrics() == []


def test_rounds_state_and_stop_reason(tmp_path):
    store = RunStore(tmp_path / "run.db")
    store.start_round(1)
    assert not store.round_done(1)
    store.finish_round(1, "the teacher budget is spent")
    assert store.round_done(1) and store.stop_reason(1) == "the teacher budget is spent"
    store.set_metrics(1, "test", {"accuracy": 0.25})
    store.set_metrics(1, "test", {"accuracy": 0.5})  # a rerun replaces, never duplicates
    assert [(m["name"], m["value"]) for m in store.metrics()] == [("accuracy", 0.5)]


def test_database_is_plain_sqlite(tmp_path):
    RunStore(tmp_path / "run.db").set_meta("name", "demo")
    with sqlite3.connect(tmp_path / "run.db") as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'name'").fetchone() == ("demo",)


def test_forced_answers_join_their_explanations(tmp_path):
    store = RunStore(tmp_path / "run.db")
    store.add_explanations(1, "pool", [("a", 0, "greedy text", ["s"], "x", 1), ("a", 1, "sample", [], None, 0)])
    assert "forced" not in store.explanations_by_id(1, "pool")["a"][0]
    store.add_forced_answers(1, "pool", [("a", 1, None, {"": 1.0})])
    store.add_forced_answers(1, "pool", [("a", 0, "y", {"y": 0.75, "x": 0.25})])
    greedy, sample = store.explanations_by_id(1, "pool")["a"]
    assert (greedy["answer"], greedy["forced"], greedy["forced_distribution"]) == ("x", "y", {"y": 0.75, "x": 0.25})
    assert sample["forced"] is None and "forced" in sample
    rows = store.item_explanations(1, "a")
    assert [(r["forced"], r["has_forced"]) for r in rows] == [("y", 1), (None, 1)]
    assert store.forced_answers(2, "pool") == {}


def test_a_store_written_by_a_newer_elad_is_refused_by_name(tmp_path):
    from elad.errors import EladError

    RunStore(tmp_path / "run.db").close()
    db = sqlite3.connect(tmp_path / "run.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    for readonly in (True, False):
        with pytest.raises(EladError, match=r"run.db: written by a newer elad \(run store version 99"):
            RunStore(tmp_path / "run.db", readonly=readonly)
