"""A grid's shared seed set: with `loop.initial_random`, round 1 of every strategy of one seed draws the
same random questions, buys the same annotations and trains the same student (round 0, the untrained
student, is the same too). Computing them once per seed and copying them into the other strategies'
run directories gives every strategy of a seed the very same starting point (a paired comparison that
no nondeterminism in training can blur) and saves one round of training and evaluation per strategy.

The copy is a run directory as the round-1 run left it, cut to rounds 0 and 1: its store (every table's
rows of later rounds deleted), its teacher cache, its round-1 adapter, and the cell's own config.yaml.
The run then resumes at round 2 as any run does. It is written beside the target and renamed into place,
so a crash leaves either no run or a whole one.

Round 2's view of the pool is shared too. The round-1 student explains the same candidates (drawn from
the same pool minus the same seed set, with the same seed) for every strategy of the seed: the same
greedy and sampled explanations, the same forced answers, the same answers after each step. Only what a
strategy makes of them differs. So a sibling that finished round 2 with that whole view lends it to the
copy (the explanation stage of round 2 then finds its work done), and every strategy of the seed chooses
from the very same view: the comparison of round 2 is of selection alone.
"""

import shutil
import sqlite3
import urllib.parse
from pathlib import Path

from elad.config import ExperimentConfig, SelectionConfig, parse_config
from elad.errors import EladError
from elad.store import RunDir, RunStore

SHARED_ROUNDS = 1  # rounds 0..1: the untrained student and the seed set
VIEW_ROUND = SHARED_ROUNDS + 1  # its view of the pool is written by the seed set's student
VIEW_TABLES = ("explanations", "forced_answers", "answer_scores")  # the student's view of the round's pool


def comparable(config: ExperimentConfig, other: ExperimentConfig) -> bool:
    """Whether two cells' rounds 0..1 are the same work: configs equal but for the name and the strategy."""
    def plain(c: ExperimentConfig) -> dict:
        data = c.model_dump()
        data.pop("name")
        data["selection"].pop("strategy")
        return data

    return bool(config.loop.initial_random) and plain(config) == plain(other)


def seed_set_source(config: ExperimentConfig, siblings: list[Path]) -> Path | None:
    """The first of `siblings` (run directories of the same grid) whose run finished round 1 under a config
    comparable with `config`; None if there is none yet."""
    return _first_sibling(config, siblings, lambda store: store.round_done(SHARED_ROUNDS))


def first_view_source(config: ExperimentConfig, siblings: list[Path]) -> Path | None:
    """The first of `siblings` with a comparable config that finished round 2 holding the round's whole view
    of the pool, as `config`'s strategy would write it; None if there is none, or if the strategy reads none."""
    if not _reads_the_pool(config):
        return None
    return _first_sibling(config, siblings,
                          lambda store: store.round_done(VIEW_ROUND) and _whole_view(store, config.selection))


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
            if comparable(config, other) and accept(store):
                return path
        finally:
            store.close()
    return None


def _reads_the_pool(config: ExperimentConfig) -> bool:
    from elad.selection import create_strategy
    from elad.tasks import AnswerKind

    strategy = create_strategy(config.selection.strategy, weight=config.selection.weight,
                               options=config.selection.options,
                               open_answers=config.task.open().answer_kind == AnswerKind.NUMBER)
    return bool(strategy.needs)


def _whole_view(store: RunStore, selection: SelectionConfig) -> bool:
    """Whether round 2's stored view covers every item the round scored: the greedy explanation and
    `samples` sampled ones of each, the forced answer after each (when forced answers are on), and the
    answers after each step of each greedy explanation. A strategy that read less left less, and lends none."""
    def count(sql: str) -> int:
        return store.db.execute(sql, (VIEW_ROUND,)).fetchone()[0]

    scored = count("SELECT COUNT(*) FROM selections WHERE round = ?")
    items = count("SELECT COUNT(DISTINCT example_id) FROM explanations WHERE round = ? AND role = 'pool'")
    explained = count("SELECT COUNT(*) FROM explanations WHERE round = ? AND role = 'pool'")
    forced = count("SELECT COUNT(*) FROM forced_answers WHERE round = ? AND role = 'pool'")
    stepped = count("SELECT COUNT(DISTINCT example_id) FROM answer_scores WHERE round = ?")
    return (scored > 0 and items == scored == stepped and explained == items * (1 + selection.samples)
            and (forced == explained or not selection.forced_answers))


def adopt_seed_set(source: Path, target: Path, config: ExperimentConfig, view_from: Path | None = None) -> None:
    """Make `target` (no run yet) a copy of `source`'s rounds 0..1 under `config`, with round 2's view of the
    pool from `view_from` (see first_view_source) when given."""
    if RunDir(target).has_run():
        raise EladError(f"{target} already holds a run; a seed set is only copied into a new one")
    staging = target.with_name(f".{target.name}.seed-set")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    src, dst = RunDir(source), RunDir(staging)
    _copy_database(src.store_path, dst.store_path)
    cache = source / RunDir.CACHE
    if cache.exists():
        _copy_database(cache, staging / RunDir.CACHE)
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
            _copy_view(RunDir(view_from).store_path, store)
            store.set_meta("pool_view_from", view_from.name)
    finally:
        store.close()
    dst.config_path.write_text(config.to_yaml())
    if target.exists():  # an empty directory left by an earlier attempt
        target.rmdir()
    staging.replace(target)


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file, its WAL included, even while another process writes to it."""
    reader = sqlite3.connect("file:" + urllib.parse.quote(str(source.absolute()), safe="/") + "?mode=ro", uri=True)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        reader.close()
        writer.close()


def _copy_view(source: Path, store: RunStore) -> None:
    """Round 2's pool view rows of the store at `source`, added to `store`."""
    reader = sqlite3.connect("file:" + urllib.parse.quote(str(source.absolute()), safe="/") + "?mode=ro", uri=True)
    try:
        with store.transaction():
            for table in VIEW_TABLES:
                where = "round = ?" + (" AND role = 'pool'" if table != "answer_scores" else "")
                rows = reader.execute(f"SELECT * FROM {table} WHERE {where}", (VIEW_ROUND,)).fetchall()
                if rows:
                    marks = ", ".join("?" * len(rows[0]))
                    store.db.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", rows)
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
