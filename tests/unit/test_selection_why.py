"""`elad why` on a small store built here: the chosen items with their steps, answers, samples and scores."""

import json

import pytest

from elad.errors import EladError
from elad.report.why import why, why_text
from elad.selection import STRATEGIES, RoundView, select_top
from elad.store import RunStore
from elad.tasks import Example

ITEMS = {
    # id: (steps, prefix distributions, greedy answer, sampled answers)
    "p-0": (["A man plays.", "Playing is not sleeping.", "So the answer is contradiction."],
            [{"entailment": 0.5, "neutral": 0.3, "contradiction": 0.2},
             {"entailment": 0.2, "neutral": 0.6, "contradiction": 0.2},
             {"entailment": 0.1, "neutral": 0.2, "contradiction": 0.7},
             {"entailment": 0.05, "neutral": 0.05, "contradiction": 0.9}],
            "contradiction", ["neutral", "contradiction", None]),
    "p-1": (["A dog runs.", "So the answer is entailment."],
            [{"entailment": 0.8, "neutral": 0.1, "contradiction": 0.1}] * 3,
            "entailment", ["entailment"] * 3),
    "p-2": (["Someone waits.", "So the answer is neutral."],
            [{"entailment": 0.3, "neutral": 0.6, "contradiction": 0.1}] * 3,
            "neutral", ["neutral", "neutral", "entailment"]),
}


@pytest.fixture
def store(tmp_path):
    store = RunStore(tmp_path / "run.db")
    examples = [Example(i, f"Premise: question {i}. Hypothesis: h{i}.", "contradiction") for i in ITEMS]
    store.add_examples("pool", "valid", examples)
    rows = []
    for i, (steps, _, greedy, samples) in ITEMS.items():
        rows.append((i, 0, " ".join(steps), steps, greedy, int(greedy == "contradiction")))
        rows += [(i, k, "sampled", ["sampled"], a, None) for k, a in enumerate(samples, start=1)]
    store.add_explanations(1, "pool", rows)
    with store.transaction() as db:
        db.executemany("INSERT INTO answer_scores VALUES (?, ?, ?, ?)", [
            (1, i, prefix, json.dumps(d)) for i, (_, dists, _, _) in ITEMS.items() for prefix, d in enumerate(dists)
        ])
    view = RoundView(
        1, examples, seed=3,
        explanations={i: [{"text": "", "steps": s, "answer": g}] + [{"answer": a} for a in sampled]
                      for i, (s, _, g, sampled) in ITEMS.items()},
        answer_scores={i: d for i, (_, d, _, _) in ITEMS.items()},
    )
    ranked = select_top(STRATEGIES.create("egss").score(view), 2, view.seed)
    store.add_selection(1, "egss", [(i, s.score, s.parts) for i, s in ranked], chosen={i for i, _ in ranked[:2]})
    yield store
    store.close()


def test_why_shows_question_steps_answer_after_each_step_samples_and_scores(store):
    text = why_text(store, 1, top=10, width=160)
    assert "round 1 · strategy egss · 2 chosen of 3 scored · showing the top 2" in text
    assert text.index("p-0") < text.index("p-2")  # best first
    assert "p-1" not in text  # not chosen
    assert "Premise: question p-0. Hypothesis: hp-0." in text and "gold answer: contradiction" in text
    assert "Playing is not sleeping." in text
    assert "entailment (0.50)" in text and "neutral (0.60) ↺" in text and "contradiction (0.90)" in text
    assert "contradiction ✓" in text
    assert "sampled answers (K=3): neutral contradiction <none>" in text
    assert "flips" in text and "intra_scaled" in text and "votes" in text


def test_why_honours_top_and_returns_a_rich_renderable(store):
    from rich.console import Group

    assert isinstance(why(store, 1, top=1), Group)
    text = why_text(store, 1, top=1)
    assert "p-0" in text and "p-2" not in text


def test_why_on_a_round_without_selection_names_the_rounds_that_have_one(store):
    with pytest.raises(EladError, match="round 4 has no stored selection; rounds with one: 1"):
        why(store, 4)


def test_why_tolerates_missing_explanations_and_scores(tmp_path):
    store = RunStore(tmp_path / "bare.db")
    store.add_selection(2, "random", [("x", 0.9, {}), ("y", 0.1, {})], chosen={"x"})
    text = why_text(store, 2)
    assert "question not in the store" in text and "no explanation stored" in text and "none stored" in text
    store.close()


def test_why_says_what_the_strategy_read(store):
    from elad.report.why import fed_summary

    # 3 greedy explanations, each ending in the answer cue; 9 samples, one without a readable answer
    assert fed_summary(store, 1) == {"items": 3, "explanations": 12, "greedy_finished": 3, "unreadable": 1,
                                     "forced": 0, "forced_differs": 0}
    assert "read: 12 explanations of 3 items; 3 of the 3 greedy ones reached the answer cue; 1 gave no answer" \
        in why_text(store, 1, width=200)
    # the student made to answer after each: p-0's unreadable sample gets an answer, one forced answer differs
    forced = [(i, k, a or "neutral", {a or "neutral": 1.0}) for i, (_, _, g, samples) in ITEMS.items()
              for k, a in enumerate([g] + samples)]
    forced[0] = ("p-0", 0, "neutral", {"neutral": 1.0})  # greedy said contradiction
    store.add_forced_answers(1, "pool", forced)
    fed = fed_summary(store, 1)
    assert (fed["forced"], fed["forced_differs"]) == (12, 1)
    text = why_text(store, 1, width=220)
    assert "every answer forced after its explanation (12), 1 differing from the text's" in text
    assert "sampled answers (K=3 forced after each): neutral contradiction neutral" in text
