"""Sample selection strategies. A new strategy is one file plus one registry line."""

from elad.registry import Registry
from elad.selection.base import RoundView, Scored, Strategy, select_top
from elad.selection.random import RandomStrategy

STRATEGIES: Registry[Strategy] = Registry("selection strategy")
STRATEGIES.register("random")(RandomStrategy)

__all__ = ["STRATEGIES", "RoundView", "Scored", "Strategy", "select_top"]
