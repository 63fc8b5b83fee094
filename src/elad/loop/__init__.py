"""The loop: rounds, budgets, stopping rules, resume. Talks to every stage through its protocol."""

from elad.loop.build import draw
from elad.loop.runner import Experiment

__all__ = ["Experiment", "draw"]
