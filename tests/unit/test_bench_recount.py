"""bench/recount_costs.py: cache hits a run never paid for are charged, its own earlier purchases stay free."""

from types import SimpleNamespace

import pytest

from elad.store import RunStore
from tests.conftest import load_bench
from tests.unit.test_report_compare import make_run


def _call(store, round_, example_id, text, hit, prompt=100, completion=20, dollars=0.0):
    response = SimpleNamespace(backend="replay", model="palm", completions=[SimpleNamespace(text=text)],
                               prompt_tokens=prompt, completion_tokens=completion, cache_hit=hit)
    store.add_teacher_call(round_, example_id, "cot", response, [{"role": "user", "content": example_id}], dollars)


def test_a_hit_on_another_runs_purchase_is_charged_and_a_hit_on_its_own_is_not(tmp_path):
    bench = load_bench("recount_costs")
    run_dir = make_run(tmp_path, "random", "cot", 0, [0.3, 0.4, 0.5], [0, 0, 0])
    store = RunStore(run_dir / "run.db")
    _call(store, 1, "p-0", "A", hit=False)  # bought in round 1
    _call(store, 2, "p-0", "A", hit=True)  # asked again after a resume: its own purchase, free
    _call(store, 2, "p-2", "B", hit=True, prompt=50, completion=10)  # a reply another run bought: charged
    _call(store, 2, "p-3", "C", hit=True, prompt=7, completion=3)  # another thread's reply, booked first:
    _call(store, 2, "p-3", "C", hit=False, prompt=7, completion=3)  # paid once, by this run
    store.close()
    assert bench.recount(run_dir) == (1, 0, 190)
    store = RunStore(run_dir / "run.db")
    teacher = {(m["round"], m["name"]): m["value"] for m in store.metrics() if m["split"] == "teacher"}
    store.close()
    assert teacher[(1, "teacher_tokens")] == 120 and teacher[(2, "teacher_tokens")] == 190
    assert teacher[(1, "teacher_calls")] == 1 and teacher[(2, "teacher_calls")] == 3
    assert bench.recount(run_dir) == (1, 190, 190)  # again: nothing changes


def test_a_foreign_hit_is_charged_at_the_runs_teacher_prices(tmp_path):
    bench = load_bench("recount_costs")
    run_dir = make_run(tmp_path, "random", "cot", 0, [0.3, 0.4], [0, 0])
    config = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(config.replace("price_prompt: 0.0", "price_prompt: 2.0")
                                         .replace("price_completion: 0.0", "price_completion: 10.0"))
    store = RunStore(run_dir / "run.db")
    _call(store, 1, "p-0", "A", hit=False, dollars=0.5)  # a paid call keeps what the ledger charged
    _call(store, 1, "p-1", "B", hit=True, prompt=1_000_000, completion=100_000)
    store.close()
    bench.recount(run_dir)
    store = RunStore(run_dir / "run.db")
    dollars = next(m["value"] for m in store.metrics() if m["split"] == "teacher" and m["name"] == "teacher_dollars"
                   and m["round"] == 1)
    store.close()
    assert dollars == pytest.approx(0.5 + 2.0 + 1.0)
