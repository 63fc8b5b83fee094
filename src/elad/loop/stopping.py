"""The stopping rules read after a round: target accuracy, patience, and knowledge transferred."""

import numpy as np

from elad.config import LoopConfig
from elad.store import RunStore


def accuracy_says_stop(loop: LoopConfig, history: list[float]) -> str | None:
    """`history`: the evaluated accuracies up to this round, in order."""
    if loop.target_accuracy is not None and history and history[-1] >= loop.target_accuracy:
        return f"target accuracy {loop.target_accuracy:.1%} reached"
    if loop.patience is not None and len(history) > loop.patience:
        best_before = max(history[: -loop.patience])
        if max(history[-loop.patience:]) < best_before + loop.min_gain:
            return f"no gain of {loop.min_gain:.1%} over the last {loop.patience} rounds"
    return None


def stop_measure(strategy) -> str | None:
    """What `loop.stop_uncertainty` averages over a round's scored candidates for `strategy`: its
    `stop_measure` attribute. "inter": the inter-explanation part (in [0, 1]; egss with weight < 1,
    egss_inter); "score": the score itself, an uncertainty on its own scale (entropy, least confidence,
    margin, disagreement, egss_intra, and a strategy that does not say); None: nothing to read (random
    draws, the oracle's gold-based ranks, egss's scaled score without an inter part)."""
    return getattr(strategy, "stop_measure", "score")


def transferred(loop: LoopConfig, store: RunStore, round_: int, strategy) -> str | None:
    """Knowledge sufficiently transferred: the mean uncertainty of the candidates `strategy` scored this
    round (stop_measure) is below the threshold. A round selected by random draws (the seed set) reads
    nothing."""
    threshold, measure = loop.stop_uncertainty, stop_measure(strategy)
    scored = store.selection_scores(round_)
    if threshold is None or measure is None or not scored:
        return None
    values = [parts.get("inter") if measure == "inter" else score for score, parts in scored]
    if any(value is None for value in values):
        return None
    mean = float(np.mean(values))
    if mean < threshold:
        return f"mean pool uncertainty {mean:.3f} is below {threshold}: knowledge sufficiently transferred"
    return None
