"""How well a strategy's scores point at the student's errors: the AUROC of each score part against
"the student answers this item wrongly", on the round's scored items whose gold answer is known.

0.5 is a score that knows nothing of the errors, 1.0 one that ranks every wrong item above every right
one. The student's answer to an item is the one it gives when made to answer after its whole greedy
explanation (the top of its final answer distribution), else its forced or parsed answer to that explanation.
"""

from collections.abc import Callable

import numpy as np

from elad.selection import measures
from elad.selection.base import RoundView, Scored, final_answer


def auroc(scores: list[float], positives: list[bool]) -> float | None:
    """P(a random positive scores above a random negative), ties counted half (the Mann-Whitney U over
    both counts); None unless there are both positives and negatives."""
    values = np.asarray(scores, dtype=float)
    flags = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(flags.sum()), int((~flags).sum())
    if not n_pos or not n_neg:
        return None
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):  # average ranks over runs of ties
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    u = ranks[flags].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def student_answer(view: RoundView, example_id: str) -> tuple[bool, str | None]:
    """(known, the student's answer): known is False when the view holds nothing to tell; the answer is
    None when the student gave none."""
    scores = view.answer_scores.get(example_id)
    if scores:
        return True, measures.top_answer(measures.normalise(scores[-1]))
    explanations = view.explanations.get(example_id)
    if explanations:
        return True, final_answer(explanations[0])
    return False, None


def student_wrong(view: RoundView, is_correct: Callable[[str | None, str], bool]) -> dict[str, bool]:
    """Per scored item with a gold answer and a known student answer: whether the student is wrong."""
    wrong = {}
    for example in view.candidates:
        known, answer = student_answer(view, example.id)
        if example.answer and known:
            wrong[example.id] = not is_correct(answer, example.answer)
    return wrong


def error_aurocs(scored: dict[str, Scored], wrong: dict[str, bool]) -> dict[str, float]:
    """`auroc_score` for the strategy's score and `auroc_<part>` for each numeric part, over the items in
    `wrong`; with the counts `errors_known` (items) and `errors_wrong` (of them, wrong)."""
    ids = [i for i in wrong if i in scored]
    labels = [wrong[i] for i in ids]
    result = {"errors_known": float(len(ids)), "errors_wrong": float(sum(labels))}
    columns = {"score": [scored[i].score for i in ids]}
    for name in sorted({k for i in ids for k, v in scored[i].parts.items() if _number(v)}):
        if all(_number(scored[i].parts.get(name)) for i in ids):
            columns[name] = [float(scored[i].parts[name]) for i in ids]
    for name, values in columns.items():
        value = auroc(values, labels)
        if value is not None:
            result[f"auroc_{name}"] = value
    return result


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
