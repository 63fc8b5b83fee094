"""The oracle ceiling (reads gold) and the AUROC of selection scores against the student's errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elad.selection import STRATEGIES, RoundView, Scored, select_top
from elad.selection.errors_auroc import auroc, error_aurocs, student_wrong
from elad.tasks import Example


def _view(items: dict[str, tuple[dict, str]]) -> RoundView:
    """Items id -> (final answer distribution, gold); the greedy explanation answers the distribution's top."""
    return RoundView(
        round=1, seed=0, candidates=[Example(i, f"q {i}", gold) for i, (_, gold) in items.items()],
        explanations={i: [{"text": "t", "steps": [], "answer": max(d, key=d.get)}] for i, (d, _) in items.items()},
        answer_scores={i: [d] for i, (d, _) in items.items()},
        is_correct=lambda predicted, gold: predicted == gold,
    )


def test_the_oracle_takes_confident_errors_first_then_unsure_right_answers():
    view = _view({
        "right-sure": ({"A": 0.9, "B": 0.1}, "A"),
        "wrong-unsure": ({"A": 0.4, "B": 0.6}, "A"),
        "right-unsure": ({"A": 0.55, "B": 0.45}, "A"),
        "wrong-sure": ({"A": 0.05, "B": 0.95}, "A"),
    })
    scored = STRATEGIES.create("oracle").score(view)
    order = [i for i, _ in select_top(scored, 4, 0)]
    assert order == ["wrong-sure", "wrong-unsure", "right-unsure", "right-sure"]
    assert scored["wrong-sure"].parts == {"wrong": 1, "p_answer": 0.95, "answer": "B"}


def test_auroc_of_known_rankings():
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5  # ties count half
    assert auroc([0.3, 0.6, 0.5, 0.7], [True, True, False, False]) == 0.25
    assert auroc([0.1, 0.2], [True, True]) is None  # one class only: undefined


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=30))
def test_auroc_is_the_share_of_correctly_ordered_pairs(pairs):
    scores, labels = [s for s, _ in pairs], [y for _, y in pairs]
    pos = [s for s, y in pairs if y]
    neg = [s for s, y in pairs if not y]
    value = auroc(scores, labels)
    if not pos or not neg:
        assert value is None
        return
    expected = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert value == pytest.approx(expected)


def test_error_aurocs_cover_the_score_and_its_numeric_parts_on_items_with_gold():
    view = _view({"a": ({"A": 0.2, "B": 0.8}, "A"), "b": ({"A": 0.9, "B": 0.1}, "A"),
                  "c": ({"A": 0.3, "B": 0.7}, "B"), "d": ({"A": 0.6, "B": 0.4}, "")})  # d: no gold
    wrong = student_wrong(view, view.is_correct)
    assert wrong == {"a": True, "b": False, "c": False}
    scored = {"a": Scored(0.9, {"intra": 0.1, "label": "x"}), "b": Scored(0.2, {"intra": 0.5, "label": "y"}),
              "c": Scored(0.4, {"intra": 0.9, "label": "z"}), "d": Scored(1.0, {"intra": 0.0})}
    found = error_aurocs(scored, wrong)
    assert found == {"errors_known": 3.0, "errors_wrong": 1.0, "auroc_score": 1.0, "auroc_intra": 0.0}


def test_only_the_oracle_and_its_variants_read_gold():
    from elad.selection import reads_gold

    assert reads_gold("oracle") and reads_gold("oracle+softrank")
    assert not any(reads_gold(name) for name in ("random", "egss", "egss+softrank", "no_such_strategy"))


def test_the_oracle_buys_items_without_gold_last():
    view = _view({
        "right-sure": ({"A": 0.9, "B": 0.1}, "A"),
        "no-gold": ({"A": 0.01, "B": 0.99}, ""),  # confidently B: without gold that is no error
        "wrong-sure": ({"A": 0.05, "B": 0.95}, "A"),
    })
    scored = STRATEGIES.create("oracle").score(view)
    assert [i for i, _ in select_top(scored, 3, 0)] == ["wrong-sure", "right-sure", "no-gold"]
    assert scored["no-gold"].parts["wrong"] is None and scored["no-gold"].score == -1.0


def test_the_oracle_names_an_item_without_answer_scores():
    from elad.errors import EladError

    view = _view({"a": ({"A": 0.9, "B": 0.1}, "A")})
    view.answer_scores.clear()
    with pytest.raises(EladError, match="no answer scores for item 'a'"):
        STRATEGIES.create("oracle").score(view)
