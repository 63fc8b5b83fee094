"""bench/training_noise.py trains on what the loop trained on: the annotations in pool order."""

from elad.store import RunStore
from elad.tasks import Example
from tests.conftest import load_bench
from tests.unit.test_report_compare import make_run


class _Task:
    def prompt(self, example):
        return f"Q: {example.question}"


def test_the_records_follow_the_pool_and_leave_out_what_was_not_annotated():
    bench = load_bench("training_noise")
    pool = [Example(f"p-{i}", f"question {i}", "1") for i in range(4)]
    # annotated in another order than the pool's (the order the teacher's replies came back), p-1 never
    annotations = [{"example_id": eid, "target": f"t{eid}", "rationale": f"r{eid}", "answer": "1"}
                   for eid in ("p-3", "p-0", "p-2")]
    records = bench.training_records(_Task(), pool, annotations)
    assert [r.prompt for r in records] == ["Q: question 0", "Q: question 2", "Q: question 3"]
    assert [r.target for r in records] == ["tp-0", "tp-2", "tp-3"]


def test_the_stored_accuracy_is_the_rounds_test_accuracy(tmp_path):
    bench = load_bench("training_noise")
    run_dir = make_run(tmp_path, "random", "cot", 0, [0.3, 0.45, 0.5], [0, 10, 20])
    store = RunStore(run_dir / "run.db", readonly=True)
    assert bench.stored_accuracy(store, 1) == 0.45
    assert bench.stored_accuracy(store, 7) is None
