"""What a rerun on a run directory may do: which configs it takes, and what it does at a finished round.

A run directory belongs to one experiment. A started run takes new loop extents and stopping rules (more
rounds, a bigger budget: EXTENDABLE) and a new way to reach its teacher (REACHABLE), and nothing else;
a run that never started a round (it stopped on bad input) takes any config.
"""

from enum import Enum

from rich.console import Console

from elad.config import ExperimentConfig, parse_config
from elad.errors import EladError
from elad.store import RunDir, RunStore

ALL_ROUNDS_DONE = "all rounds done"
BUDGET_SPENT = "the teacher budget is spent"
# Loop settings a finished or stopped run may take new values of on its directory: more rounds, a bigger
# budget, other stopping rules. Anything else would mix two experiments in one store.
EXTENDABLE = {"rounds", "budget", "round_budget", "target_accuracy", "patience", "min_gain", "stop_uncertainty"}
# How the teacher is reached, not what it is (backend and model stay): a server restarted on another port,
# or a slower link, must not orphan a run. The response cache is keyed without them.
REACHABLE = {"base_url", "api_key_env", "concurrency", "timeout", "max_retries", "token_limit", "batch_poll_seconds",
             "batch_size"}
EXTENSION_PENDING = "extension_pending"  # meta key: the config was extended; stopped rounds may go on


class AtDoneRound(Enum):
    SKIP = "skip"  # go on to the next round
    STOP = "stop"  # stop where the run stopped before
    REDO = "redo"  # finish it: the budget cut it short, and an extended config gives the budget room


def same_experiment(config: ExperimentConfig) -> dict:
    """What makes two configs the same experiment: everything but the loop's extents and stopping rules
    and the teacher's connection settings."""
    return config.model_dump(exclude={"loop": EXTENDABLE, "teacher": REACHABLE})


def admit_config(run_dir: RunDir, store: RunStore, config: ExperimentConfig, console: Console) -> None:
    """Refuse a config the directory's run cannot take; mark an extension; save the config it runs under."""
    saved = run_dir.config_path
    if saved.exists() and store.rounds():
        previous = parse_config(saved.read_text(), source=str(saved))
        if previous == config:
            return
        if same_experiment(previous) != same_experiment(config):
            raise EladError(
                f"{run_dir.path} holds a run of a different config; use a new run directory (a started run "
                f"takes new values only for loop: {', '.join(sorted(EXTENDABLE))}; and teacher: "
                f"{', '.join(sorted(REACHABLE))})"
            )
        if previous.loop != config.loop:
            store.set_meta(EXTENSION_PENDING, "1")
        console.print(f"[bold]{run_dir.path}: settings changed; the run goes on under the new ones")
    tmp = saved.with_suffix(".yaml.tmp")
    tmp.write_text(config.to_yaml())
    tmp.replace(saved)


def at_done_round(store: RunStore, round_: int, extended: bool, budget_spent: bool) -> AtDoneRound:
    """What a rerun does at a finished round."""
    previous_stop = store.stop_reason(round_)
    if previous_stop in (None, ALL_ROUNDS_DONE):
        return AtDoneRound.SKIP
    if not extended or (previous_stop == BUDGET_SPENT and budget_spent):
        return AtDoneRound.STOP
    if previous_stop == BUDGET_SPENT and (unfinished(store, round_) or untrained(store, round_)):
        return AtDoneRound.REDO
    return AtDoneRound.SKIP  # the new settings may not stop here again; the next round decides


def trained_on_all(store: RunStore, round_: int) -> bool:
    """Whether the round's training finished on every annotation so far (its record is written after its
    adapter is saved; a round finished under a raised budget has more annotations and trains again)."""
    done = [t["examples"] for t in store.training() if t["round"] == round_]
    return bool(done) and done[0] == len(store.annotations(up_to_round=round_))


def untrained(store: RunStore, round_: int) -> bool:
    """Whether the round has annotations its student was not trained on: a rerun that finished its items
    was stopped before its training did."""
    return bool(store.annotations(up_to_round=round_)) and not trained_on_all(store, round_)


def unfinished(store: RunStore, round_: int) -> bool:
    """Whether the round has chosen items without an annotation or rejection (the budget stopped it
    mid-way; their paid calls wait in the teacher cache). Finishing it retrains and re-evaluates."""
    handled = store.handled()
    return any(example_id not in handled for example_id in store.chosen(round_))
