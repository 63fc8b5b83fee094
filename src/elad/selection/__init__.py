"""Sample selection strategies. A new strategy is one file plus one registry line.

Formulas: docs/selection.md. Constructor arguments (all optional, keyword only):
  random, disagreement, egss_intra, egss_inter: none
  entropy, least_confidence, margin: source ("auto" | "model" | "samples"), open_answers (bool)
  egss: weight (float in [0, 1], default 0.5), scale ("rank" | "minmax"), answer (float in [0, 1), default 0),
        open_answers (bool)
  egss_answer: as egss, answer default 1/3
  oracle: none (a benchmark ceiling: it reads the gold answers)
create_strategy() passes the config's weight and options to whichever strategy takes them.
"""

import inspect
from typing import Any

from elad.errors import EladError
from elad.registry import Registry
from elad.selection.base import ANSWER_SCORES, EXPLANATIONS, SAMPLES, RoundView, Scored, Strategy, select_top
from elad.selection.diversity import diverse_top
from elad.selection.egss import EgssAnswerStrategy, EgssInterStrategy, EgssIntraStrategy, EgssStrategy
from elad.selection.oracle import OracleStrategy
from elad.selection.random import RandomStrategy
from elad.selection.uncertainty import DisagreementStrategy, EntropyStrategy, LeastConfidenceStrategy, MarginStrategy

LOOP_OPTIONS = {"diversity", "acquisition", "beta"}
STRATEGIES: Registry[Strategy] = Registry("selection strategy")
STRATEGIES.register("random")(RandomStrategy)
STRATEGIES.register("entropy")(EntropyStrategy)
STRATEGIES.register("least_confidence")(LeastConfidenceStrategy)
STRATEGIES.register("margin")(MarginStrategy)
STRATEGIES.register("disagreement")(DisagreementStrategy)
STRATEGIES.register("egss")(EgssStrategy)
STRATEGIES.register("egss_intra")(EgssIntraStrategy)
STRATEGIES.register("egss_inter")(EgssInterStrategy)
STRATEGIES.register("egss_answer")(EgssAnswerStrategy)
STRATEGIES.register("oracle")(OracleStrategy)  # benchmarks only: it reads the gold answers


def reads_gold(label: str) -> bool:
    """Whether the strategy a run's label names (a registered name, or a grid variant "name+acquisition")
    reads the gold answers: a benchmark ceiling, never a strategy to use."""
    name = label.split("+", 1)[0]
    return name in STRATEGIES and bool(getattr(STRATEGIES.get(name), "reads_gold", False))


def create_strategy(
    name: str, weight: float | None = None, options: dict[str, Any] | None = None, open_answers: bool = False
) -> Strategy:
    """The strategy `name`, given `weight` and `open_answers` only if it takes them, and every key of
    `options` (an option it does not take is an error that names the ones it does)."""
    factory = STRATEGIES.get(name)
    accepted = set(inspect.signature(factory).parameters)
    kwargs = dict(options or {})
    unknown = sorted(set(kwargs) - accepted - LOOP_OPTIONS)
    if unknown:
        known = ", ".join(sorted(accepted)) or "none"
        raise EladError(f"selection.options: strategy '{name}' takes no option {', '.join(unknown)} (it takes: {known})")
    for name in LOOP_OPTIONS:  # options of how the batch is taken (BatchPolicy), not of the strategy
        kwargs.pop(name, None)
    if weight is not None and "weight" in accepted:
        kwargs.setdefault("weight", weight)
    if open_answers and "open_answers" in accepted:
        kwargs.setdefault("open_answers", True)
    return factory(**kwargs)


__all__ = [
    "ANSWER_SCORES", "EXPLANATIONS", "SAMPLES", "STRATEGIES", "RoundView", "Scored", "Strategy", "create_strategy",
    "diverse_top", "reads_gold", "select_top",
]
