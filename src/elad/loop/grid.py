"""`elad grid`: the ablation grid. Every strategy x annotator x seed is one Experiment in its own run
directory under the grid's folder, all from one config (same task, pool size, test size, student,
training and budget); then one results table over them all.

Seeds. A grid cell's seed is the experiment's `seed`, which seeds both the loop (selection, sampling,
training) and the draw of the pool and the test set from the task's splits (loop/build.py). So within a
seed every strategy and annotator sees exactly the same pool and test questions (a paired comparison),
and across seeds the spread includes the choice of questions as well as training noise. Where the pool
and test sizes cover their whole splits (task.pool_size / task.test_size null or larger than the split),
the questions are the same for every seed and only the loop varies.

Resume. A cell whose run has finished (a round ended with a stop reason, including "all rounds done") is
skipped without loading a model; an unfinished one is resumed by Experiment itself from its store and
its teacher cache. A cell's directory holding a run of a different config is an error, as for `elad run`.

Beyond one process. `shard=(i, n)` runs every n-th cell starting at the i-th (1-based), so that n array
jobs of a cluster scheduler (SLURM's `--array=1-n`) cover a grid between them, each in the same folder (a
shared file system) or in its own (then `elad report` over all the folders merges them). `workers=n` runs
n shards at once on this machine, each in its own process with its share of the CPU cores (or its own
GPU, when there are several), and tabulates the grid when all have finished. `cell_process=True` (the
CLI's default) runs each cell in a process of its own: a long grid in one process kept growing, as each
cell's trainings left memory scattered in the heap that the process could not hand back.

Seed set. With `loop.initial_random`, rounds 0 and 1 of every strategy of a seed are the same work (the
same random questions, annotations and student): the first strategy of a seed computes them, and every
other cell of that seed starts from a copy of them, and of round 2's explanations of the pool (written by
round 1's student, the same for every strategy) once a cell has them (loop/seedset.py;
`share_seed_set=False` or `elad grid --no-share-seed-set` computes them in each cell).

Teacher cache. Each run keeps its own response cache (run_dir/teacher_cache.db). Sharing one across the
grid would make every run after the first get its answers as cache hits, which the ledger rightly
charges nothing: the later runs would look free and their budgets would never bind, so the cost axis of
the comparison would be wrong. (A shared cache needs the ledger to charge a hit from another run as a
paid call; see docs/experiments.md.)
"""

import gc
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from elad.children import elad_command, ending, wait_for
from elad.config import ExperimentConfig
from elad.errors import EladError
from elad.report.compare import BASELINE, load_runs, results_csv, results_markdown, results_rows
from elad.report.tables import write_atomic
from elad.store import RunDir
from elad.store.rundir import strategy_label

RESULTS_CSV, RESULTS_MD = "grid_results.csv", "grid_results.md"


def grid_seeds(config: ExperimentConfig, seeds: Sequence[int] | int) -> list[int]:
    """An int N means N seeds counting up from the config's own seed; a list is taken as it is."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise EladError(f"--seeds {seeds}: need at least one seed")
        return [config.seed + i for i in range(seeds)]
    chosen = list(dict.fromkeys(int(s) for s in seeds))
    if not chosen:
        raise EladError("no seeds given")
    return chosen


def cell_name(strategy: str, annotator: str, seed: int) -> str:
    return f"{strategy}-{annotator}-s{seed}"


def strategy_variant(spec: str) -> tuple[str, dict]:
    """A grid's strategy as given: a strategy name, or one drawn by a stochastic acquisition instead of its top
    scores, `name+acquisition` or `name+acquisition:beta` (e.g. `egss+softrank`, `egss+power:2`); returns the
    strategy and the `selection.options` that make the variant."""
    from elad.selection.stochastic import check_acquisition

    name, plus, variant = spec.partition("+")
    if not plus:
        return spec, {}
    acquisition, colon, beta = variant.partition(":")
    try:
        options = {"acquisition": acquisition, **({"beta": float(beta)} if colon else {})}
        check_acquisition(acquisition, options.get("beta", 1.0))
    except (ValueError, EladError) as error:
        raise EladError(f"grid strategy {spec!r}: expected name, name+acquisition or name+acquisition:beta "
                        f"({error})") from None
    return name, options


def cell_config(config: ExperimentConfig, strategy: str, annotator: str, seed: int) -> ExperimentConfig:
    """The config of one grid cell: the base config with its strategy (and acquisition, for a variant such as
    `egss+softrank`), annotator and seed set (and its name, so each run's reports are labelled)."""
    data = config.model_dump()
    data["name"] = f"{config.name}-{cell_name(strategy, annotator, seed)}"
    data["seed"] = seed
    name, options = strategy_variant(strategy)
    data["selection"]["strategy"] = name
    data["selection"]["options"] = {**data["selection"]["options"], **options}
    data["annotation"]["method"] = annotator
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:  # an unknown strategy or annotator: say which, in one line each
        problems = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg'].removeprefix('Value error, ')}"
                             for p in error.errors())
        raise EladError(f"grid cell {cell_name(strategy, annotator, seed)}: {problems}") from None
    except EladError as error:
        raise EladError(f"grid cell {cell_name(strategy, annotator, seed)}: {error}") from None


def plan(config: ExperimentConfig, strategies: Sequence[str], annotators: Sequence[str],
         seeds: Sequence[int] | int) -> list[tuple[str, ExperimentConfig]]:
    """(run directory name, config) of every cell, seeds outermost, then strategies, then annotators: a grid
    stopped part-way has whole seeds, each a paired comparison of every cell. Every cell's config is
    validated before any runs, so a typo fails at once."""
    strategies = list(dict.fromkeys(s.strip() for s in strategies if s.strip()))
    annotators = list(dict.fromkeys(a.strip() for a in annotators if a.strip()))
    if not strategies or not annotators:
        raise EladError("the grid needs at least one strategy and one annotator")
    return [
        (cell_name(strategy, annotator, seed), cell_config(config, strategy, annotator, seed))
        for seed in grid_seeds(config, seeds) for strategy in strategies for annotator in annotators
    ]


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' (1-based) as (I, N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise EladError(f"--shard {text}: expected I/N, e.g. 2/4 (the second of four shards)") from None
    if count < 1 or not 1 <= index <= count:
        raise EladError(f"--shard {text}: I must be between 1 and N")
    return index, count


def shard_of(cells: list, shard: tuple[int, int] | None) -> list:
    """The cells of shard (i, n): every n-th one from the i-th, so that each shard gets cells of every seed
    in turn (a shard stopped part-way leaves whole early seeds done)."""
    if shard is None:
        return cells
    index, count = shard
    return cells[index - 1::count]


def finished(store) -> bool:
    """A run is finished once a round has ended with a stop reason (the last round records 'all rounds done'),
    unless its config was just extended (more rounds, a bigger budget): then it goes on."""
    from elad.loop.resume import EXTENSION_PENDING

    stopped = any(r["state"] == "done" and r["stop_reason"] for r in store.rounds())
    return stopped and store.get_meta(EXTENSION_PENDING) != "1"


def _finished_earlier(run_dir: Path) -> bool:
    """Whether a cell's run finished in an earlier grid run, read without writing anything. A store that
    cannot be read counts as unfinished: opening it for the run names what is wrong with it."""
    from elad.store import RunDir

    try:
        store = RunDir(run_dir).open_store(readonly=True)
    except EladError:
        return False
    try:
        return finished(store)
    finally:
        store.close()


def run_grid(
    config: ExperimentConfig, strategies: Sequence[str], annotators: Sequence[str], seeds: Sequence[int] | int,
    out_dir: Path, console: Console | None = None, html: bool = True, shard: tuple[int, int] | None = None,
    results: bool = True, baseline: str = BASELINE, share_seed_set: bool = True, cell_process: bool = False,
) -> Path | None:
    """Run every strategy x annotator x seed (of `shard`, when given) under
    out_dir/<strategy>-<annotator>-s<seed>, skipping finished runs and resuming unfinished ones; then write
    out_dir/grid_results.csv and grid_results.md (and, with html, out_dir/report/report.html) over the
    grid's runs found there, paired differences taken from `baseline`. Returns the path of grid_results.md
    (None when `results` is off). share_seed_set: with loop.initial_random, a cell whose seed already has
    a run past round 1 starts from a copy of its rounds 0..1 (loop/seedset.py) instead of computing them.
    cell_process: run each cell in a process of its own (`elad run` of its saved config), which hands all its memory
    back when the cell ends; a cell that fails (or is killed) stops the grid, naming it."""
    from elad.loop.runner import Experiment

    console = console or Console()
    out_dir = Path(out_dir)
    every_cell = plan(config, strategies, annotators, seeds)
    cells = shard_of(every_cell, shard)
    pending = [cell for name, cell in cells if not _finished_earlier(out_dir / name)]
    if pending:
        from elad.loop.preflight import preflight_cells

        preflight_cells(pending)  # a bad config stops the grid before its folder is made
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "grid.yaml", _grid_yaml(config, every_cell))
    for index, (name, cell) in enumerate(cells, start=1):
        run_dir = out_dir / name
        if share_seed_set and not RunDir(run_dir).has_run():
            _adopt_seed_set(cell, run_dir, [out_dir / other for other, _ in every_cell if other != name], console)
        experiment = Experiment(cell, run_dir, console)  # checks the directory holds this config's run
        try:
            if finished(experiment.store):
                console.print(f"[dim][{index}/{len(cells)}] {name}: finished earlier, skipped")
                continue
            console.print(f"[bold][{index}/{len(cells)}] {name}[/] -> {run_dir}")
            if cell_process:
                experiment.close()  # the cell's own process takes the directory's lock
                _run_cell_apart(name, run_dir)
            else:
                experiment.run()
        finally:
            experiment.close()
            del experiment
            gc.collect()  # let the student's weights go before the next cell loads its own
    if not results:
        return None
    return write_grid_results([out_dir / name for name, _ in every_cell], out_dir, console, html=html,
                              baseline=baseline)


def _run_cell_apart(name: str, run_dir: Path) -> None:
    """`elad run` of the cell's saved config in a child process (it resumes the run like any rerun)."""
    returncode = wait_for(subprocess.Popen(elad_command("run", str(RunDir(run_dir).config_path), "--run-dir",
                                                        str(run_dir))))
    if returncode != 0:
        raise EladError(f"grid cell {name} failed ({ending(returncode)}); its output is above. What it finished is "
                        "kept: rerun the same command to resume it")


def grid_progress(out_dir: Path) -> list[dict]:
    """Where each cell of the grid at `out_dir` (its grid.yaml) stands, read without writing anything: dir,
    strategy, annotator, seed, state ("finished", "in round R" (running, or stopped there by a crash), "rounds
    done: R", "not started"), rounds finished, annotations and test accuracy at the last finished round, and
    the hours its own rounds took (not those of a seed set copied from another cell)."""
    import yaml

    listing = Path(out_dir) / "grid.yaml"
    if not listing.exists():
        raise EladError(f"{out_dir}: not a grid folder (no grid.yaml)")
    try:
        cells = (yaml.safe_load(listing.read_text(encoding="utf-8")) or {}).get("runs") or []
    except (yaml.YAMLError, AttributeError) as error:
        raise EladError(f"{listing}: not a grid listing (expected `runs:` with one entry per cell): {error}") from None
    return [{**{k: cell.get(k) for k in ("dir", "strategy", "annotator", "seed")},
             **_cell_progress(Path(out_dir) / str(cell.get("dir")))} for cell in cells]


def hours_left(cells: list[dict]) -> float | None:
    """A rough time to finish the grid: each unfinished cell as long as the finished ones took on average,
    less what it has run already; None until a cell has finished."""
    done = [c["hours"] for c in cells if c["state"] == "finished"]
    if not done:
        return None
    pace = sum(done) / len(done)
    return sum(max(pace - c["hours"], 0.0) for c in cells if c["state"] != "finished")


def _cell_progress(run_dir: Path) -> dict:
    from elad.report import round_summaries

    empty = {"state": "not started", "rounds": 0, "annotations": 0, "accuracy": None, "hours": 0.0}
    if not RunDir(run_dir).has_run():
        return empty
    try:
        store = RunDir(run_dir).open_store(readonly=True)
    except EladError as error:
        return {**empty, "state": f"unreadable: {error}"}
    try:
        rounds = store.rounds()
        done = [r["round"] for r in rounds if r["state"] == "done" and r["round"] > 0]
        running = [r["round"] for r in rounds if r["state"] != "done"]
        summaries = {row["round"]: row for row in round_summaries(store)}
        last = summaries.get(max(done)) if done else {}
        state = ("finished" if finished(store) else f"in round {running[0]}" if running
                 else f"rounds done: {len(done)}" if done else "round 0 done" if rounds else "not started")
        copied = 1 if store.get_meta("seed_set_from") else -1  # rounds 0..1 copied from another cell
        own_seconds = sum(float(row.get("seconds") or 0) for r, row in summaries.items() if r > copied)
        return {"state": state, "rounds": len(done), "annotations": int(last.get("annotations") or 0),
                "accuracy": last.get("accuracy"), "hours": own_seconds / 3600}
    finally:
        store.close()


def _adopt_seed_set(cell: ExperimentConfig, run_dir: Path, siblings: list[Path], console: Console) -> None:
    from elad.loop.seedset import adopt_seed_set, first_view_source, seed_set_source

    source = seed_set_source(cell, siblings)
    if source is not None:
        view = first_view_source(cell, siblings, source)
        adopt_seed_set(source, run_dir, cell, view_from=view)
        console.print(f"[dim]{run_dir.name}: rounds 0-1 (the seed set) copied from {source.name}"
                      + (f", round 2's explanations of the pool from {view.name}" if view else ""))


def run_grid_workers(
    config: ExperimentConfig, config_path: Path, overrides: list[str], strategies: Sequence[str],
    annotators: Sequence[str], seeds: int, out_dir: Path, workers: int, console: Console | None = None,
    baseline: str = BASELINE, results: bool = True, share_seed_set: bool = True, cell_process: bool = False,
) -> Path | None:
    """The grid as `workers` shards run at once, each `elad grid --shard i/workers` (the config at
    `config_path` with `overrides`, which `config` is) in its own process with its share of the CPU cores
    (`student.threads`, unless the config sets it) or its own GPU; then the results of the whole grid. A
    failed shard is named; what it finished stays done, and rerunning the same command resumes it.
    `results`, `share_seed_set` and `cell_process` as in run_grid (the last two passed to every shard)."""
    console = console or Console()
    cells = plan(config, strategies, annotators, seeds)  # a bad strategy or annotator fails here, once
    from elad.loop.preflight import preflight_cells

    preflight_cells([cell for _, cell in cells])
    workers = max(1, min(workers, len(cells)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    children = [subprocess.Popen(_shard_command(config_path, overrides, strategies, annotators, seeds, out_dir,
                                                (i, workers), config, share_seed_set, cell_process),
                                 env=_shard_env(i, workers))
                for i in range(1, workers + 1)]
    failed = [i for i, child in enumerate(children, start=1) if wait_for(child) != 0]
    if failed:
        raise EladError(f"grid shard(s) {', '.join(f'{i}/{workers}' for i in failed)} failed (their output is "
                        "above); rerun the same command to resume them")
    if not results:
        return None
    return write_grid_results([out_dir / name for name, _ in cells], out_dir, console, baseline=baseline)


def _shard_command(config_path, overrides, strategies, annotators, seeds, out_dir, shard, config,
                   share_seed_set: bool = True, cell_process: bool = False) -> list[str]:
    command = elad_command("grid", str(config_path), "--strategies", ",".join(strategies), "--annotators",
                           ",".join(annotators), "--seeds", str(seeds), "--out", str(out_dir), "--shard",
                           f"{shard[0]}/{shard[1]}", "--no-results")
    if not share_seed_set:
        command.append("--no-share-seed-set")
    command.append("--cell-process" if cell_process else "--one-process")
    for pair in overrides:
        command += ["--set", pair]
    if config.student.threads is None and not _gpus():
        command += ["--set", f"student.threads={max(1, (os.cpu_count() or 1) // shard[1])}"]
    return command


def _shard_env(index: int, workers: int) -> dict:
    """A shard's environment: with several GPUs, its own (round robin)."""
    env = dict(os.environ)
    gpus = _gpus()
    if gpus > 1:
        env["CUDA_VISIBLE_DEVICES"] = str((index - 1) % gpus)
    return env


def _gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def write_grid_results(run_dirs: Sequence[Path], out_dir: Path, console: Console | None = None,
                       html: bool = True, baseline: str = BASELINE) -> Path:
    """grid_results.csv and grid_results.md (and report/report.html) for these runs; returns the .md path."""
    runs = load_runs([p for p in run_dirs if RunDir(p).has_run()])
    if not runs:
        raise EladError(f"{out_dir}: no finished grid runs to tabulate")
    out_dir = Path(out_dir)
    write_atomic(out_dir / RESULTS_CSV, results_csv(results_rows(runs)))
    markdown = out_dir / RESULTS_MD
    write_atomic(markdown, results_markdown(runs, title=f"Grid results: {out_dir.name}", baseline=baseline))
    if html:
        from elad.report.html import write_html_report

        page = write_html_report([r.path for r in runs], out_dir / "report", title=f"elad grid: {out_dir.name}",
                                 baseline=baseline)
        if console:
            console.print(f"report: {page}")
    if console:
        console.print(f"results: {out_dir / RESULTS_CSV}, {markdown} ({len(runs)} runs, "
                      f"{len({r.group for r in runs})} groups, {_seed_summary(runs)})")
    return markdown


def _seed_summary(runs) -> str:
    per_group: dict = {}
    for run in runs:
        per_group.setdefault(run.group, set()).add(run.seed)
    low, high = min(map(len, per_group.values())), max(map(len, per_group.values()))
    return f"{low}-{high} seeds per group" if low != high else f"{low} seed{'s' if low != 1 else ''} per group"


def _grid_yaml(config: ExperimentConfig, cells: list[tuple[str, ExperimentConfig]]) -> str:
    import yaml

    return yaml.safe_dump({
        "base": config.model_dump(mode="json"),
        "runs": [{"dir": name, "strategy": strategy_label(c.selection), "annotator": c.annotation.method,
                  "seed": c.seed} for name, c in cells],
    }, sort_keys=False)
