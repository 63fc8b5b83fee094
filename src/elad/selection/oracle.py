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
    answers rightly; p from its final answer distribution. An item without a gold answer cannot be judged:
    score -1, bought last."""

    name = "oracle"
    needs = frozenset({EXPLANATIONS, ANSWER_SCORES})
    reads_gold = True
    stop_measure = None  # its scores rank by gold, they measure no uncertainty (loop.stop_uncertainty)

    def score(self, view: RoundView) -> dict[str, Scored]:
        if view.is_correct is None:
            raise EladError("strategy 'oracle' needs the task's answer check (RoundView.is_correct)")
        scored = {}
        for example in view.candidates:
            _, answer = student_answer(view, example.id)
            final = view.prefix_distributions(example.id, self.name)[-1]
            p = measures.normalise(final).get(answer, 0.0)
            if not example.answer:
                scored[example.id] = Scored(-1.0, {"wrong": None, "p_answer": p, "answer": answer})
                continue
            wrong = not view.is_correct(answer, example.answer)
            scored[example.id] = Scored(1.0 + p if wrong else 1.0 - p, {"wrong": int(wrong), "p_answer": p,
                                                                           "answer": answer})
        return scored
