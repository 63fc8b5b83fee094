"""What the modules of elad.students share: the label the loss skips, the progress callback, a training
record and report, and whether this CPU computes bf16.

A leaf: it imports nothing from elad.students, so every module there can import it without a cycle.
"""

import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100  # label value the loss skips: prompt tokens and padding

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class TrainRecord:
    """One annotated example, as data. `cot` trains on (prompt -> target); `step_by_step` on (predict: prompt ->
    "So the answer is <answer>.") and (explain: prompt -> rationale, or the whole target when the student
    answers with a rationale at inference). A missing rationale or answer is read from `target` when the
    training features are built (prompting.step_by_step_targets)."""

    prompt: str  # the user text: the task's prompt for the question
    target: str  # rationale + answer cue: the CoT target (an annotation's `target`)
    rationale: str | None = None  # step_by_step's explain target
    answer: str | None = None  # step_by_step's predict answer


@dataclass
class TrainReport:
    examples: int
    steps: int
    loss: float | None
    seconds: float
    tokens: int  # target + prompt tokens seen, all epochs


def fitted_new_tokens(target_lengths: list[int], cap: int) -> int:
    """How many tokens a student trained on targets of these lengths (in tokens) should write: 1.25 x their
    95th percentile (nearest rank) plus 8, at least 16, and never more than `cap`. Room beyond what it was taught,
    so that a slightly longer explanation still ends, without paying for the untrained length."""
    if not target_lengths:
        raise ValueError("no targets to fit the generation length to")
    ordered = sorted(target_lengths)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return min(cap, max(16, math.ceil(1.25 * p95) + 8))


def cpu_computes_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 / AMX); emulated bf16 is far slower than fp32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextmanager
def forwards_replaced(replacements: dict):
    """Within the block, each module runs the forward given for it (an instance attribute); afterwards the
    attribute goes and the class's forward shows again. Yields how many were replaced."""
    for module, forward in replacements.items():
        module.forward = forward
    try:
        yield len(replacements)
    finally:
        for module in replacements:
            del module.forward
