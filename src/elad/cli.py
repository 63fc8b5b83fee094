"""The `elad` command line."""

import os
import sys
from importlib import resources
from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from elad.errors import EladError

app = typer.Typer(
    help="Active distillation of LLM reasoning into small students.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
DEBUG = {"on": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-paragraph errors.")):
    DEBUG["on"] = debug


def _fail(error: Exception) -> None:
    if DEBUG["on"]:
        raise error
    console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _quiet_libraries() -> None:
    """Keep transformers' and torch's chatter out of a run's output (progress comes from elad)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    import transformers

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    _show_elad_notices()


def _show_elad_notices() -> None:
    """elad's own log lines (a teacher batch's status while a round waits for it) as plain lines."""
    import logging

    logger = logging.getLogger("elad")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        if "=" not in pair:
            raise EladError(f"--set '{pair}': expected KEY=VALUE, e.g. --set loop.rounds=2")
        key, value = pair.split("=", 1)
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _run(config_path: Path, run_dir: Path | None, overrides: list[str]) -> None:
    from elad.config import load_config

    config = load_config(config_path, _parse_overrides(overrides))
    run_dir = run_dir or Path("runs") / config.name
    _quiet_libraries()
    from elad.loop import Experiment
    from elad.loop.preflight import preflight

    try:
        # Bad input stops here, before the run directory, its store or the student exist: no stub is left.
        preflight(config)
        # Opening the run directory refuses a damaged store or another config's run, writing nothing.
        experiment = Experiment(config, run_dir, console)
        console.print(f"[bold]elad[/] {config.name}: task {config.task.name}, student {config.student.model}, "
                      f"strategy {config.selection.strategy}, annotator {config.annotation.method} -> {run_dir}")
        experiment.run()
    except KeyboardInterrupt:
        # Everything bought so far is in the run's store and teacher cache: the same command resumes.
        console.print(f"interrupted. Rerun the same command to resume {run_dir} where it stopped.")
        raise typer.Exit(130) from None
    console.print(f"done. metrics: {run_dir / 'report' / 'metrics.csv'}, plot: {run_dir / 'report' / 'accuracy_vs_tokens.png'}")


@app.command()
def run(
    config: Path = typer.Argument(..., help="Experiment config (YAML)."),
    run_dir: Path = typer.Option(None, "--run-dir", "-o", help="Run directory; default runs/<config name>."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set loop.rounds=2."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the teacher cost per round (worst case and "
                                 "expected) and where the budget stops the run; load no model, call no teacher."),
):
    """Run an experiment's rounds: select -> annotate -> train -> evaluate. Reruns resume; a rerun with
    more loop.rounds or a bigger loop.budget goes on from where the run stopped."""
    try:
        if dry_run:
            _dry_run(config, set_)
        else:
            _run(config, run_dir, set_)
    except EladError as error:
        _fail(error)


def _dry_run(config_path: Path, overrides: list[str]) -> None:
    from elad.config import load_config
    from elad.loop.plan import plan_run
    from elad.students.models import open_tokenizer

    config = load_config(config_path, _parse_overrides(overrides))
    _quiet_libraries()
    tokenizer = open_tokenizer(config.student.model)
    plan = plan_run(config, lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    console.print(_plan_table(config, plan))
    for line in _plan_notes(config, plan):
        console.print(line)


def _plan_table(config, plan) -> Table:
    table = Table(title=f"{config.name}: teacher cost per round ({config.teacher.backend} / {config.teacher.model}, "
                        f"{config.annotation.method}; pool {plan.pool}, test {plan.test})")
    for column in ("round", "items", "calls (max)", "tokens, worst case", "tokens, expected", "$ worst case",
                   "$ expected"):
        table.add_column(column, justify="right")
    for r in plan.rounds:
        table.add_row(str(r.round), str(r.items), str(r.calls), f"{r.worst_tokens:,}", f"{r.expected_tokens:,}",
                      f"{r.worst_dollars:.4f}", f"{r.expected_dollars:.4f}")
    table.add_row("all", str(sum(r.items for r in plan.rounds)), str(plan.calls), f"{plan.worst_tokens:,}",
                  f"{sum(r.expected_tokens for r in plan.rounds):,}", f"{plan.worst_dollars:.4f}",
                  f"{sum(r.expected_dollars for r in plan.rounds):.4f}")
    return table


def _plan_notes(config, plan) -> list[str]:
    budget = config.loop.budget
    limits = ", ".join(f"{v:,} {k}" if k != "dollars" else f"${v:g}" for k, v in
                       (("calls", budget.calls), ("tokens", budget.tokens), ("dollars", budget.dollars)) if v)
    notes = [f"expected reply lengths from {plan.expected_from}; worst case: every call an item may need, "
             "at max_tokens, with the ledger's prompt margin (failed attempts cost more but never pass the budget)"]
    worst, expected = plan.budget_cut.get("worst"), plan.budget_cut.get("expected")
    if not limits and worst is None:
        notes.append("no budget set (loop.budget): nothing stops the spending but the rounds")
    elif worst is None:
        notes.append(f"the budget ({limits or 'per round only'}) covers every round, even at the worst case")
    else:
        notes.append(f"the budget ({limits}) stops the run in round {worst[0]} after {worst[1]} items at the "
                     f"worst case" + (f", in round {expected[0]} after {expected[1]} items at the expected cost"
                                      if expected else "; at the expected cost it covers every round"))
    return notes


@app.command()
def demo(
    student: str = typer.Option("qwen2.5-coder-0.5b", help="Student: qwen2.5-coder-0.5b or smollm2-135m (faster)."),
    run_dir: Path = typer.Option(Path("runs/demo"), "--run-dir", "-o", help="Where the run is written."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set loop.rounds=2."),
):
    """The offline demo: e-SNLI, recorded PaLM-540B rationales, random selection, a few rounds on CPU."""
    config_path = Path(str(resources.files("elad") / "configs" / "demo.yaml"))
    try:
        _run(config_path, run_dir, [f"student.model={student}", *set_])
    except EladError as error:
        _fail(error)


@app.command()
def status(run_dir: Path = typer.Argument(..., help="A run directory written by `elad run`, or a grid's folder "
                                                  "(`elad grid -o`).")):
    """Print the rounds of a run: spend, accuracy and why it stopped; for a grid's folder, where each cell
    stands."""
    try:
        if (run_dir / "grid.yaml").exists() and not (run_dir / "run.db").exists():
            _grid_status(run_dir)
            return
        _status(run_dir)
    except EladError as error:
        _fail(error)


def _open_run(run_dir: Path):
    from elad.store import RunDir

    return RunDir(run_dir).open_store(readonly=True)  # looking changes nothing


def _status(run_dir: Path) -> None:
    from elad.report import round_summaries

    store = _open_run(run_dir)
    states = {r["round"]: r["state"] for r in store.rounds()}
    table = Table(title=f"{run_dir}")
    for column in ("round", "state", "annotations", "teacher calls", "teacher tokens", "dollars", "accuracy"):
        table.add_column(column, justify="left" if column == "state" else "right")
    table.add_column("stop", overflow="fold", min_width=16)
    rows = round_summaries(store)
    for row in rows:
        accuracy = row.get("accuracy")
        table.add_row(
            str(row["round"]), states.get(row["round"], "?"), str(int(row["annotations"])),
            str(int(row["teacher_calls"])), f"{int(row['teacher_tokens']):,}", f"{row['teacher_dollars']:.4f}",
            f"{accuracy:.1%}" if accuracy is not None else "-", row.get("stop_reason") or "",
        )
    console.print(table)
    console.print(_stage_table(rows))


def _grid_status(folder: Path) -> None:
    from elad.loop.grid import grid_progress, hours_left

    cells = grid_progress(folder)
    table = Table(title=f"{folder}")
    for column in ("cell", "seed", "state", "rounds", "annotations", "accuracy", "hours"):
        table.add_column(column, justify="left" if column in ("cell", "state") else "right",
                         overflow="fold" if column == "cell" else "ellipsis")
    for cell in cells:
        accuracy = cell["accuracy"]
        table.add_row(str(cell["dir"]), str(cell["seed"]), cell["state"], str(cell["rounds"]), str(cell["annotations"]),
                      f"{accuracy:.1%}" if accuracy is not None else "-", f"{cell['hours']:.1f}")
    console.print(table)
    finished = sum(cell["state"] == "finished" for cell in cells)
    hours = sum(cell["hours"] for cell in cells)
    console.print(f"{finished} of {len(cells)} cells finished; their rounds took {hours:.1f} h so far")
    left = hours_left(cells)
    if left is not None and finished < len(cells):
        console.print(f"about {left:.1f} h left, at the pace of the finished cells")


def _stage_table(rows: list[dict]) -> Table:
    """Where each round's time went: seconds per stage ("-" for a stage the round did not run); the
    selection's costly parts (the pool's explanations, their forced answers, the answer after each step) beside it;
    where one pass computed the answers after each step and the forced answers, its time is under score."""
    from elad.report.tables import SELECT_PARTS, STAGES

    columns = [STAGES[0], *(f"· {part}" for part in SELECT_PARTS), *STAGES[1:]]
    names = [STAGES[0], *SELECT_PARTS, *STAGES[1:]]
    table = Table(title="seconds per stage")
    table.add_column("round", justify="right")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        times = [row.get(f"seconds_{name}") for name in names]
        table.add_row(str(row["round"]), *("-" if t is None else f"{t:.0f}" for t in times))
    return table


@app.command()
def why(
    run_dir: Path = typer.Argument(..., help="A run directory written by `elad run`."),
    round_: int = typer.Option(1, "--round", "-r", help="The round whose selection to explain."),
    top: int = typer.Option(10, help="How many of the chosen items to show, best first."),
):
    """Why a round's questions went to the teacher.

    For the chosen items: the student's steps, its answer after each step, the sampled answers and the scores."""
    try:
        from elad.report.why import why as explain_selection

        if top < 1:
            raise EladError(f"--top: how many chosen items to show, 1 or more, not {top}")
        console.print(explain_selection(_open_run(run_dir), round_, top))
    except EladError as error:
        _fail(error)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory written by `elad run`."),
    round_: str = typer.Option(..., "--round", "-r", help="The round whose student to export (0 = untrained), or "
                               "'best': the best on the validation split (task.validation_size)."),
    out: Path = typer.Option(..., "--out", help="Where to write the model directory (must not exist or be empty)."),
    adapter_only: bool = typer.Option(False, "--adapter-only", help="Write the LoRA adapter alone (peft), not "
                                      "the merged model."),
    gguf: bool = typer.Option(False, "--gguf", help="Also write GGUF files for llama.cpp (f16 and --gguf-quant) "
                              "and an Ollama Modelfile."),
    gguf_quant: str = typer.Option("q8_0", "--gguf-quant", help="The quantized GGUF beside the f16 one: q8_0, "
                                   "q4_k_m, or none."),
    push: str = typer.Option(None, "--push-to-hub", help="Upload the folder to this Hub repository (private; "
                             "the token from HF_TOKEN or `hf auth login`)."),
):
    """Write a round's student as a standalone Hugging Face model.

    The LoRA adapter is merged (or written alone with --adapter-only); the tokenizer and a model card (base
    model, task, teacher, spend, accuracy with its 95% interval) go beside it."""
    try:
        _quiet_libraries()
        from elad.export import best_round, export_round, push_to_hub

        if round_ == "best":
            chosen = best_round(run_dir)
            console.print(f"round {chosen} is the best on the validation split")
        elif round_.isdigit():
            chosen = int(round_)
        else:
            raise EladError(f"--round: a round number or 'best', not {round_!r}")
        written = export_round(run_dir, chosen, out, adapter_only=adapter_only, gguf=gguf, gguf_quant=gguf_quant)
        console.print(f"exported round {chosen} of {run_dir} to {written}")
        if push:
            console.print(f"pushed to {push_to_hub(written, push, 'model')}")
    except EladError as error:
        _fail(error)


@app.command("export-data")
def export_data(
    run_dir: Path = typer.Argument(..., help="A run directory written by `elad run`."),
    out: Path = typer.Option(..., "--out", help="Where to write the dataset folder (must not exist or be empty)."),
    parquet: bool = typer.Option(False, "--parquet", help="Write each table as .parquet too (needs pyarrow)."),
    push: str = typer.Option(None, "--push-to-hub", help="Upload the folder to this Hub dataset repository "
                             "(private; the token from HF_TOKEN or `hf auth login`)."),
):
    """Write what the run bought as a dataset: every annotation with its question, rationale, answer, gold,
    teacher, cost, round, selection score and method; plus chat `messages` and `prompt`/`completion` tables
    for SFT. `datasets.load_dataset(OUT)` opens it."""
    try:
        from elad.export import export_data as write_data, push_to_hub

        written, rows = write_data(run_dir, out, parquet=parquet)
        console.print(f"exported {rows} annotations of {run_dir} to {written}")
        if push:
            console.print(f"pushed to {push_to_hub(written, push, 'dataset')}")
    except EladError as error:
        _fail(error)


@app.command()
def grid(
    config: Path = typer.Argument(..., help="Experiment config (YAML) every cell starts from."),
    strategies: str = typer.Option("random,entropy,egss", help="Comma-separated selection strategies; "
                                    "name+acquisition[:beta] (e.g. egss+softrank) draws that strategy's batch "
                                    "stochastically instead of taking its top scores."),
    annotators: str = typer.Option("cot", help="Comma-separated annotators: cot, clear (clear needs a live "
                                   "teacher, not replay)."),
    seeds: int = typer.Option(3, help="Seeds per cell: config.seed, config.seed + 1, ..."),
    out: Path = typer.Option(None, "--out", "-o", help="Grid folder; default runs/<config name>-grid."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set loop.rounds=2."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Run this many cells at once, each in its own "
                                "process with its share of the CPU cores (or its own GPU)."),
    shard: str = typer.Option(None, "--shard", help="Run only shard I of N (e.g. 2/4): every N-th cell from the "
                              "I-th, for array jobs on a cluster; `elad report` merges the shards' folders."),
    results: bool = typer.Option(True, "--results/--no-results", help="Write grid_results and the HTML report "
                                 "when done (over the cells finished so far)."),
    baseline: str = typer.Option("random", help="The strategy every other one is compared with, paired by seed "
                                 "(AULC difference and its 95% interval)."),
    share_seed_set: bool = typer.Option(True, "--share-seed-set/--no-share-seed-set", help="With "
                                        "loop.initial_random: compute rounds 0-1 (the seed set), and round 2's "
                                        "explanations of the pool, once per seed and copy them into the seed's "
                                        "other cells."),
    cell_process: bool = typer.Option(True, "--cell-process/--one-process", help="Run each cell in a process "
                                      "of its own, which hands all its memory back when the cell ends (a long "
                                      "grid in one process keeps growing); --one-process saves each cell's "
                                      "few seconds of start-up."),
):
    """Run the ablation grid: every strategy x annotator x seed.

    Same pool and budget for all, one resumable run directory each, then grid_results.csv/.md and an HTML report."""
    try:
        from elad.config import load_config

        experiment = load_config(config, _parse_overrides(set_))
        _quiet_libraries()
        from elad.loop.grid import parse_shard, run_grid, run_grid_workers

        out = out or Path("runs") / f"{experiment.name}-grid"
        if workers > 1:
            if shard:
                raise EladError("--workers and --shard: give one (each worker runs a shard)")
            table = run_grid_workers(experiment, config, set_, _names(strategies), _names(annotators), seeds, out,
                                     workers, console, baseline=baseline, results=results,
                                     share_seed_set=share_seed_set, cell_process=cell_process)
        else:
            table = run_grid(experiment, _names(strategies), _names(annotators), seeds, out, console,
                             shard=parse_shard(shard) if shard else None, results=results, baseline=baseline,
                             share_seed_set=share_seed_set, cell_process=cell_process)
        if table is not None:
            console.print(f"results: {table}  report: {out / 'report' / 'report.html'}")
    except KeyboardInterrupt:
        # Every cell keeps what it bought (its store and teacher cache): the same command resumes the grid.
        console.print(f"interrupted. Rerun the same command to resume the grid{f' in {out}' if out else ''}.")
        raise typer.Exit(130) from None
    except EladError as error:
        _fail(error)


@app.command()
def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories, or grid folders holding runs."),
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Where report.html and its PNGs go."),
    baseline: str = typer.Option("random", help="The strategy every other one is compared with, paired by seed "
                                 "(AULC difference and its 95% interval)."),
):
    """Write a self-contained HTML report of runs or grids.

    Accuracy against teacher cost per strategy and annotator (95% intervals over seeds, chance line), the
    area under that curve with paired differences from the baseline, the strategy x annotator table,
    per-round details and selected items. Runs whose setting differs (student, teacher, sizes) are kept apart."""
    try:
        from elad.report.html import write_html_report

        console.print(f"report: {write_html_report(run_dirs, out, baseline=baseline)}")
    except EladError as error:
        _fail(error)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


data_app = typer.Typer(help="Look at a task's data before running on it.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect(
    task: str = typer.Argument(..., help="Task name: esnli, anli, gsm8k, aqua, commonsenseqa, strategyqa, svamp, custom."),
    path: Path = typer.Option(None, "--path", help="Dataset folder or file; empty = the task's packaged sample."),
    split: list[str] = typer.Option([], "--split", help="Splits to show (repeatable); default: the task's own."),
    option: list[str] = typer.Option([], "--option", help="A task option KEY=VALUE (repeatable), as task.options."),
    examples: int = typer.Option(3, help="Formatted examples to print."),
):
    """Counts, label balance and a few formatted examples of a task's data."""
    try:
        from elad.tasks.inspect import inspect_task

        options = _parse_overrides(option)
        console.print(inspect_task(task, str(path) if path else None, options, split or None, examples))
    except EladError as error:
        _fail(error)


def entry() -> None:  # pragma: no cover - console script shim
    sys.exit(app())
