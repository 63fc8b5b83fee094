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


def transferred(loop: LoopConfig, store: RunStore, round_: int) -> str | None:
    """Knowledge sufficiently transferred: the pool's mean uncertainty is below the threshold. The
    measure is the inter-explanation uncertainty (in [0, 1]) where the strategy has it, else its score."""
    threshold = loop.stop_uncertainty
    scored = store.selection_scores(round_)
    if threshold is None or not scored:
        return None
    mean = float(np.mean([parts.get("inter", score) for score, parts in scored]))
    if mean < threshold:
        return f"mean pool uncertainty {mean:.3f} is below {threshold}: knowledge sufficiently transferred"
    return None
