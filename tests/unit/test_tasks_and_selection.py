import pytest

from elad.errors import DataError
from elad.selection import STRATEGIES, RoundView, Scored, select_top
from elad.tasks import TASKS, Example


def test_esnli_loads_rows_in_order_with_row_ids(esnli_dir):
    task = TASKS.create("esnli", path=esnli_dir)
    pool = task.load("valid")
    assert [e.id for e in pool[:3]] == ["valid-0", "valid-1", "valid-2"]
    assert pool[1].answer == "neutral" and pool[1].question.startswith("Premise: A person number 1")
    assert task.is_correct(task.parse_answer("So the answer is neutral."), pool[1].answer)


def test_bad_row_names_file_line_and_field(esnli_dir):
    path = esnli_dir / "esnli_test.json"
    path.write_text(path.read_text() + '{"premise": "p", "hypothesis": "h", "label": 7}\n')
    with pytest.raises(DataError) as error:
        TASKS.create("esnli", path=esnli_dir).load("test")
    assert "esnli_test.json" in str(error.value) and "line 7" in str(error.value) and "label" in str(error.value)


def test_select_top_is_seeded_and_ranks_by_score():
    scores = {f"q{i}": Scored(1.0 if i in (3, 5) else 0.0) for i in range(20)}
    first = select_top(scores, 20, seed=1)
    assert {i for i, _ in first[:2]} == {"q3", "q5"}
    assert first == select_top(dict(reversed(list(scores.items()))), 20, seed=1)  # input order is irrelevant
    assert [i for i, _ in first] != [i for i, _ in select_top(scores, 20, seed=2)]


def test_random_strategy_differs_by_seed_and_covers_every_candidate():
    candidates = [Example(f"q{i}", "q", "neutral") for i in range(30)]
    strategy = STRATEGIES.create("random")
    a = strategy.score(RoundView(1, candidates, seed=0))
    b = strategy.score(RoundView(1, candidates, seed=1))
    assert set(a) == {e.id for e in candidates}
    assert [i for i, _ in select_top(a, 5, 0)][:5] != [i for i, _ in select_top(b, 5, 0)][:5]
