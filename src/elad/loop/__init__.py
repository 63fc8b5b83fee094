"""The loop: rounds, budgets, stopping rules, resume. Talks to every stage through its protocol."""

from elad.loop.runner import Experiment, draw

__all__ = ["Experiment", "draw"]
