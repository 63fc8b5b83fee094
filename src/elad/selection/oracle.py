"""The oracle: a ceiling for benchmarks, never a strategy for real use (it reads the gold answers).

It picks the items the current student gets wrong, the most confidently wrong first, then the right ones,
the least confident first. Run beside the real strategies, it shows how much any selection could gain at
a given budget: where the oracle does not beat random, buying what the student gets wrong does not pay
there (a heuristic ceiling: a strategy that picks what teaches most can still pass it).
"""

from elad.errors import EladError
from elad.selection import measures
from elad.selection.base import ANSWER_SCORES, EXPLANATIONS, RoundView, Scored
from elad.selection.errors_auroc import student_answer


class OracleStrategy:
    """score = 1 + p(its answer) for an item the student answers wrongly, 1 - p(its answer) for one it
    answers rightly; p from its final answer distribution (1 where it has none)."""

    name = "oracle"
    needs = frozenset({EXPLANATIONS, ANSWER_SCORES})
    reads_gold = True

    def score(self, view: RoundView) -> dict[str, Scored]:
        if view.is_correct is None:
            raise EladError("strategy 'oracle' needs the task's answer check (RoundView.is_correct)")
        scored = {}
        for example in view.candidates:
            _, answer = student_answer(view, example.id)
            final = view.answer_scores.get(example.id)
            p = measures.normalise(final[-1]).get(answer, 0.0) if final and answer is not None else 1.0
            wrong = not (example.answer and view.is_correct(answer, example.answer))
            scored[example.id] = Scored(1.0 + p if wrong else 1.0 - p, {"wrong": int(wrong), "p_answer": p,
                                                                           "answer": answer})
        return scored
