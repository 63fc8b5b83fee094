"""Explanation-guided sample selection (EGSS): how much the student's reasoning, not only its answer,
wavers. The formulas are those of docs/selection.md, section "EGSS"; keep the two equal.

intra(x)  = S + F + C along the greedy explanation's prefix distributions p_0 .. p_n:
            S = sum_i JS(p_{i-1}, p_i)  (bits),  F = sum_i [top(p_i) != top(p_{i-1})],
            C = [n >= 1 and top(p_n) not in {top(p_0), ..., top(p_{n-1})}]  (a final step that contradicts the rest)
inter(x)  = (VE / ln K + dissent) / 2 over the K sampled final answers,
            dissent = 1 - v_g / K  (v_g = samples agreeing with the greedy answer; minority when > 1/2)
egss(x)   = w * N(intra)(x) + (1 - w) * N(inter)(x),  N = rank normalisation over the round's candidates
            (or min-max with scale="minmax").
With answer = a > 0, the answer-level uncertainty joins in:
egss(x)   = (1 - a) * [w * N(intra)(x) + (1 - w) * N(inter)(x)] + a * N(H(p_final))(x),
            H(p_final) the entropy of the final answer distribution (strategy "entropy"'s score).
egss_answer is egss with a = 1/3: intra, inter and answer entropy weigh a third each.
"""

from elad.errors import EladError
from elad.selection import measures
from elad.selection.base import ANSWER_SCORES, EXPLANATIONS, SAMPLES, RoundView, Scored
from elad.selection.uncertainty import EntropyStrategy


def intra_parts(distributions: list[dict[str, float]]) -> dict:
    """The intra-explanation uncertainty of one item and its ingredients."""
    if not distributions:
        raise EladError("no answer distributions")
    tops = [measures.top_answer(measures.normalise(p)) for p in distributions]
    js = [measures.js_divergence(a, b) for a, b in zip(distributions, distributions[1:])]
    flips = sum(a != b for a, b in zip(tops, tops[1:]))
    contradiction = int(len(tops) > 1 and tops[-1] not in tops[:-1])
    js_sum = sum(js)
    return {
        "intra": js_sum + flips + contradiction,
        "js_sum": js_sum,
        "flips": flips,
        "contradiction": contradiction,
        "js": [round(d, 6) for d in js],
        "tops": tops,
    }


def inter_parts(greedy: str | None, samples: list[str | None]) -> dict:
    """The inter-explanation uncertainty of one item and its ingredients."""
    entropy = measures.normalised_vote_entropy(samples)
    disagree = measures.dissent(greedy, samples)
    votes: dict[str, int] = {}
    for answer in samples:
        votes[measures.answer_key(answer)] = votes.get(measures.answer_key(answer), 0) + 1
    return {
        "inter": (entropy + disagree) / 2,
        "vote_entropy_norm": entropy,
        "dissent": disagree,
        "minority": disagree > 0.5,
        "greedy": measures.answer_key(greedy),
        "votes": dict(sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


class EgssIntraStrategy:
    """score = intra(x). No constructor arguments."""

    name = "egss_intra"
    needs = frozenset({EXPLANATIONS, ANSWER_SCORES})

    def score(self, view: RoundView) -> dict[str, Scored]:
        result = {}
        for example in view.candidates:
            parts = intra_parts(view.prefix_distributions(example.id, self.name))
            result[example.id] = Scored(parts["intra"], parts)
        return result


class EgssInterStrategy:
    """score = inter(x). No constructor arguments."""

    name = "egss_inter"
    stop_measure = "inter"
    needs = frozenset({EXPLANATIONS, SAMPLES})

    def score(self, view: RoundView) -> dict[str, Scored]:
        result = {}
        for example in view.candidates:
            parts = inter_parts(view.greedy_answer(example.id, self.name), view.sampled_answers(example.id, self.name))
            result[example.id] = Scored(parts["inter"], parts)
        return result


class EgssStrategy:
    """score = (1 - answer) * [weight * N(intra) + (1 - weight) * N(inter)] + answer * N(answer entropy).

    weight: in [0, 1], the share of intra-explanation uncertainty (0.5 default; 1 = intra only, 0 = inter only,
    and then the loop is not asked for what the other part needs). scale: "rank" (default) or "minmax", the
    normalisation N over the round's candidates that puts the parts on [0, 1]. answer: in [0, 1), the share
    of the answer-level uncertainty (the entropy of the final answer distribution, as strategy "entropy";
    0 default: EGSS as published). open_answers: the task's answers are open (set by the loop), so that
    entropy is read from the K sampled answers.
    """

    name = "egss"

    def __init__(self, weight: float = 0.5, scale: str = "rank", answer: float = 0.0, open_answers: bool = False):
        if not 0.0 <= weight <= 1.0:
            raise EladError(f"strategy '{self.name}': weight must lie in [0, 1], not {weight}")
        if not 0.0 <= answer < 1.0:
            raise EladError(f"strategy '{self.name}': answer must lie in [0, 1), not {answer}")
        if scale not in measures.SCALES:
            raise EladError(f"strategy '{self.name}': scale must be one of {', '.join(measures.SCALES)}, not '{scale}'")
        self.weight, self.scale, self.answer = float(weight), scale, float(answer)
        # the round's scores are scaled over its candidates (their mean says nothing of the pool): a stop
        # rule reads the inter-explanation part, in [0, 1], where the score has one
        self.stop_measure = "inter" if self.weight < 1 else None
        self.entropy = EntropyStrategy(open_answers=open_answers) if self.answer > 0 else None
        needs = {EXPLANATIONS}
        if self.weight > 0:
            needs.add(ANSWER_SCORES)
        if self.weight < 1:
            needs.add(SAMPLES)
        self.needs = frozenset(needs | (self.entropy.needs if self.entropy else set()))

    def score(self, view: RoundView) -> dict[str, Scored]:
        ids = [e.id for e in view.candidates]
        intra = EgssIntraStrategy().score(view) if self.weight > 0 else {}
        inter = EgssInterStrategy().score(view) if self.weight < 1 else {}
        answer = self.entropy.score(view) if self.entropy else {}
        normalise = measures.SCALES[self.scale]
        intra_n = normalise({i: intra[i].score for i in ids}) if intra else {i: 0.0 for i in ids}
        inter_n = normalise({i: inter[i].score for i in ids}) if inter else {i: 0.0 for i in ids}
        answer_n = normalise({i: answer[i].score for i in ids}) if answer else {i: 0.0 for i in ids}
        result = {}
        for i in ids:
            explained = self.weight * intra_n[i] + (1 - self.weight) * inter_n[i]
            value = (1 - self.answer) * explained + self.answer * answer_n[i]
            parts = {"weight": self.weight, "scale": self.scale, "intra_scaled": intra_n[i], "inter_scaled": inter_n[i]}
            if intra:
                parts.update(intra[i].parts)
            if inter:
                parts.update(inter[i].parts)
            if answer:
                parts.update({"answer": self.answer, "answer_entropy": answer[i].score, "answer_scaled": answer_n[i]})
            result[i] = Scored(value, parts)
        return result


class EgssAnswerStrategy(EgssStrategy):
    """egss with answer = 1/3: intra, inter and the answer entropy weigh a third each (weight 0.5)."""

    name = "egss_answer"

    def __init__(self, weight: float = 0.5, scale: str = "rank", answer: float = 1 / 3, open_answers: bool = False):
        super().__init__(weight, scale, answer, open_answers)
