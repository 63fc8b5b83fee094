"""Comparing runs: read several run directories, group them by task, strategy and annotator, and
aggregate over seeds (mean, sample standard deviation and 95% t-interval) at each round and at equal
teacher budgets; runs of one task whose settings differ are kept apart (keep_apart).

Used by the grid's results table (grid_results.csv / .md) and by the HTML report. Reads each run's
store (run.db) and the labels of its config.yaml (`RunDir.labels`); knows nothing else in elad.

Definitions (the same everywhere in the reports):
- cost: teacher tokens (prompt + completion, cache hits excluded) or, where any run paid dollars, dollars.
- a run's accuracy at budget B: the test accuracy of its last evaluated round whose cumulative cost is
  <= B (the student you would hold had you stopped spending at B), where a cost up to COST_TOLERANCE
  above B counts as within it: runs that bought the same annotations spend a few percent more or less
  with their rationales' lengths, and without the tolerance the ones above a mean budget point would
  count with an earlier round's student. A run that stopped early keeps its last accuracy at every
  larger budget. Below its first evaluated round it has none.
- budget points of a task: for each round r, the mean over the task's runs (those that reached r) of the
  cost spent by the end of round r. Round 0 (no teacher call yet) is budget 0.
- equal budget of a task: the smallest final cost over its runs, so that every run has a round at or
  under it: the fair "same spend" comparison for the paper-style table.
- std: the sample standard deviation (n - 1); ci95: the half-width of the mean's 95% t-interval (t with
  n - 1 degrees of freedom times std / sqrt(n)); both None with a single seed.
"""

import csv
import io
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from elad.errors import EladError
from elad.report.tables import round_summaries
from elad.selection import reads_gold
from elad.stats import area_under_curve, mean_interval, seeds_for_half_width
from elad.store import RunDir

COSTS = {"teacher_tokens": "tokens", "teacher_dollars": "dollars"}


@dataclass
class RunResult:
    """One run directory, read back: what it was (its `RunDir.labels`) and its rounds (from run.db)."""

    path: Path
    task: str
    strategy: str
    annotator: str
    seed: int
    name: str
    rows: list[dict]  # round_summaries: one dict per round
    training: dict[int, dict] = field(default_factory=dict)
    states: dict[int, str] = field(default_factory=dict)
    setting: tuple[tuple[str, str], ...] = ()  # RunLabels.setting: what else must match for runs to compare
    apart: str | None = None  # set by keep_apart: how this run's setting differs from its task's other runs

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def group(self) -> tuple[str, str, str]:
        return self.task, self.strategy, self.annotator

    @property
    def evaluated(self) -> list[dict]:
        return [r for r in self.rows if r.get("accuracy") is not None]

    @property
    def final(self) -> dict | None:
        evaluated = self.evaluated
        return evaluated[-1] if evaluated else None

    @property
    def chance(self) -> float | None:
        """The test set's accuracy by uniform guessing among each question's candidates (None: open answers)."""
        return next((r["chance"] for r in reversed(self.rows) if r.get("chance") is not None), None)

    @property
    def teacher_agrees(self) -> float | None:
        """The share of the run's annotations whose answer agrees with gold, over all its rounds."""
        return next((r["teacher_agrees"] for r in reversed(self.rows) if r.get("teacher_agrees") is not None), None)

    @property
    def stop_reason(self) -> str | None:
        reasons = [r.get("stop_reason") for r in self.rows if r.get("stop_reason")]
        return reasons[-1] if reasons else None


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories among `paths`: a path holding run.db is a run; any other directory contributes the
    runs directly inside it (a grid's output folder). Order kept; duplicates dropped."""
    found: list[Path] = []
    for path in map(Path, paths):
        if RunDir(path).has_run():
            candidates = [path]
        elif path.is_dir():
            candidates = sorted((p for p in path.iterdir() if RunDir(p).has_run()), key=_grid_order(path))
            if not candidates:
                raise EladError(f"{path}: no run here (no run.db in it or in its sub-folders)")
        else:
            raise EladError(f"{path}: no such run directory")
        for candidate in candidates:
            if candidate.resolve() not in {f.resolve() for f in found}:
                found.append(candidate)
    return found


def _grid_order(folder: Path):
    """Sort key for the runs of a folder: the order of its grid.yaml (strategies as given, then annotators,
    then seeds) where there is one, then by name."""
    order: dict[str, int] = {}
    grid = folder / "grid.yaml"
    if grid.exists():
        try:
            listed = (yaml.safe_load(grid.read_text(encoding="utf-8")) or {}).get("runs") or []
            order = {str(item.get("dir")): i for i, item in enumerate(listed) if isinstance(item, dict)}
        except yaml.YAMLError:
            order = {}
    return lambda path: (order.get(path.name, len(order)), path.name)


def load_run(path: str | Path) -> RunResult:
    path = Path(path)
    run_dir = RunDir(path)
    if not run_dir.has_run():
        raise EladError(f"{path}: no run here (run.db not found)")
    labels = run_dir.labels()
    store = run_dir.open_store(readonly=True)
    try:
        rows = round_summaries(store)
        training = {t["round"]: t for t in store.training()}
        states = {r["round"]: r["state"] for r in store.rounds()}
        name = labels.name or store.get_meta("name") or path.name
        strategy = labels.strategy or store.most_common_strategy()
        annotator = labels.annotator or store.annotator()
    finally:
        store.close()
    return RunResult(
        path=path, task=labels.task or "?", strategy=strategy or "?", annotator=annotator or "?",
        seed=labels.seed, name=str(name), rows=rows, training=training, states=states, setting=labels.setting,
    )


def load_runs(paths: Iterable[str | Path]) -> list[RunResult]:
    return keep_apart([load_run(p) for p in find_runs(paths)])


def keep_apart(runs: list[RunResult]) -> list[RunResult]:
    """Runs of one task that differ in their setting (student, teacher, sizes, objective: SETTING_KEYS) are
    different experiments: each such run's task is renamed with what sets it apart ("esnli [student.model=
    x]"), so that no table or interval mixes them, and `apart` says why."""
    for task in tasks_of(runs):
        members = [run for run in runs if run.task == task]
        settings = [dict(run.setting) for run in members]
        differing = sorted({key for s in settings for key in s if len({x.get(key) for x in settings}) > 1})
        if not differing:
            continue
        for run, setting in zip(members, settings):
            run.apart = ", ".join(f"{key}={setting.get(key, '–')}" for key in differing)
            run.task = f"{task} [{run.apart}]"
    return keep_repeats_apart(runs)


def keep_repeats_apart(runs: list[RunResult]) -> list[RunResult]:
    """A second run of the same task, strategy, annotator and seed (a rerun, or a copy of a run in
    another folder) is not another seed: counted as one it would narrow the intervals and pair twice. The
    first in path order stays; each repeat's task is renamed ("svamp [repeat 2 of seed 0]")."""
    seen: dict[tuple, int] = {}
    for run in runs:
        key = (*run.group, run.seed)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            repeat = f"repeat {seen[key]} of seed {run.seed}"
            run.apart = f"{run.apart}, {repeat}" if run.apart else repeat
            run.task = f"{run.task} [{repeat}]"
    return runs


# --- statistics ------------------------------------------------------------------------------------

def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def cost_key(runs: list[RunResult]) -> str:
    """teacher_dollars where any run paid dollars, else teacher_tokens."""
    paid = any((r.get("teacher_dollars") or 0) > 0 for run in runs for r in run.rows)
    return "teacher_dollars" if paid else "teacher_tokens"


def task_costs(runs: list[RunResult]) -> dict[str, str]:
    """task -> the cost its runs are measured in (cost_key of that task's runs): a task whose teacher was
    free (local, replayed) is measured in tokens even where another task's teacher was paid in dollars."""
    return {task: cost_key([run for run in runs if run.task == task]) for task in tasks_of(runs)}


def units_text(costs: dict[str, str]) -> str:
    """"tokens", "dollars", or which tasks are in which where they differ."""
    units = {COSTS[cost] for cost in costs.values()}
    if len(units) == 1:
        return units.pop()
    return "; ".join(f"{task}: {COSTS[cost]}" for task, cost in costs.items())


# Relative slack of a budget (see the module docstring): larger than the spread of spend between runs that
# bought the same annotations (about 3% on e-SNLI with the PaLM rationales), smaller than a strategy or
# annotator that really spends more (CLEAR: 2x CoT).
COST_TOLERANCE = 0.05


def accuracy_at(run: RunResult, budget: float, cost: str = "teacher_tokens") -> float | None:
    """The accuracy of the run's last evaluated round whose cumulative cost is within budget (up to
    COST_TOLERANCE above it)."""
    best = None
    for row in run.evaluated:
        if (row.get(cost) or 0) <= budget * (1 + COST_TOLERANCE) + 1e-9:
            best = row["accuracy"]
        else:
            break
    return best


def by_group(runs: list[RunResult]) -> dict[tuple[str, str, str], list[RunResult]]:
    """(task, strategy, annotator) -> its runs (seeds), in a stable order: tasks, then strategies and
    annotators in the order they first appear."""
    groups: dict[tuple[str, str, str], list[RunResult]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    for members in groups.values():
        members.sort(key=lambda r: (r.seed, r.label))
    return groups


def evaluated(runs: list[RunResult]) -> list[RunResult]:
    """The runs with at least one evaluated round: the only ones a comparison can use."""
    return [run for run in runs if run.evaluated]


def tasks_of(runs: list[RunResult]) -> list[str]:
    return list(dict.fromkeys(run.task for run in runs))


def budget_points(runs: list[RunResult], cost: str) -> list[float]:
    """For each round, the mean cost spent by its end over the runs that reached it (sorted, distinct)."""
    per_round: dict[int, list[float]] = {}
    for run in runs:
        for row in run.evaluated:
            per_round.setdefault(int(row["round"]), []).append(float(row.get(cost) or 0))
    points = sorted({round(statistics.fmean(v), 6) for v in per_round.values()})
    return points


def equal_budget(runs: list[RunResult], cost: str) -> float | None:
    """The smallest final cost over the runs with a learning curve (two evaluated rounds or more): every
    such run has an evaluated round at or under it. A run with one evaluated round would set it at that
    round's cost, often 0, and leave no curve to compare."""
    finals = [float(run.final.get(cost) or 0) for run in runs if len(run.evaluated) > 1]
    return min(finals) if finals else None


@dataclass
class Cell:
    """Accuracy of one group at one round or budget, over its seeds."""

    n: int
    mean: float | None
    std: float | None
    cost_mean: float | None = None
    cost_std: float | None = None
    annotations: float | None = None
    values: list[float] = field(default_factory=list)  # each seed's accuracy
    costs: list[float] = field(default_factory=list)  # each seed's cost, in the order of values

    @property
    def ci95(self) -> float | None:
        """The half-width of the 95% t-interval of the mean accuracy over seeds (None with one seed)."""
        return mean_interval(self.values)[1]


def round_cells(members: list[RunResult], cost: str) -> dict[int, Cell]:
    """round -> the group's accuracy there (over the seeds that evaluated that round) and its cost."""
    per_round: dict[int, list[dict]] = {}
    for run in members:
        for row in run.evaluated:
            per_round.setdefault(int(row["round"]), []).append(row)
    cells = {}
    for round_, rows in sorted(per_round.items()):
        accuracy = [r["accuracy"] for r in rows]
        costs = [float(r.get(cost) or 0) for r in rows]
        mean, std = mean_std(accuracy)
        cost_mean, cost_std = mean_std(costs)
        annotations, _ = mean_std([float(r.get("annotations") or 0) for r in rows])
        cells[round_] = Cell(len(rows), mean, std, cost_mean, cost_std, annotations, accuracy, costs)
    return cells


def budget_cell(members: list[RunResult], budget: float, cost: str) -> Cell:
    values = [v for v in (accuracy_at(run, budget, cost) for run in members) if v is not None]
    mean, std = mean_std(values)
    return Cell(len(values), mean, std, budget, None, None, values)


def final_cell(members: list[RunResult], cost: str) -> Cell:
    finals = [run.final for run in members if run.final]
    mean, std = mean_std([f["accuracy"] for f in finals])
    cost_mean, cost_std = mean_std([float(f.get(cost) or 0) for f in finals])
    return Cell(len(finals), mean, std, cost_mean, cost_std, None, [f["accuracy"] for f in finals])


# --- area under the accuracy-vs-cost curve, paired against a baseline ------------------------------

BASELINE = "random"

# The paired AULC interval a grid should reach to tell strategies apart: 3 points is about the gain one
# round of annotations buys a small student, so a narrower effect would not change what a user buys.
TARGET_HALF_WIDTH = 0.03


def run_aulc(run: RunResult, budget: float, cost: str) -> float | None:
    """The run's learning curve (evaluated rounds, round 0 at cost 0 when evaluated) averaged over spend
    up to `budget` (stats.area_under_curve)."""
    return area_under_curve([(float(r.get(cost) or 0), r["accuracy"]) for r in run.evaluated], budget)


def aulc_rows(runs: list[RunResult], baseline: str = BASELINE, target: float = TARGET_HALF_WIDTH) -> list[dict]:
    """Per task x strategy x annotator: the AULC up to the task's equal budget, mean and 95% t-interval
    over seeds, and the paired difference from `baseline` (same task, annotator and seed), with its interval
    and how many paired seeds would narrow that interval to +-`target` at the spread seen so far."""
    runs = evaluated(runs)
    costs = task_costs(runs)
    groups = by_group(runs)
    out = []
    for task in tasks_of(runs):
        cost = costs[task]
        budget = equal_budget([r for r in runs if r.task == task], cost)
        if not budget:
            continue
        for (group_task, strategy, annotator), members in groups.items():
            if group_task != task:
                continue
            values = {run.seed: run_aulc(run, budget, cost) for run in members}
            reference = {run.seed: run_aulc(run, budget, cost) for run in groups.get((task, baseline, annotator), [])}
            mean, half = mean_interval([v for v in values.values() if v is not None])
            by_seed = {s: v - reference[s] for s, v in values.items() if v is not None and reference.get(s) is not None}
            diffs = list(by_seed.values())
            diff, diff_half = mean_interval(diffs) if strategy != baseline else (None, None)
            out.append({"task": task, "strategy": strategy, "annotator": annotator, "budget": budget,
                        "cost_unit": COSTS[cost], "seeds": sum(v is not None for v in values.values()),
                        "aulc_mean": mean, "aulc_ci95": half, "baseline": baseline, "paired_diff_mean": diff,
                        "paired_diff_ci95": diff_half, "pairs": len(diffs) if strategy != baseline else 0,
                        "paired_diffs": by_seed if strategy != baseline else {},
                        "target_half_width": target,
                        "seeds_for_target": seeds_for_half_width(diffs, target) if strategy != baseline else None,
                        "teacher_agrees": mean_agreement(members)})
    return out


def aulc_markdown(rows: list[dict], task: str) -> list[str]:
    mine = [r for r in rows if r["task"] == task]
    if not mine:
        return []
    unit, budget, baseline = mine[0]["cost_unit"], mine[0]["budget"], mine[0]["baseline"]
    target = f"{100 * mine[0]['target_half_width']:g}"
    lines = ["", f"### Area under the accuracy-vs-cost curve, up to {format_cost(budget, 'teacher_' + unit)} "
             f"{unit}", "",
             f"The learning curve's mean accuracy over that spend (trapezoids between rounds; round 0 at 0 "
             f"{unit} where evaluated), mean and 95% t-interval over seeds; paired: minus `{baseline}` with the "
             f"same annotator and seed. An interval that includes zero shows no difference. Seeds for ±{target}: "
             "how many paired seeds would narrow it to that at the spread seen so far.", "",
             f"| strategy | annotator | seeds | AULC % (95% CI) | minus {baseline}, paired (95% CI) | seeds for "
             f"±{target} | teacher = gold % |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in mine:
        paired = "–" if r["paired_diff_mean"] is None else (
            _pm(r["paired_diff_mean"], r["paired_diff_ci95"]) + f" (n={r['pairs']})"
            + (" includes 0" if r["paired_diff_ci95"] is not None and abs(r["paired_diff_mean"]) <= r["paired_diff_ci95"]
               else ""))
        agrees = "–" if r["teacher_agrees"] is None else f"{100 * r['teacher_agrees']:.1f}"
        needed = "–" if r["seeds_for_target"] is None else r["seeds_for_target"]
        lines.append(f"| {_md_escape(r['strategy'])} | {_md_escape(r['annotator'])} | {r['seeds']} | "
                     f"{_pm(r['aulc_mean'], r['aulc_ci95'])} | {paired} | {needed} | {agrees} |")
    return lines


def _pm(mean: float | None, half: float | None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:+.1f}".lstrip("+") if half is None else f"{100 * mean:.1f} ± {100 * half:.1f}"


# --- how well each strategy's score found the student's errors -------------------------------------

def auroc_rows(runs: list[RunResult]) -> list[dict]:
    """Per task x strategy x annotator x score part ("score", then its parts: intra, inter, ...) x round:
    the mean over seeds of the AUROC of that part against "the student answers wrongly" on the round's
    scored pool items (stored by the loop where gold is known; elad.selection.errors_auroc), with the
    number of seeds and the mean count of scored items and of wrong ones. Parts that tell nothing new are
    left out: a constant one (0.5 in every seed and round) and one equal to a part already listed (a
    rescaled copy, the score itself). Groups with no stored AUROC are left out."""
    out = []
    for (task, strategy, annotator), members in by_group(runs).items():
        series: dict[str, dict[tuple[int, int], float]] = {}  # part -> (round, seed) -> AUROC
        counts: dict[int, list[tuple[float, float]]] = {}
        for run in members:
            for row in run.rows:
                round_ = int(row["round"])
                for name, value in row.items():
                    if name.startswith("auroc_") and value is not None:
                        series.setdefault(name.removeprefix("auroc_"), {})[round_, run.seed] = float(value)
                if row.get("errors_known") is not None:
                    counts.setdefault(round_, []).append((row["errors_known"], row.get("errors_wrong") or 0))
        for part, values in _telling_parts(series).items():
            for round_ in sorted({r for r, _ in values}):
                in_round = [v for (r, _), v in values.items() if r == round_]
                known = counts.get(round_, [])
                out.append({"task": task, "strategy": strategy, "annotator": annotator, "part": part,
                            "round": round_, "seeds": len(in_round), "auroc_mean": statistics.fmean(in_round),
                            "items_mean": statistics.fmean(k for k, _ in known) if known else None,
                            "wrong_mean": statistics.fmean(w for _, w in known) if known else None})
    return out


def _telling_parts(series: dict[str, dict]) -> dict[str, dict]:
    """"score" first, then the parts by name, without constant parts and copies of one already kept."""
    kept: dict[str, dict] = {}
    for part in sorted(series, key=lambda name: (name != "score", name)):
        values = series[part]
        constant = all(abs(v - 0.5) < 1e-12 for v in values.values())
        copy = any(values.keys() == other.keys() and all(abs(values[k] - other[k]) < 1e-9 for k in values)
                   for other in kept.values())
        if part == "score" or not (constant or copy):
            kept[part] = values
    return kept


def auroc_table(rows: list[dict], task: str) -> tuple[list[int], dict[tuple[str, str, str], dict[int, dict]]]:
    """The task's auroc_rows as (rounds, (strategy, annotator, part) -> round -> row), for the tables."""
    return _by_round(rows, task, lambda r: (r["strategy"], r["annotator"], r["part"]))


AUROC_NOTE = ("AUROC of each strategy's score (and of its parts) against the student's errors on the pool "
              "items it scored that round, mean over seeds: 0.5 finds nothing, 1.0 ranks every wrong item "
              "first. A score that finds the errors need not buy the items that teach most.")


def auroc_markdown(rows: list[dict], task: str) -> list[str]:
    return _rounds_markdown("How well each score found the student's errors", AUROC_NOTE,
                            ("strategy", "annotator", "part"), *auroc_table(rows, task), auroc_text)


# --- what the teacher got right of what each strategy bought --------------------------------------

PURCHASE_NOTE = ("The share of each round's purchases whose teacher answer agrees with gold, mean over seeds "
                 "(where the pool has gold answers). A strategy that buys the items the student finds hard may "
                 "buy the items the teacher gets wrong too, and teach wrong answers: read it before blaming a "
                 "strategy's score.")


def purchase_agreement(run: RunResult) -> dict[int, float]:
    """round -> the share of the annotations bought in that round that agree with gold, from the run's
    cumulative `teacher_agrees` over `teacher_checked` (so runs stored before this table read the same)."""
    shares, before = {}, (0, 0.0, 0.0)  # (round, agreeing, checked) of the last round counted; round 0 buys nothing
    for row in run.rows:
        round_, agrees, checked = int(row["round"]), row.get("teacher_agrees"), row.get("teacher_checked")
        if agrees is None or not checked:
            continue
        agreeing = float(agrees) * float(checked)
        # a round's own share needs the round before it counted: after a gap it would lump several rounds
        if checked > before[2] and before[0] == round_ - 1:
            shares[round_] = (agreeing - before[1]) / (checked - before[2])
        before = (round_, agreeing, float(checked))
    return shares


def purchase_rows(runs: list[RunResult]) -> list[dict]:
    """Per task x strategy x annotator x round: purchase_agreement's mean over the seeds that bought
    annotations that round, and how many did."""
    out = []
    for (task, strategy, annotator), members in by_group(runs).items():
        per_round: dict[int, list[float]] = {}
        for run in members:
            for round_, share in purchase_agreement(run).items():
                per_round.setdefault(round_, []).append(share)
        for round_, shares in sorted(per_round.items()):
            out.append({"task": task, "strategy": strategy, "annotator": annotator, "round": round_,
                        "seeds": len(shares), "agrees_mean": statistics.fmean(shares)})
    return out


def purchase_table(rows: list[dict], task: str) -> tuple[list[int], dict[tuple[str, str], dict[int, dict]]]:
    """The task's purchase_rows as (rounds, (strategy, annotator) -> round -> row), for the tables."""
    return _by_round(rows, task, lambda r: (r["strategy"], r["annotator"]))


def purchase_text(row: dict | None) -> str:
    if row is None:
        return "–"
    return f"{100 * row['agrees_mean']:.0f}%" + (f" (n={row['seeds']})" if row["seeds"] > 1 else "")


def purchase_markdown(rows: list[dict], task: str) -> list[str]:
    return _rounds_markdown("What the teacher got right of each round's purchases", PURCHASE_NOTE,
                            ("strategy", "annotator"), *purchase_table(rows, task), purchase_text)


def _by_round(rows: list[dict], task: str, key) -> tuple[list[int], dict[tuple, dict[int, dict]]]:
    """The task's rows as (its rounds, key(row) -> round -> row)."""
    mine = [r for r in rows if r["task"] == task]
    table: dict[tuple, dict[int, dict]] = {}
    for r in mine:
        table.setdefault(key(r), {})[r["round"]] = r
    return sorted({r["round"] for r in mine}), table


def _rounds_markdown(title: str, note: str, columns: tuple[str, ...], rounds: list[int],
                     table: dict[tuple, dict[int, dict]], text) -> list[str]:
    """A Markdown table with the key's columns, then one column a round, each cell text(row or None)."""
    if not table:
        return []
    lines = ["", f"### {title}", "", note, "",
             "| " + " | ".join(columns) + " | " + " | ".join(f"round {r}" for r in rounds) + " |",
             "|" + "---|" * len(columns) + "---:|" * len(rounds)]
    for key, by_round in table.items():
        lines.append("| " + " | ".join(_md_escape(k) for k in key) + " | "
                     + " | ".join(text(by_round.get(r)) for r in rounds) + " |")
    return lines


def auroc_text(row: dict | None) -> str:
    if row is None:
        return "–"
    items = "" if row["items_mean"] is None else f" ({row['wrong_mean']:.0f}/{row['items_mean']:.0f} wrong)"
    return f"{row['auroc_mean']:.2f}" + (items if row["part"] == "score" else "")


# --- the results table (grid_results.csv / .md) ----------------------------------------------------

RESULT_COLUMNS = (
    "task", "strategy", "annotator", "round", "seeds", "annotations", "cost_unit", "cost_mean", "cost_std",
    "accuracy_mean", "accuracy_std", "accuracy_ci95", "budget", "accuracy_at_budget_mean", "accuracy_at_budget_std",
    "accuracy_at_budget_ci95", "seeds_at_budget", "chance", "teacher_agrees",
)


def results_rows(runs: list[RunResult]) -> list[dict]:
    """One row per task x strategy x annotator x round: accuracy at that round (mean, std over seeds) with
    the cost spent by then, and accuracy at the task's budget point of that round (equal spend)."""
    runs = evaluated(runs)
    costs = task_costs(runs)
    groups = by_group(runs)
    out = []
    for task in tasks_of(runs):
        task_runs = [r for r in runs if r.task == task]
        cost = costs[task]
        round_budget = _round_budgets(task_runs, cost)
        for (group_task, strategy, annotator), members in groups.items():
            if group_task != task:
                continue
            for round_, cell in round_cells(members, cost).items():
                budget = round_budget.get(round_)
                at = budget_cell(members, budget, cost) if budget is not None else Cell(0, None, None)
                out.append({
                    "task": task, "strategy": strategy, "annotator": annotator, "round": round_, "seeds": cell.n,
                    "annotations": cell.annotations, "cost_unit": COSTS[cost], "cost_mean": cell.cost_mean,
                    "cost_std": cell.cost_std, "accuracy_mean": cell.mean, "accuracy_std": cell.std,
                    "accuracy_ci95": cell.ci95, "budget": budget, "accuracy_at_budget_mean": at.mean,
                    "accuracy_at_budget_std": at.std, "accuracy_at_budget_ci95": at.ci95, "seeds_at_budget": at.n,
                    "chance": task_chance(members), "teacher_agrees": mean_agreement(members),
                })
    return out


def task_chance(runs: list[RunResult]) -> float | None:
    """The chance accuracy of the runs' test set (they share it), where it is known."""
    return next((run.chance for run in runs if run.chance is not None), None)


def mean_agreement(runs: list[RunResult]) -> float | None:
    """The mean over runs of the share of annotations that agree with gold."""
    values = [run.teacher_agrees for run in runs if run.teacher_agrees is not None]
    return statistics.fmean(values) if values else None


def _round_budgets(runs: list[RunResult], cost: str) -> dict[int, float]:
    per_round: dict[int, list[float]] = {}
    for run in runs:
        for row in run.evaluated:
            per_round.setdefault(int(row["round"]), []).append(float(row.get(cost) or 0))
    return {r: statistics.fmean(v) for r, v in per_round.items()}


def results_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in RESULT_COLUMNS})
    return buffer.getvalue()


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 6)
    return value


def results_markdown(runs: list[RunResult], title: str = "Grid results", baseline: str = BASELINE) -> str:
    """Per task: accuracy by round and accuracy at equal teacher budget, strategy x annotator rows, mean ±
    95% t-interval over seeds in %, the best mean of each column in bold; then the AULC and its paired
    difference from `baseline`. Runs with no evaluated round are left out."""
    runs = evaluated(runs)
    costs = task_costs(runs)
    groups = by_group(runs)
    lines = [f"# {title}", ""]
    seeds = sorted({run.seed for run in runs})
    lines.append(
        f"{len(runs)} runs in {len(groups)} groups (task × strategy × annotator), seeds "
        f"{', '.join(map(str, seeds))}. Test accuracy in %, mean ± the half-width of its 95% t-interval over "
        f"seeds (no interval with one seed; n=… where a group has fewer seeds than the others). Teacher cost in "
        f"{units_text(costs)} (cache hits excluded); a run's accuracy at a budget is that of its last round within it. Best "
        "mean of each column in **bold**."
    )
    areas, errors, purchases = aulc_rows(runs, baseline), auroc_rows(runs), purchase_rows(runs)
    for task in tasks_of(runs):
        task_groups = {g: m for g, m in groups.items() if g[0] == task}
        task_runs = [r for m in task_groups.values() for r in m]
        cost = costs[task]
        unit = COSTS[cost]
        most = max(len(m) for m in task_groups.values())
        cells = {g: round_cells(m, cost) for g, m in task_groups.items()}
        rounds = sorted({r for c in cells.values() for r in c})
        lines += ["", f"## {task}", ""] + task_notes(task_runs)
        lines += [f"### Accuracy by round (mean {unit} spent by then in brackets)", ""]
        header = ["strategy", "annotator"] + [f"round {r}" for r in rounds]
        body = []
        for (_, strategy, annotator), group_cells in cells.items():
            shown = []
            for r in rounds:
                cell = group_cells.get(r)
                cost_text = f" ({format_cost(cell.cost_mean, cost)})" if cell else ""
                shown.append((_md_cell(cell, most) + cost_text, cell))
            body.append(([strategy, annotator], shown))
        lines += _md_table(header, body)

        points = budget_points(task_runs, cost)
        lines += ["", f"### Accuracy at equal teacher budget (at most this many {unit})", ""]
        header = ["strategy", "annotator"] + [f"≤ {format_cost(b, cost)}" for b in points]
        body = [([g[1], g[2]], [(_md_cell(c, most), c) for c in (budget_cell(m, b, cost) for b in points)])
                for g, m in task_groups.items()]
        lines += _md_table(header, body)
        lines += aulc_markdown(areas, task)
        lines += auroc_markdown(errors, task)
        lines += purchase_markdown(purchases, task)
    return "\n".join(lines) + "\n"


def task_notes(runs: list[RunResult]) -> list[str]:
    """What a reader needs before the task's tables: why its runs are apart from others of the same task,
    the chance accuracy, and how often the teacher agreed with gold."""
    notes = []
    if runs and runs[0].apart:
        notes.append(f"Runs whose setting differs from the task's other runs ({runs[0].apart}): kept apart.")
    chance = task_chance(runs)
    if chance is not None:
        notes.append(f"Chance (a uniform guess among each question's answers): {100 * chance:.1f}%.")
    agrees = [run.teacher_agrees for run in runs if run.teacher_agrees is not None]
    if agrees:
        notes.append(f"The teacher's answers agree with gold on {100 * min(agrees):.1f}-{100 * max(agrees):.1f}% "
                     "of each run's annotations: a ceiling on what its rationales can teach.")
    ceilings = sorted({run.strategy for run in runs if reads_gold(run.strategy)})
    if ceilings:
        which = f"Strategy {ceilings[0]} reads" if len(ceilings) == 1 else f"Strategies {', '.join(ceilings)} read"
        notes.append(f"{which} the gold answers: a ceiling for benchmarks, not a strategy to use.")
    short = [run.label for run in runs if len(run.evaluated) == 1]
    if short:
        named = ", ".join(short[:3]) + (f" and {len(short) - 3} more" if len(short) > 3 else "")
        notes.append(f"{named}: one evaluated round, no learning curve yet: left out of the equal budget "
                     "and the AULC.")
    cut = unfinished_cut(runs)
    if cut:
        notes.append(cut)
    return [" ".join(notes), ""] if notes else []


def unfinished_cut(runs: list[RunResult]) -> str | None:
    """A warning when a run that has not finished (no stop reason: still going, or stopped part-way) sets
    the task's equal budget: the comparisons at equal budget and the AULC then end where that run stands
    now, short of what the finished runs spent."""
    cost = cost_key(runs)
    budget = equal_budget(runs, cost)
    unfinished = [run for run in runs if run.final and not run.stop_reason]
    cutting = [run.label for run in unfinished
               if len(run.evaluated) > 1 and float(run.final.get(cost) or 0) <= (budget or 0)]
    if not cutting:
        return None
    named = ", ".join(cutting[:3]) + (f" and {len(cutting) - 3} more" if len(cutting) > 3 else "")
    return (f"The equal budget ({format_cost(budget, cost)} {COSTS[cost]}) is set by {named}, not finished "
            f"({len(unfinished)} run(s) unfinished): the comparisons at equal budget and the AULC end there; "
            "rerun the report when they finish.")


def best_means(columns: list[list["Cell | None"]]) -> list[float | None]:
    """The best mean of each column; None where there is nothing to single out (fewer than two cells
    with a mean, or all of them equal)."""
    out = []
    for cells in columns:
        means = [c.mean for c in cells if c is not None and c.mean is not None]
        out.append(max(means) if len(means) > 1 and max(means) - min(means) > 1e-12 else None)
    return out


def is_best(cell: "Cell | None", best: float | None) -> bool:
    return best is not None and cell is not None and cell.mean is not None and abs(cell.mean - best) < 1e-12


def _md_cell(cell: Cell | None, most: int) -> str:
    if cell is None or cell.mean is None:
        return "–"
    return format_accuracy(cell.mean, cell.ci95) + (f" (n={cell.n})" if cell.n < most else "")


def _md_table(header: list[str], body: list[tuple[list[str], list[tuple[str, "Cell | None"]]]]) -> list[str]:
    """Markdown rows; in each value column the cells with the column's best mean are bolded."""
    columns = len(header) - 2
    best = best_means([[values[i][1] for _, values in body] for i in range(columns)])
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * columns) + "|"]
    for names, values in body:
        marked = [f"**{text}**" if is_best(cell, best[i]) else text for i, (text, cell) in enumerate(values)]
        shown = list(names) + marked
        out.append("| " + " | ".join(_md_escape(s) for s in shown) + " |")
    return out


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def format_accuracy(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if std is not None else "")


def format_cost(value: float | None, cost: str = "teacher_tokens") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if cost == "teacher_dollars":
        return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"
