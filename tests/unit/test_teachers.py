import json

import pytest

from elad.errors import DataError, EladError
from elad.teachers import Budget, BudgetExhausted, Ledger, Price, Request
from elad.teachers.replay import ReplayTeacher, cut_run_on, load_dsbs_rationales

SHARED = __import__("tests.conftest", fromlist=["SHARED_DATA"]).SHARED_DATA


def _teacher(records):
    return ReplayTeacher(records, "palm", count_tokens=lambda text: len(text.split()))


def _request(example_id, max_tokens=10):
    return Request(messages=({"role": "user", "content": "one two three"},), max_tokens=max_tokens, example_id=example_id)


def test_ledger_counts_replayed_usage_like_a_live_call():
    calls = []
    ledger = Ledger(Budget(), Price(prompt=1e6, completion=2e6), count_tokens=lambda t: len(t.split()),
                    on_call=lambda req, resp, dollars: calls.append(dollars))
    ledger.call(_teacher({"a": "four words of text"}), _request("a"))
    assert (ledger.spent.calls, ledger.spent.prompt_tokens, ledger.spent.completion_tokens) == (1, 3, 4)
    assert ledger.spent.dollars == pytest.approx(3 * 1 + 4 * 2)
    assert calls == [pytest.approx(11)]


def test_ledger_refuses_a_call_whose_worst_case_passes_the_budget():
    ledger = Ledger(Budget(tokens=20), count_tokens=lambda t: len(t.split()))
    teacher = _teacher({"a": "x", "b": "y"})
    ledger.call(teacher, _request("a", max_tokens=10))  # worst case 3 + 10 = 13 <= 20; spends 3 + 1
    with pytest.raises(BudgetExhausted):
        ledger.call(teacher, _request("b", max_tokens=14))  # 4 spent + 17 worst case > 20
    assert ledger.spent.calls == 1


def test_call_budget():
    ledger = Ledger(Budget(calls=1))
    teacher = _teacher({"a": "x", "b": "y"})
    ledger.call(teacher, _request("a"))
    with pytest.raises(BudgetExhausted):
        ledger.call(teacher, _request("b"))


def test_replay_without_a_record_is_an_error():
    with pytest.raises(EladError, match="no record"):
        _teacher({}).complete(_request("missing"))


def test_cut_run_on_stops_at_the_invented_exemplar():
    text = "A dog is an animal. So the answer is entailment.\n\nPremise: made up\nHypothesis: more"
    assert cut_run_on(text, "Premise:") == "A dog is an animal. So the answer is entailment."


def test_dsbs_rationales_are_keyed_by_row_across_files(tmp_path):
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "valid_CoT_0.json").write_text(json.dumps(["r0"] * 5500))
    (tmp_path / "llm" / "valid_CoT_1.json").write_text(json.dumps(["r5500 Premise: x"]))
    records = load_dsbs_rationales(tmp_path, "esnli", "valid")
    assert len(records) == 5501 and records["valid-5500"] == "r5500"


def test_bad_rationale_file_names_the_file(tmp_path):
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "valid_CoT_0.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match="valid_CoT_0.json"):
        load_dsbs_rationales(tmp_path, "esnli", "valid")


@pytest.mark.skipif(not (SHARED / "dsbs-rationales" / "esnli").exists(), reason="shared data not present")
def test_packaged_sample_is_aligned_with_the_full_release():
    """The shipped sample holds the first rows of the release: rows and recorded rationales agree."""
    from elad.tasks.esnli import EsnliTask

    full_root = SHARED / "dsbs-rationales" / "esnli"
    sample, full = EsnliTask(), EsnliTask(full_root)
    sample_pool, full_pool = sample.load("valid"), full.load("valid")
    assert sample_pool == full_pool[: len(sample_pool)]
    sample_records = load_dsbs_rationales(sample.root, "esnli", "valid")
    full_records = load_dsbs_rationales(full_root, "esnli", "valid")
    for example in sample_pool[:200]:
        assert sample_records[example.id] == full_records[example.id]
    # Alignment: PaLM's recorded answer agrees with the gold label far above chance (1/3).
    parsed = [sample.parse_answer(sample_records[e.id]) == e.answer for e in sample_pool[:300]]
    assert sum(parsed) / len(parsed) > 0.7
