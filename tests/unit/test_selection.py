"""Selection: the measures on constructed distributions, the baselines, EGSS, diversity, determinism."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elad.config import SelectionConfig
from elad.errors import EladError
from elad.selection import STRATEGIES, RoundView, Scored, create_strategy, diverse_top, measures, select_top
from elad.tasks import Example

ALL = ("random", "entropy", "least_confidence", "margin", "disagreement", "egss", "egss_intra", "egss_inter",
       "egss_answer", "oracle")


def item(steps: list[dict[str, float]], greedy: str, samples: list[str | None]) -> dict:
    """One pool item: its prefix distributions, greedy answer and sampled answers."""
    return {"scores": steps, "greedy": greedy, "samples": samples}


def view_of(items: dict[str, dict], seed: int = 0) -> RoundView:
    explanations = {
        i: [{"text": "t", "steps": ["s"] * (len(d["scores"]) - 1), "answer": d["greedy"]}]
        + [{"text": "t", "steps": ["s"], "answer": a} for a in d["samples"]]
        for i, d in items.items()
    }
    return RoundView(
        round=1, candidates=[Example(i, f"question {i}", "A") for i in items], seed=seed,
        explanations=explanations, answer_scores={i: d["scores"] for i, d in items.items()},
        is_correct=lambda predicted, gold: predicted == gold,
    )


def ranking(name: str, view: RoundView, **kwargs) -> list[str]:
    return [i for i, _ in select_top(STRATEGIES.create(name, **kwargs).score(view), len(view.candidates), view.seed)]


# --- measures on distributions with known values ------------------------------------------------

def test_entropy_least_confidence_and_margin_of_known_distributions():
    assert measures.entropy({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}) == pytest.approx(math.log(3))
    assert measures.entropy({"A": 0.5, "B": 0.25, "C": 0.25}) == pytest.approx(1.5 * math.log(2))
    assert measures.entropy({"A": 1.0, "B": 0.0}) == 0.0
    assert measures.entropy({"A": 2.0, "B": 2.0}) == pytest.approx(math.log(2))  # renormalised
    assert measures.least_confidence({"A": 0.7, "B": 0.2, "C": 0.1}) == pytest.approx(0.3)
    assert measures.margin({"A": 0.2, "B": 0.7, "C": 0.1}) == pytest.approx(0.5)
    assert measures.margin({"A": 1.0}) == 1.0
    with pytest.raises(EladError):
        measures.entropy({"A": 0.0})
    with pytest.raises(EladError):
        measures.entropy({"A": -0.1, "B": 1.1})


def test_vote_entropy_dissent_and_js_of_known_votes():
    assert measures.vote_entropy(["A", "A", "B", "B"]) == pytest.approx(math.log(2))
    assert measures.vote_entropy(["A"] * 4) == 0.0
    assert measures.vote_entropy(["A", "B", "C", "D"]) == pytest.approx(math.log(4))
    assert measures.normalised_vote_entropy(["A", "B", "C", "D"]) == pytest.approx(1.0)
    assert measures.normalised_vote_entropy(["A", "A", "B", "B"]) == pytest.approx(0.5)
    assert measures.normalised_vote_entropy(["A"]) == 0.0
    assert measures.vote_entropy([None, None, "A", "A"]) == pytest.approx(math.log(2))  # unreadable = one answer
    assert measures.dissent("A", ["A", "B", "B", "C"]) == pytest.approx(0.75)
    assert measures.js_divergence({"A": 0.3, "B": 0.7}, {"B": 0.7, "A": 0.3}) == 0.0
    assert measures.js_divergence({"A": 1.0}, {"B": 1.0}) == pytest.approx(1.0)
    expected = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2))
    assert measures.js_divergence({"A": 1.0}, {"A": 0.5, "B": 0.5}) == pytest.approx(expected)


def test_rank_and_minmax_normalisation():
    assert measures.rank_normalise({"a": 0.0, "b": 5.0, "c": 5.0, "d": 9.0}) == {"a": 0.0, "b": 0.5, "c": 0.5, "d": 1.0}
    assert measures.rank_normalise({"a": 3.0, "b": 3.0}) == {"a": 0.5, "b": 0.5}
    assert measures.rank_normalise({"a": 3.0}) == {"a": 0.5}
    assert measures.minmax_normalise({"a": 1.0, "b": 3.0, "c": 2.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert measures.minmax_normalise({"a": 1.0, "b": 1.0}) == {"a": 0.0, "b": 0.0}


def test_top_answer_breaks_ties_by_name_not_order():
    assert measures.top_answer({"B": 0.5, "A": 0.5}) == measures.top_answer({"A": 0.5, "B": 0.5}) == "A"


# --- baselines ---------------------------------------------------------------------------------

def test_baselines_score_the_final_distribution():
    view = view_of({
        "sure": item([{"A": 0.4, "B": 0.6}, {"A": 0.9, "B": 0.05, "C": 0.05}], "A", ["A"] * 4),
        "torn": item([{"A": 0.9, "B": 0.1}, {"A": 0.45, "B": 0.4, "C": 0.15}], "A", ["A", "B", "A", "B"]),
    })
    for name in ("entropy", "least_confidence", "margin"):
        assert ranking(name, view) == ["torn", "sure"]
    scores = STRATEGIES.create("margin").score(view)
    assert scores["torn"].parts["margin"] == pytest.approx(0.05) and scores["torn"].score == pytest.approx(0.95)
    assert STRATEGIES.create("least_confidence").score(view)["sure"].score == pytest.approx(0.1)
    entropy = STRATEGIES.create("entropy").score(view)["sure"]
    assert entropy.score == pytest.approx(-(0.9 * math.log(0.9) + 2 * 0.05 * math.log(0.05)))
    assert entropy.parts["top"] == "A" and entropy.parts["source"] == "model"


def test_disagreement_ranks_unanimous_samples_below_split_ones():
    view = view_of({
        "unanimous": item([{"A": 0.5, "B": 0.5}], "A", ["A", "A", "A", "A"]),
        "split": item([{"A": 0.99, "B": 0.01}], "A", ["A", "B", "A", "B"]),
        "three_ways": item([{"A": 0.99, "B": 0.01}], "A", ["A", "B", "C", "A"]),
    })
    assert ranking("disagreement", view) == ["three_ways", "split", "unanimous"]
    scores = STRATEGIES.create("disagreement").score(view)
    assert scores["split"].score == pytest.approx(math.log(2)) and scores["unanimous"].score == 0.0
    assert scores["split"].parts["votes"] == {"A": 2, "B": 2} and scores["split"].parts["k"] == 4


def test_open_answers_use_the_empirical_distribution_of_the_samples():
    one_hot = [{"12": 1.0}, {"12": 1.0}]
    view = view_of({"agreed": item(one_hot, "12", ["12"] * 4), "spread": item(one_hot, "12", ["12", "7", "7", None])})
    strategy = STRATEGIES.create("entropy", open_answers=True)
    assert strategy.needs == {"explanations", "samples"}
    scores = strategy.score(view)
    assert scores["spread"].parts["distribution"] == {"7": 0.5, "12": 0.25, "<none>": 0.25}
    assert scores["spread"].score == pytest.approx(1.5 * math.log(2)) and scores["agreed"].score == 0.0
    # "model" falls back to the samples when a distribution is one-hot and samples are there
    fallback = STRATEGIES.create("entropy").score(view)["spread"]
    assert fallback.parts["source"] == "samples" and fallback.score == pytest.approx(1.5 * math.log(2))


def test_missing_inputs_are_errors_that_name_the_item():
    view = view_of({"q1": item([{"A": 1.0, "B": 0.0}], "A", [])})
    with pytest.raises(EladError, match="q1.*selection.samples"):
        STRATEGIES.create("disagreement").score(view)
    view.answer_scores = {}
    with pytest.raises(EladError, match="no answer scores for item 'q1'"):
        STRATEGIES.create("egss_intra").score(view)


# --- EGSS --------------------------------------------------------------------------------------

STABLE = [{"A": 0.6, "B": 0.4}, {"A": 0.7, "B": 0.3}, {"A": 0.8, "B": 0.2}, {"A": 0.95, "B": 0.05}]
FLIPPING = [{"A": 0.6, "B": 0.4}, {"A": 0.3, "B": 0.7}, {"A": 0.8, "B": 0.2}, {"A": 0.95, "B": 0.05}]


def test_an_answer_that_flips_along_the_steps_ranks_above_a_stable_one():
    view = view_of({"stable": item(STABLE, "A", ["A"] * 4), "flips": item(FLIPPING, "A", ["A"] * 4)})
    assert ranking("egss_intra", view) == ["flips", "stable"]
    assert ranking("egss", view) == ["flips", "stable"]
    parts = STRATEGIES.create("egss_intra").score(view)["flips"].parts
    assert parts["flips"] == 2 and parts["contradiction"] == 0 and parts["tops"] == ["A", "B", "A", "A"]
    js = [measures.js_divergence(a, b) for a, b in zip(FLIPPING, FLIPPING[1:])]
    assert parts["intra"] == pytest.approx(sum(js) + 2)


def test_unchanged_steps_cost_nothing_and_a_contradicting_final_step_counts():
    intra = STRATEGIES.create("egss_intra")
    base = [{"A": 0.7, "B": 0.3}, {"A": 0.9, "B": 0.1}]
    padded = [base[0], base[0], base[0], base[1], base[1]]
    contradicted = [{"A": 0.7, "B": 0.3}, {"A": 0.8, "B": 0.2}, {"A": 0.2, "B": 0.8}]
    wobbled = [{"A": 0.7, "B": 0.3}, {"A": 0.2, "B": 0.8}, {"A": 0.8, "B": 0.2}, {"A": 0.2, "B": 0.8}]
    view = view_of({"base": item(base, "A", ["A"]), "padded": item(padded, "A", ["A"]),
                    "contradicted": item(contradicted, "B", ["B"]), "wobbled": item(wobbled, "B", ["B"])})
    scores = intra.score(view)
    assert scores["padded"].score == pytest.approx(scores["base"].score)
    assert scores["contradicted"].parts["contradiction"] == 1 and scores["contradicted"].parts["flips"] == 1
    assert scores["wobbled"].parts["contradiction"] == 0  # B was favoured before the last step
    # one JS term, one flip, one contradiction
    assert scores["contradicted"].score == pytest.approx(measures.js_divergence(contradicted[1], contradicted[2]) + 2
                                                         + measures.js_divergence(contradicted[0], contradicted[1]))
    one_prefix = view_of({"q": item([{"A": 0.5, "B": 0.5}], "A", ["A"])})
    assert intra.score(one_prefix)["q"].score == 0.0


def test_inter_ranks_unanimous_below_split_and_counts_a_greedy_minority():
    view = view_of({
        "unanimous": item(STABLE, "A", ["A", "A", "A", "A"]),
        "split": item(STABLE, "A", ["A", "A", "B", "B"]),
        "minority": item(STABLE, "A", ["A", "B", "B", "B"]),
        "against": item(STABLE, "A", ["B", "B", "B", "B"]),
    })
    scores = STRATEGIES.create("egss_inter").score(view)
    assert scores["unanimous"].score == 0.0
    assert scores["split"].score == pytest.approx((0.5 + 0.5) / 2)
    ve = measures.vote_entropy(["A", "B", "B", "B"]) / math.log(4)
    assert scores["minority"].score == pytest.approx((ve + 0.75) / 2) and scores["minority"].parts["minority"]
    assert scores["against"].score == pytest.approx(0.5) and scores["against"].parts["votes"] == {"B": 4}
    assert ranking("egss_inter", view)[-1] == "unanimous"
    assert ranking("egss", view)[-1] == "unanimous"


def test_egss_combines_rank_normalised_parts_by_weight():
    view = view_of({
        "intra_only": item(FLIPPING, "A", ["A"] * 4),
        "inter_only": item(STABLE, "A", ["A", "B", "B", "C"]),
        "neither": item(STABLE, "A", ["A"] * 4),
    })
    assert ranking("egss", view, weight=1.0)[0] == "intra_only"
    assert ranking("egss", view, weight=0.0)[0] == "inter_only"
    assert ranking("egss", view)[-1] == "neither"
    scores = STRATEGIES.create("egss", weight=0.25).score(view)
    parts = scores["intra_only"].parts
    assert parts["intra_scaled"] == 1.0 and parts["inter_scaled"] == 0.25  # inter ties with "neither" at 0
    assert scores["intra_only"].score == pytest.approx(0.25 * 1.0 + 0.75 * 0.25)
    assert scores["inter_only"].score == pytest.approx(0.25 * 0.25 + 0.75 * 1.0)
    minmax = STRATEGIES.create("egss", scale="minmax").score(view)
    assert minmax["neither"].score == 0.0 and minmax["intra_only"].score == pytest.approx(0.5)


def test_egss_asks_only_for_what_its_weight_uses():
    assert STRATEGIES.create("egss").needs == {"explanations", "samples", "answer_scores"}
    assert STRATEGIES.create("egss", weight=1.0).needs == {"explanations", "answer_scores"}
    assert STRATEGIES.create("egss", weight=0.0).needs == {"explanations", "samples"}
    assert STRATEGIES.create("egss_intra").needs == {"explanations", "answer_scores"}
    assert STRATEGIES.create("egss_inter").needs == {"explanations", "samples"}
    assert STRATEGIES.create("random").needs == frozenset()
    view = view_of({"q": item(STABLE, "A", [])})  # no samples: weight 1 must not need them
    assert STRATEGIES.create("egss", weight=1.0).score(view)["q"].score == 0.5
    with pytest.raises(EladError, match="weight"):
        STRATEGIES.create("egss", weight=1.5)
    with pytest.raises(EladError, match="scale"):
        STRATEGIES.create("egss", scale="zscore")


def test_egss_answer_adds_the_final_answer_entropy_as_a_third_part():
    view = view_of({
        "intra_only": item(FLIPPING, "A", ["A"] * 4),
        "inter_only": item(STABLE, "A", ["A", "B", "B", "C"]),
        "unsure_answer": item([{"A": 0.5, "B": 0.5}, {"A": 0.34, "B": 0.33, "C": 0.33}], "A", ["A"] * 4),
    })
    plain = STRATEGIES.create("egss").score(view)
    thirds = STRATEGIES.create("egss_answer").score(view)
    entropy = STRATEGIES.create("entropy").score(view)
    ranks = measures.rank_normalise({i: entropy[i].score for i in entropy})
    for i, scored in thirds.items():
        assert scored.parts["answer_scaled"] == pytest.approx(ranks[i])
        assert scored.score == pytest.approx(2 / 3 * plain[i].score + 1 / 3 * ranks[i])
    assert max(ranks, key=ranks.get) == "unsure_answer" and thirds["unsure_answer"].parts["answer_entropy"] > 1.0
    # answer 0 is EGSS as published; the loop is asked for what entropy reads (samples for open answers)
    same = STRATEGIES.create("egss", answer=0.0).score(view)
    assert all(same[i].score == plain[i].score and "answer_scaled" not in same[i].parts for i in same)
    assert STRATEGIES.create("egss_answer", weight=1.0).needs == {"explanations", "answer_scores"}
    assert create_strategy("egss_answer", weight=1.0, open_answers=True).needs == {
        "explanations", "answer_scores", "samples"}
    with pytest.raises(EladError, match="answer"):
        STRATEGIES.create("egss", answer=1.0)


# --- registry, construction from the config ----------------------------------------------------

def test_every_strategy_is_registered_and_accepted_by_the_config():
    assert set(STRATEGIES.names()) == set(ALL)
    for name in ALL:
        assert SelectionConfig(strategy=name).strategy == name
        strategy = create_strategy(name, weight=0.3, options={})
        assert strategy.name == name and strategy.needs <= {"explanations", "samples", "answer_scores"}
    assert create_strategy("egss", weight=0.3).weight == 0.3
    assert create_strategy("egss", weight=0.3, options={"weight": 0.9, "scale": "minmax"}).weight == 0.9
    assert create_strategy("margin", open_answers=True).needs == {"explanations", "samples"}
    assert create_strategy("egss", options={"diversity": 0.8}).needs  # a loop option, not the strategy's
    with pytest.raises(EladError, match="takes no option colour"):
        create_strategy("entropy", options={"colour": "red"})


# --- determinism and uniqueness over random views ----------------------------------------------

ANSWERS = st.sampled_from(["A", "B", "C", None])
DISTRIBUTION = st.dictionaries(st.sampled_from(["A", "B", "C"]), st.floats(0.01, 1.0), min_size=1, max_size=3)
ITEM = st.builds(item, st.lists(DISTRIBUTION, min_size=1, max_size=5), st.sampled_from(["A", "B", "C"]),
                 st.lists(ANSWERS, min_size=1, max_size=6))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"q[0-9]{1,3}", fullmatch=True), ITEM, min_size=1, max_size=12), st.integers(0, 5))
def test_selection_is_deterministic_for_a_seed_and_never_selects_twice(items, seed):
    view = view_of(items, seed=seed)
    for name in ALL:
        first = select_top(STRATEGIES.create(name).score(view), 3, seed)
        again = select_top(STRATEGIES.create(name).score(view_of(dict(reversed(items.items())), seed)), 3, seed)
        ids = [i for i, _ in first]
        assert ids == [i for i, _ in again]
        assert sorted(ids) == sorted(items) and len(set(ids)) == len(ids)
        assert all(math.isfinite(s.score) for _, s in first)
        json.loads(json.dumps([s.parts for _, s in first], allow_nan=False))  # parts go to the store as JSON


# --- diversity ---------------------------------------------------------------------------------

def test_diverse_top_defers_near_duplicates_but_spends_the_budget():
    ranked = [(i, Scored(s)) for i, s in (("a", 4.0), ("a_twin", 3.0), ("b", 2.0), ("c", 1.0))]
    questions = {"a": "How many apples does Tom have left?", "a_twin": "how many apples does Tom have left",
                 "b": "Is the sky blue at noon?", "c": "What is 7 times 8?"}
    batch = diverse_top(ranked, questions, budget=3, threshold=0.8)
    assert [i for i, _ in batch] == ["a", "b", "c", "a_twin"]
    assert batch[3][1].parts["deferred_by"] == "a"
    fill = diverse_top(ranked, {k: "same words" for k in questions}, budget=2)
    assert [i for i, _ in fill] == ["a", "a_twin", "b", "c"]  # nothing else to take: the twins fill the batch
    assert [i for i, _ in diverse_top(ranked, questions, budget=1)] == ["a", "a_twin", "b", "c"]
    assert sorted(i for i, _ in batch) == sorted(questions)


def test_a_forced_answer_outranks_the_parsed_one_and_none_is_kept():
    view = view_of({"a": item([{"A": 1.0}], "A", ["A", "B"])})
    assert view.sampled_answers("a", "t") == ["A", "B"] and view.greedy_answer("a", "t") == "A"
    for explanation, forced in zip(view.explanations["a"], ["C", None, "C"]):
        explanation["forced"] = forced  # the student, made to answer: C, nothing, C
    assert view.greedy_answer("a", "t") == "C" and view.sampled_answers("a", "t") == [None, "C"]
    parts = STRATEGIES.create("egss_inter").score(view)["a"].parts
    assert parts["greedy"] == "C" and parts["votes"] == {"<none>": 1, "C": 1}
