"""A grid's shared seed set: with `loop.initial_random`, round 1 of every strategy of one seed draws the
same random questions, buys the same annotations and trains the same student (round 0, the untrained
student, is the same too). Computing them once per seed and copying them into the other strategies'
run directories gives every strategy of a seed the very same starting point (a paired comparison that
no nondeterminism in training can blur) and saves one round of training and evaluation per strategy.

The copy is a run directory as the round-1 run left it, cut to rounds 0 and 1: its store (every table's
rows of later rounds deleted), its round-1 adapter, and the cell's own config.yaml. Not its teacher
cache: that holds every reply the source bought so far, later rounds' too, and a reply found there is
charged nothing, so a copy would make the other strategies' purchases that the source also made look
free (the seed set's own annotations are in the store and need no cache).
The run then resumes at round 2 as any run does. It is written beside the target and renamed into place,
so a crash leaves either no run or a whole one.

Round 2's view of the pool is shared too. The round-1 student explains the same candidates (drawn from
the same pool minus the same seed set, with the same seed) for every strategy of the seed: the same
greedy and sampled explanations, the same forced answers, the same answers after each step. Only what a
strategy reads of them, and makes of them, differs. So a sibling of the same round 1 that finished round 2
holding what the copy's strategy reads lends exactly that (the explanation stage of round 2 then finds
its work done), and every strategy of the seed chooses from the very same explanations: the comparison
of round 2 is of selection alone. The copy's round-2 stage times then show no explanation time.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

from elad.config import ExperimentConfig, parse_config
from elad.errors import EladError
from elad.store import RunDir, RunStore, copy_database

SHARED_ROUNDS = 1  # rounds 0..1: the untrained student and the seed set
VIEW_ROUND = SHARED_ROUNDS + 1  # its view of the pool is written by the seed set's student


def comparable(config: ExperimentConfig, other: ExperimentConfig) -> bool:
    """Whether two cells' rounds 0..1 are the same work: configs equal but for the name, the strategy and how
    it draws its batch (round 1's seed set is drawn at random whatever the acquisition)."""
    def plain(c: ExperimentConfig) -> dict:
        data = c.model_dump()
        data.pop("name")
        data["selection"].pop("strategy")
        for key in ("acquisition", "beta"):
            data["selection"]["options"].pop(key, None)
        return data

    return bool(config.loop.initial_random) and plain(config) == plain(other)


def seed_set_source(config: ExperimentConfig, siblings: list[Path]) -> Path | None:
    """The first of `siblings` (run directories of the same grid) whose run finished round 1 under a config
    comparable with `config`; None if there is none yet."""
    return _first_sibling(config, siblings, lambda store, path: store.round_done(SHARED_ROUNDS))


@dataclass(frozen=True)
class ViewNeeds:
    """What of round 2's view a strategy reads: the greedy explanations always, and as the strategy asks,
    `samples` sampled ones (with the answer forced after each of them when `forced`) and the answers after
    each step (`steps`). Only that is copied, so that a copy holds what its own run would have written."""

    samples: int
    forced: bool
    steps: bool


def view_needs(config: ExperimentConfig) -> ViewNeeds | None:
    """What `config`'s strategy reads of the pool (as explain.round_view writes it); None if nothing."""
    from elad.selection import ANSWER_SCORES, SAMPLES, create_strategy
    from elad.tasks import AnswerKind

    strategy = create_strategy(config.selection.strategy, weight=config.selection.weight,
                               options=config.selection.options,
                               open_answers=config.task.open().answer_kind == AnswerKind.NUMBER)
    if not strategy.needs:
        return None
    sampled = SAMPLES in strategy.needs
    return ViewNeeds(samples=config.selection.samples if sampled else 0,
                     forced=sampled and config.selection.forced_answers, steps=ANSWER_SCORES in strategy.needs)


def first_view_source(config: ExperimentConfig, siblings: list[Path], seed_set: Path) -> Path | None:
    """The first of `siblings` with a comparable config, the same round 1 as `seed_set` (the run the copy's
    rounds 0..1 come from), and round 2 finished with all of its view that `config`'s strategy reads; None if
    there is none, or if the strategy reads no explanations."""
    needs = view_needs(config)
    if needs is None:
        return None
    origin = _round_one_of(seed_set)
    return _first_sibling(config, siblings, lambda store, path: (
        store.round_done(VIEW_ROUND) and (store.get_meta("seed_set_from") or path.name) == origin
        and _holds_view(store, needs)))


def _round_one_of(run: Path) -> str | None:
    """The name of the run whose round 1 `run` holds: its own, or the one it was copied from."""
    try:
        store = RunDir(run).open_store(readonly=True)
    except EladError:
        return None
    try:
        return store.get_meta("seed_set_from") or run.name
    finally:
        store.close()


def _first_sibling(config: ExperimentConfig, siblings: list[Path], accept) -> Path | None:
    for path in siblings:
        run_dir = RunDir(path)
        if not run_dir.has_run() or not run_dir.config_path.exists():
            continue
        try:
            other = parse_config(run_dir.config_path.read_text(encoding="utf-8"), source=str(run_dir.config_path))
            store = run_dir.open_store(readonly=True)
        except EladError:
            continue
        try:
            if comparable(config, other) and accept(store, path):
                return path
        finally:
            store.close()
    return None


def _holds_view(store: RunStore, needs: ViewNeeds) -> bool:
    """Whether round 2's stored view covers, for every item the round scored, what `needs` asks for. A run
    whose strategy read less left less, and lends none."""
    def count(sql: str, *args) -> int:
        return store.db.execute(sql, (VIEW_ROUND, *args)).fetchone()[0]

    scored = count("SELECT COUNT(*) FROM selections WHERE round = ?")
    items = count("SELECT COUNT(DISTINCT example_id) FROM explanations WHERE round = ? AND role = 'pool'")
    explained = count("SELECT COUNT(*) FROM explanations WHERE round = ? AND role = 'pool' AND sample <= ?",
                      needs.samples)
    forced = count("SELECT COUNT(*) FROM forced_answers WHERE round = ? AND role = 'pool' AND sample <= ?",
                   needs.samples)
    stepped = count("SELECT COUNT(DISTINCT example_id) FROM answer_scores WHERE round = ?")
    return (scored > 0 and items == scored and explained == items * (1 + needs.samples)
            and (forced == explained or not needs.forced) and (stepped == items or not needs.steps))


def adopt_seed_set(source: Path, target: Path, config: ExperimentConfig, view_from: Path | None = None) -> None:
    """Make `target` (no run yet) a copy of `source`'s rounds 0..1 under `config`, with what `config`'s
    strategy reads of round 2's view of the pool from `view_from` (see first_view_source) when given."""
    if RunDir(target).has_run():
        raise EladError(f"{target} already holds a run; a seed set is only copied into a new one")
    staging = target.with_name(f".{target.name}.seed-set")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    src, dst = RunDir(source), RunDir(staging)
    copy_database(src.store_path, dst.store_path)
    adapter_round = source / RunDir.ROUNDS / str(SHARED_ROUNDS)
    if adapter_round.exists():
        shutil.copytree(adapter_round, staging / RunDir.ROUNDS / str(SHARED_ROUNDS),
                        ignore=shutil.ignore_patterns("trainer"))
    store = RunStore(dst.store_path)
    try:
        _keep_rounds(store, SHARED_ROUNDS)
        store.set_meta("name", config.name)
        store.set_meta("seed_set_from", source.name)
        if view_from is not None:
            _copy_view(RunDir(view_from).store_path, store, view_needs(config))
            store.set_meta("pool_view_from", view_from.name)
    finally:
        store.close()
    dst.config_path.write_text(config.to_yaml())
    if target.exists():  # an empty directory left by an earlier attempt
        target.rmdir()
    staging.replace(target)


def _copy_view(source: Path, store: RunStore, needs: ViewNeeds) -> None:
    """The rows of round 2's pool view at `source` that `needs` asks for, added to `store` (by column name)."""
    wanted = {"explanations": "role = 'pool' AND sample <= ?", "forced_answers": "role = 'pool' AND sample <= ?",
              "answer_scores": "1"}
    if not needs.forced:
        wanted.pop("forced_answers")
    if not needs.steps:
        wanted.pop("answer_scores")
    reader = RunStore(source, readonly=True)
    try:
        with store.transaction():
            for table, where in wanted.items():
                columns = ", ".join(row[1] for row in store.db.execute(f"PRAGMA table_info({table})"))
                args = (VIEW_ROUND, needs.samples) if "?" in where else (VIEW_ROUND,)
                rows = reader.db.execute(f"SELECT {columns} FROM {table} WHERE round = ? AND {where}", args)
                marks = ", ".join("?" * len(columns.split(", ")))
                store.db.executemany(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})",
                                     [tuple(row) for row in rows])
    finally:
        reader.close()


def _keep_rounds(store: RunStore, last: int) -> None:
    """Delete every row of a round after `last` from every table that records rounds."""
    tables = [row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    with store.transaction():
        for table in tables:
            columns = {row[1] for row in store.db.execute(f"PRAGMA table_info({table})")}
            if "round" in columns:
                store.db.execute(f"DELETE FROM {table} WHERE round > ?", (last,))
