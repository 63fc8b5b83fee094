"""`elad report`: one self-contained HTML page comparing runs, with its PNG plots beside it.

What it shows, per task: accuracy against teacher cost (tokens, or dollars where any run paid) for each
strategy and annotator with seed bands; accuracy at equal budgets with the leader at each budget; then
the paper-style table (strategy x annotator rows, tasks as columns: final accuracy and accuracy at equal
budget); every run's rounds; and a few items each run's strategy chose, with the student's explanation,
its answer after each step, the sampled answers, the scores and the teacher's annotation.

The page needs no network and no script: inline CSS, images by relative path. Every text that comes
from a store or a config is escaped. The definitions (budget points, equal budget, intervals, AULC) are
those of elad.report.compare.
"""

import datetime as _dt
import html
import json
import re
from pathlib import Path

from elad.errors import EladError
from elad.report.compare import (
    COST_TOLERANCE, COSTS, Cell, RunResult, budget_cell, budget_points, by_group, equal_budget, evaluated,
    final_cell, format_accuracy, format_cost, is_best, best_means, load_runs, round_cells, tasks_of, BASELINE,
    aulc_rows, task_chance, task_costs, task_notes, units_text, AUROC_NOTE, auroc_rows, auroc_table, auroc_text,
    PURCHASE_NOTE, purchase_rows, purchase_table, purchase_text,
)
from elad.report.plots import accuracy_vs_cost_png, paired_differences_png
from elad.report.tables import write_atomic
from elad.report.items import ItemView, answer_text, item_view, number, value_text, vote_tally
from elad.store import RunDir, RunStore

REPORT_NAME = "report.html"


def e(value) -> str:
    """Escaped text for HTML (None shows as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def write_html_report(
    run_dirs: list[Path], out_dir: Path, title: str = "elad report", items_per_run: int = 2, item_runs: int = 6,
    baseline: str = BASELINE,
) -> Path:
    """Write out_dir/report.html and its PNGs for the runs in `run_dirs` (a directory that is not a run
    contributes the runs inside it, e.g. a grid's folder). Returns the HTML file's path.

    items_per_run: chosen items shown per run; item_runs: how many runs show items (the first seed of
    each strategy x annotator group first); baseline: the strategy the paired differences are taken from."""
    runs = load_runs(run_dirs)
    if not runs:
        raise EladError("no runs to report on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    costs = task_costs(runs)
    plots = {}
    for task in tasks_of(evaluated(runs)):
        name = f"accuracy_vs_{COSTS[costs[task]]}_{_slug(task)}.png"
        write_atomic(out_dir / name, _task_plot(task, [r for r in evaluated(runs) if r.task == task], costs[task]))
        plots[task] = name
    paired_plots = _write_paired_plots(runs, out_dir, baseline)
    page = _page(runs, costs, plots, title, items_per_run, item_runs, baseline, paired_plots)
    path = out_dir / REPORT_NAME
    write_atomic(path, page)
    return path


# --- plots -----------------------------------------------------------------------------------------

def _task_plot(task: str, runs: list[RunResult], cost: str) -> bytes:
    series = {}
    for (_, strategy, annotator), members in by_group(runs).items():
        series[(strategy, annotator)] = [
            {"cost": cell.cost_mean, "mean": cell.mean, "band": cell.ci95, "values": cell.values, "costs": cell.costs}
            for cell in round_cells(members, cost).values()
        ]
    label = "teacher dollars spent" if cost == "teacher_dollars" else "teacher tokens spent (prompt + completion)"
    return accuracy_vs_cost_png(series, f"{task}: accuracy against teacher cost (mean, 95% CI over seeds)", label,
                                chance=task_chance(runs))


def _write_paired_plots(runs: list[RunResult], out_dir: Path, baseline: str) -> dict[str, str]:
    """Per task with at least one pair: the paired AULC differences from `baseline` as a PNG in out_dir;
    task -> the file's name."""
    names, areas = {}, aulc_rows(runs, baseline)
    for task in tasks_of(evaluated(runs)):
        rows = [r for r in areas if r["task"] == task and r["pairs"]]
        if rows:
            names[task] = f"aulc_minus_{_slug(baseline)}_{_slug(task)}.png"
            png = paired_differences_png(rows, f"{task}: area under the accuracy-vs-cost curve", rows[0]["cost_unit"])
            write_atomic(out_dir / names[task], png)
    return names


# --- the page --------------------------------------------------------------------------------------

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d232a; margin: 0;
       background: #f6f7f9; line-height: 1.45; font-size: 14px; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 8px; padding-top: 10px; border-top: 2px solid #e3e6ea; }
h3 { font-size: 15px; margin: 22px 0 6px; }
p.lead, p.note { color: #4a5360; margin: 4px 0 10px; }
p.note { font-size: 12.5px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
th, td { border: 1px solid #d9dde3; padding: 4px 8px; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { background: #e3f4e1; font-weight: 700; }
tr.leader td { background: #fbf7e6; }
small, .muted { color: #6b7480; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; border: 1px solid #e3e6ea; }
figcaption { color: #4a5360; font-size: 12.5px; }
details { margin: 6px 0; border: 1px solid #e3e6ea; border-radius: 4px; padding: 4px 10px; }
details > summary { cursor: pointer; font-weight: 600; padding: 2px 0; }
details h4 { margin: 14px 0 4px; font-size: 13.5px; }
.item { border: 1px solid #d9dde3; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.item h4 { margin: 2px 0 6px; font-size: 14px; }
.question { white-space: pre-wrap; background: #f6f7f9; padding: 6px 8px; border-radius: 4px; margin: 4px 0; }
.rationale { white-space: pre-wrap; margin: 2px 0 4px; }
.flip { color: #b5470b; font-weight: 700; }
.ok { color: #1a7f37; } .bad { color: #c62828; }
ul.verdicts { margin: 2px 0 4px; padding-left: 20px; font-size: 13px; }
code { font-size: 12.5px; background: #f0f2f5; padding: 0 3px; border-radius: 3px; }
"""


def _page(runs: list[RunResult], costs: dict[str, str], plots: dict[str, str], title: str, items_per_run: int,
          item_runs: int, baseline: str = BASELINE, paired_plots: dict[str, str] | None = None) -> str:
    unit = units_text(costs)
    scored = evaluated(runs)  # the comparisons need at least one evaluated round; the run list shows all
    groups = by_group(scored)
    seeds = sorted({r.seed for r in runs})
    body = [
        f"<h1>{e(title)}</h1>",
        f"<p class='lead'>{len(runs)} runs · tasks: {e(', '.join(tasks_of(runs)))} · strategies: "
        f"{e(', '.join(dict.fromkeys(r.strategy for r in runs)))} · annotators: "
        f"{e(', '.join(dict.fromkeys(r.annotator for r in runs)))} · seeds: {e(', '.join(map(str, seeds)))} · "
        f"cost in teacher {e(unit)} · written {e(_dt.datetime.now().strftime('%Y-%m-%d %H:%M'))}</p>",
        "<p class='note'>Accuracy is the student's test accuracy in %, mean ± the half-width of its 95% "
        f"t-interval over seeds (n = number of seeds). Teacher cost counts the {e(unit)} of calls actually made (answers from the "
        "response cache cost nothing). A run's accuracy <em>at budget B</em> is that of its last round whose "
        f"cumulative cost is at most B (up to {COST_TOLERANCE:.0%} above B counts: runs that bought the same "
        "annotations spend a few percent more or less with their rationales' lengths). The budget points of a "
        "task are the mean cost by the end of each round; the <em>equal budget</em> is the smallest final cost "
        "among the task's runs.</p>",
        _contents(scored),
    ]
    if len(scored) < len(runs):
        body.append(f"<p class='note'>{len(runs) - len(scored)} run(s) have no evaluated round yet: listed under "
                    "<a href='#runs'>runs and rounds</a>, left out of the comparisons.</p>")
    for task in tasks_of(scored):
        body.append(_task_section(task, [r for r in scored if r.task == task], costs[task], plots[task], baseline,
                                  (paired_plots or {}).get(task)))
    if scored:
        body.append(_paper_table(scored, groups, costs))
    body.append(_items_section(runs, items_per_run, item_runs))
    body.append(_runs_section(runs, costs))
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def _contents(runs: list[RunResult]) -> str:
    links = [f"<a href='#task-{e(_slug(t))}'>{e(t)}</a>" for t in tasks_of(runs)]
    links += ["<a href='#paper-table'>strategy × annotator table</a>", "<a href='#items'>selected items</a>",
              "<a href='#runs'>runs and rounds</a>"]
    return "<p>Contents: " + " · ".join(links) + "</p>"


def _task_section(task: str, runs: list[RunResult], cost: str, plot: str, baseline: str = BASELINE,
                  paired_plot: str | None = None) -> str:
    unit = COSTS[cost]
    groups = by_group(runs)
    most = max(len(m) for m in groups.values())
    out = [f"<h2 id='task-{e(_slug(task))}'>Task: {e(task)}</h2>",
           f"<figure><img src='{e(plot)}' alt='{e(task)}: accuracy against teacher {e(unit)}'>"
           f"<figcaption>Lines: mean over seeds at each round (x: mean cost by the end of the round); band: the "
           f"mean's 95% t-interval; faint dots: single seeds; dashed: chance.</figcaption></figure>"]
    notes = task_notes(runs)
    if notes:
        out.append(f"<p class='note'>{e(notes[0])}</p>")

    points = budget_points(runs, cost)
    cells = {g: [budget_cell(m, b, cost) for b in points] for g, m in groups.items()}
    best = best_means([[cs[i] for cs in cells.values()] for i in range(len(points))])
    out.append(f"<h3>Accuracy at equal teacher budget (at most this many {e(unit)})</h3>")
    header = "".join(f"<th class='num'>≤ {e(format_cost(b, cost))}</th>" for b in points)
    rows = [f"<tr><th>strategy</th><th>annotator</th>{header}</tr>"]
    for (_, strategy, annotator), group_cells in cells.items():
        tds = "".join(_cell_td(c, best[i], most) for i, c in enumerate(group_cells))
        rows.append(f"<tr><td>{e(strategy)}</td><td>{e(annotator)}</td>{tds}</tr>")
    leaders = "".join(f"<td class='num'>{_leader(cells, i)}</td>" for i in range(len(points)))
    rows.append(f"<tr class='leader'><td colspan='2'><strong>leader</strong> (margin over the next)</td>{leaders}</tr>")
    out.append(f"<table id='budget-{e(_slug(task))}'>" + "".join(rows) + "</table>")

    round_table = {g: round_cells(m, cost) for g, m in groups.items()}
    rounds = sorted({r for c in round_table.values() for r in c})
    best = best_means([[round_table[g].get(r) for g in round_table] for r in rounds])
    out.append(f"<h3>Accuracy by round (mean {e(unit)} spent by then below)</h3>")
    header = "".join(f"<th class='num'>round {r}</th>" for r in rounds)
    rows = [f"<tr><th>strategy</th><th>annotator</th>{header}</tr>"]
    for (_, strategy, annotator), group_cells in round_table.items():
        tds = "".join(_cell_td(group_cells.get(r), best[i], most, cost) for i, r in enumerate(rounds))
        rows.append(f"<tr><td>{e(strategy)}</td><td>{e(annotator)}</td>{tds}</tr>")
    out.append(f"<table id='rounds-{e(_slug(task))}'>" + "".join(rows) + "</table>")
    out.append(_aulc_table(task, runs, baseline, paired_plot))
    out.append(_auroc_section(task, runs))
    out.append(_purchase_section(task, runs))
    return "\n".join(out)


def _purchase_section(task: str, runs: list[RunResult]) -> str:
    rounds, table = purchase_table(purchase_rows(runs), task)
    if not table:
        return ""
    head = "<th>strategy</th><th>annotator</th>" + "".join(f"<th class='num'>round {r}</th>" for r in rounds)
    body = [f"<tr>{head}</tr>"]
    for (strategy, annotator), by_round in table.items():
        tds = "".join(f"<td class='num'>{e(purchase_text(by_round.get(r)))}</td>" for r in rounds)
        body.append(f"<tr><td>{e(strategy)}</td><td>{e(annotator)}</td>{tds}</tr>")
    return (f"<h3>What the teacher got right of each round's purchases</h3><p class='note'>{e(PURCHASE_NOTE)}</p>"
            f"<table id='purchases-{e(_slug(task))}'>" + "".join(body) + "</table>")


def _auroc_section(task: str, runs: list[RunResult]) -> str:
    rounds, table = auroc_table(auroc_rows(runs), task)
    if not table:
        return ""
    head = "".join(f"<th>{e(c)}</th>" for c in ("strategy", "annotator", "part")) + "".join(
        f"<th class='num'>round {r}</th>" for r in rounds)
    body = [f"<tr>{head}</tr>"]
    for (strategy, annotator, part), by_round in table.items():
        tds = "".join(f"<td class='num'>{e(auroc_text(by_round.get(r)))}</td>" for r in rounds)
        body.append(f"<tr><td>{e(strategy)}</td><td>{e(annotator)}</td><td>{e(part)}</td>{tds}</tr>")
    return (f"<h3>How well each score found the student's errors</h3><p class='note'>{e(AUROC_NOTE)}</p>"
            f"<table id='auroc-{e(_slug(task))}'>" + "".join(body) + "</table>")


def _aulc_table(task: str, runs: list[RunResult], baseline: str, paired_plot: str | None = None) -> str:
    rows = [r for r in aulc_rows(runs, baseline) if r["task"] == task]
    if not rows:
        return ""
    unit, target = rows[0]["cost_unit"], f"{100 * rows[0]['target_half_width']:g}"
    out = [f"<h3>Area under the accuracy-vs-cost curve, up to {e(format_cost(rows[0]['budget'], 'teacher_' + unit))} "
           f"{e(unit)}</h3>",
           "<p class='note'>The learning curve's mean accuracy over that spend (round 0 at 0 where evaluated), "
           f"mean and 95% t-interval over seeds; paired: minus <code>{e(baseline)}</code> with the same annotator "
           f"and seed. An interval that includes zero shows no difference. Seeds for ±{e(target)}: how many paired "
           "seeds would narrow it to that at the spread seen so far (a plan, not a promise).</p>"]
    head = "".join(f"<th>{e(c)}</th>" for c in ("strategy", "annotator", "seeds", "AULC % (95% CI)",
                                                  f"minus {baseline}, paired (95% CI)", f"seeds for ±{target}",
                                                  "teacher = gold %"))
    body = [f"<tr>{head}</tr>"]
    for r in rows:
        paired = "–"
        if r["paired_diff_mean"] is not None:
            paired = format_accuracy(r["paired_diff_mean"], r["paired_diff_ci95"]) + f" (n={r['pairs']})"
            if r["paired_diff_ci95"] is not None and abs(r["paired_diff_mean"]) <= r["paired_diff_ci95"]:
                paired += " includes 0"
        agrees = "–" if r["teacher_agrees"] is None else f"{100 * r['teacher_agrees']:.1f}"
        needed = "–" if r["seeds_for_target"] is None else r["seeds_for_target"]
        cells = (r["strategy"], r["annotator"], r["seeds"], format_accuracy(r["aulc_mean"], r["aulc_ci95"]), paired,
                 needed, agrees)
        body.append("<tr>" + "".join(f"<td>{e(c)}</td>" if i < 2 else f"<td class='num'>{e(c)}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")
    out.append(f"<table id='aulc-{e(_slug(task))}'>" + "".join(body) + "</table>")
    if paired_plot:
        out.append(f"<figure><img src='{e(paired_plot)}' alt='{e(task)}: AULC minus {e(baseline)}, paired'>"
                   f"<figcaption>Each strategy's AULC minus <code>{e(baseline)}</code>'s with the same seed: dot, "
                   "the mean; bar, its 95% t-interval; faint dots, single seeds. A bar that crosses the zero line "
                   "shows no difference.</figcaption></figure>")
    return "\n".join(out)


def _cell_td(cell: Cell | None, best: float | None, most: int, cost: str | None = None) -> str:
    if cell is None or cell.mean is None:
        return "<td class='num muted'>–</td>"
    text = e(format_accuracy(cell.mean, cell.ci95))
    if cell.n < most:
        text += f" <small>(n={cell.n})</small>"
    if cost is not None:
        text += f"<br><small>{e(format_cost(cell.cost_mean, cost))}</small>"
    css = "num best" if is_best(cell, best) else "num"
    return f"<td class='{css}'>{text}</td>"


def _leader(cells: dict[tuple, list[Cell]], i: int) -> str:
    ranked = sorted(((cs[i].mean, g, cs[i]) for g, cs in cells.items() if cs[i].mean is not None),
                    key=lambda t: -t[0])
    if not ranked:
        return "–"
    mean, group, cell = ranked[0]
    name = e(f"{group[1]} / {group[2]}")
    if len(ranked) == 1:
        return name
    tied = sum(1 for m, _, _ in ranked if abs(m - mean) < 1e-12)
    if tied > 1:
        return f"<small>tie: {tied} groups at {e(format_accuracy(mean, None))}</small>"
    margin = mean - ranked[1][0]
    overlap = mean - (cell.ci95 or 0.0) <= ranked[1][0] + (ranked[1][2].ci95 or 0.0)
    noise = " <small>(95% intervals overlap)</small>" if overlap else ""
    return f"{name}<br><small>+{100 * margin:.1f} pts</small>{noise}"


def _paper_table(runs: list[RunResult], groups: dict, costs: dict[str, str]) -> str:
    tasks = tasks_of(runs)
    rows_of = list(dict.fromkeys((s, a) for _, s, a in groups))
    budget = {t: equal_budget([r for r in runs if r.task == t], costs[t]) for t in tasks}
    finals = {(t, s, a): final_cell(groups[(t, s, a)], costs[t]) for (t, s, a) in groups}
    at_budget = {(t, s, a): budget_cell(groups[(t, s, a)], budget[t], costs[t]) for (t, s, a) in groups
                 if budget[t] is not None}
    most = max(len(m) for m in groups.values())
    out = ["<h2 id='paper-table'>Strategy × annotator, by task</h2>",
           "<p class='note'>Final: accuracy at each run's last evaluated round (its mean cost below). Equal "
           "budget: accuracy at the task's smallest final cost, so every run is compared at the same spend. "
           "The best mean of each column is highlighted.</p>"]
    head1 = "".join(f"<th colspan='2'>{e(t)}</th>" for t in tasks)
    head2 = "".join(f"<th class='num'>final</th><th class='num'>≤ {e(format_cost(budget[t], costs[t]))}</th>"
                    for t in tasks)
    rows = [f"<tr><th rowspan='2'>strategy</th><th rowspan='2'>annotator</th>{head1}</tr><tr>{head2}</tr>"]
    best_final = {t: best_means([[finals.get((t, s, a)) for s, a in rows_of]])[0] for t in tasks}
    best_budget = {t: best_means([[at_budget.get((t, s, a)) for s, a in rows_of]])[0] for t in tasks}
    for strategy, annotator in rows_of:
        tds = []
        for t in tasks:
            tds.append(_cell_td(finals.get((t, strategy, annotator)), best_final[t], most, costs[t]))
            tds.append(_cell_td(at_budget.get((t, strategy, annotator)), best_budget[t], most))
        rows.append(f"<tr><td>{e(strategy)}</td><td>{e(annotator)}</td>{''.join(tds)}</tr>")
    out.append("<table id='paper'>" + "".join(rows) + "</table>")
    return "\n".join(out)


# --- runs and their rounds -------------------------------------------------------------------------

ROUND_COLUMNS = ("round", "state", "annotations", "teacher calls", "teacher tokens", "dollars", "accuracy",
                 "correct / total", "unparsed", "trained on", "train loss", "seconds", "stop reason")


def _runs_section(runs: list[RunResult], costs: dict[str, str]) -> str:
    out = ["<h2 id='runs'>Runs and their rounds</h2>"]
    head = "".join(f"<th>{e(c)}</th>" for c in ("run", "task", "strategy", "annotator", "seed", "rounds",
                                                  "final accuracy", f"teacher {units_text(costs)}",
                                                  "stopped because"))
    rows = [f"<tr>{head}</tr>"]
    for i, run in enumerate(runs, start=1):
        final, cost = run.final, costs.get(run.task, "teacher_tokens")
        rows.append(
            f"<tr><td><a href='#{_run_id(i, run)}'>{e(run.label)}</a></td><td>{e(run.task)}</td>"
            f"<td>{e(run.strategy)}</td><td>{e(run.annotator)}</td><td class='num'>{e(run.seed)}</td>"
            f"<td class='num'>{len(run.rows)}</td>"
            f"<td class='num'>{e(format_accuracy(final['accuracy'], None)) if final else '–'}</td>"
            f"<td class='num'>{e(format_cost(float(final.get(cost) or 0), cost)) if final else '–'}</td>"
            f"<td>{e(run.stop_reason or 'not finished')}</td></tr>"
        )
    out.append("<table id='runs-overview'>" + "".join(rows) + "</table>")
    opened = "" if len(runs) > 6 else " open"
    out.append(f"<details{opened}><summary>Every round of every run ({len(runs)} runs)</summary>")
    for i, run in enumerate(runs, start=1):
        out.append(f"<h4 id='{_run_id(i, run)}'>{e(run.label)} <small>{e(run.path)}</small></h4>"
                   f"{_round_table(run, f'rounds-of-{_run_id(i, run)}')}")
    out.append("</details>")
    return "\n".join(out)


def _run_id(index: int, run: RunResult) -> str:
    """An HTML id for a run, unique in the page (two grids may both hold a run named random-cot-s0)."""
    return f"run-{index}-{_slug(run.label)}"


def _round_table(run: RunResult, table_id: str) -> str:
    rows = ["<tr>" + "".join(f"<th>{e(c)}</th>" for c in ROUND_COLUMNS) + "</tr>"]
    for row in run.rows:
        r = int(row["round"])
        training = run.training.get(r, {})
        accuracy = row.get("accuracy")
        values = [
            r, run.states.get(r, "?"), int(row.get("annotations") or 0), int(row.get("teacher_calls") or 0),
            f"{int(row.get('teacher_tokens') or 0):,}", f"{float(row.get('teacher_dollars') or 0):.4f}",
            format_accuracy(accuracy, None) if accuracy is not None else "–",
            f"{int(row['correct'])} / {int(row['total'])}" if "correct" in row and "total" in row else "–",
            int(row["unparsed"]) if "unparsed" in row else "–",
            training.get("examples", "–"),
            f"{training['loss']:.4f}" if training.get("loss") is not None else "–",
            f"{float(row.get('seconds') or 0):.0f}",
        ]
        cells = "".join(f"<td class='num'>{e(v)}</td>" for v in values)
        rows.append(f"<tr>{cells}<td>{e(row.get('stop_reason') or '')}</td></tr>")
    return f"<table id='{e(table_id)}'>" + "".join(rows) + "</table>"


# --- selected items --------------------------------------------------------------------------------

def _items_section(runs: list[RunResult], per_run: int, max_runs: int) -> str:
    out = ["<h2 id='items'>Selected items and their explanations</h2>",
           "<p class='note'>The items each strategy chose in its run's last selection round, best score first: the "
           "question, the student's greedy steps with its answer after each step (<span class='flip'>↺</span> "
           "marks a change of answer), its sampled answers, the strategy's score parts, and what the teacher "
           "returned. One run (the first seed) per strategy × annotator.</p>"]
    chosen_runs, seen = [], set()
    for run in runs:
        if run.group not in seen:
            seen.add(run.group)
            chosen_runs.append(run)
    shown = 0
    for run in chosen_runs[:max_runs]:
        store = RunDir(run.path).open_store(readonly=True)
        try:
            block = _run_items(store, run, per_run)
        finally:
            store.close()
        if block:
            out.append(block)
            shown += 1
    if not shown:
        out.append("<p class='muted'>No run has a stored selection yet.</p>")
    return "\n".join(out)


def _run_items(store: RunStore, run: RunResult, per_run: int) -> str:
    rounds = store.selected_rounds()
    if not rounds or per_run <= 0:
        return ""
    round_ = rounds[-1]
    summary = store.selection_summary(round_)
    out = [f"<h3>{e(run.label)} · round {round_} · strategy {e(summary['strategy'])} · {summary['chosen']} chosen of "
           f"{summary['scored']} scored</h3>"]
    for row in store.chosen_rows(round_, per_run):
        out.append(_item(item_view(store, round_, row)))
    return "\n".join(out)


def _item(item: ItemView) -> str:
    out = [f"<div class='item'><h4>#{item.rank + 1} · <code>{e(item.example_id)}</code> · score "
           f"{e(number(item.score))}</h4>"]
    if item.example:
        out.append(f"<div class='question'>{e(item.example['question'])}</div>")
        out.append(f"<div><small>gold answer:</small> <strong>{e(item.example['answer'])}</strong></div>")
    else:
        out.append("<p class='muted'>(question not in the store)</p>")
    out.append(_steps(item))
    samples = item.sampled_answers
    if samples:
        how = ", forced after each" if item.answers_forced else ""
        out.append(f"<div><small>sampled answers (K={len(samples)}{how}):</small> {e(vote_tally(samples))}</div>")
    score_parts = " · ".join(f"<strong>{e(k)}</strong> {e(value_text(v))}" for k, v in item.parts.items())
    out.append(f"<div><small>score:</small> {e(number(item.score))}"
               + (f" · {score_parts}" if score_parts else "") + "</div>")
    out.append(_teacher(item))
    out.append("</div>")
    return "\n".join(out)


def _steps(item: ItemView) -> str:
    greedy = item.greedy
    if greedy is None:
        return "<p class='muted'>No student explanation stored for this round (the strategy did not need one).</p>"
    text = (greedy.get("text") or "").strip()
    said = ""
    if not item.steps:
        shown = text if len(text) <= 400 else text[:400] + " …"
        said = (f"<div><small>student's explanation:</small> {e(shown)}</div>" if shown else
                "<div class='muted'>The student's greedy explanation is empty.</div>")
    rows = ["<tr><th class='num'>after</th><th>student's greedy step</th><th>answer then</th></tr>"]
    for i, step, best, p, changed in item.answers_by_prefix():
        answer = "–"
        if best is not None:
            flip = " <span class='flip'>↺</span>" if changed else ""
            answer = f"{e(best)} ({p:.2f}){flip}"
        rows.append(f"<tr><td class='num'>{i}</td><td>{e(step)}</td><td>{answer}</td></tr>")
    mark = {1: " <span class='ok'>✓</span>", 0: " <span class='bad'>✗</span>"}.get(greedy["correct"], "")
    rows.append(f"<tr><td></td><td class='muted'>final answer</td><td>{e(answer_text(greedy['answer']))}{mark}</td></tr>")
    return said + "<table>" + "".join(rows) + "</table>"


def _teacher(item: ItemView) -> str:
    annotation, rejected = item.annotation, item.rejection
    if annotation:
        return (f"<div><small>teacher ({e(annotation['annotator'])}) answered</small> "
                f"<strong>{e(annotation['answer'])}</strong>:</div>"
                f"<div class='rationale'>{e(annotation['rationale'])}</div>"
                + _annotation_details(annotation['details']))
    if rejected:
        return f"<div><small>teacher's reply rejected:</small> {e(rejected['reason'])}</div>"
    return "<div class='muted'>not annotated (the budget ran out or the round did not finish)</div>"


def _annotation_details(raw: str | None) -> str:
    """What the annotator recorded about how it got the rationale: CLEAR's outcome and step verdicts, a
    fallback's reason, gold-check disagreements."""
    try:
        details = json.loads(raw or "{}")
    except ValueError:
        return ""
    if not isinstance(details, dict):
        return ""
    parts = []
    outcome = details.get("outcome")
    if outcome:
        text = {"kept": "kept the student's explanation: every step correct",
                "revised": f"revised from step {details.get('first_wrong')}, kept {details.get('kept_steps')} steps",
                "cot_fallback": f"fell back to CoT: {details.get('fallback_reason', '')}"}.get(outcome, outcome)
        parts.append(f"<small>review:</small> {e(text)}")
    if details.get("gold_disagreed"):
        parts.append(f"<small>disagreed with the gold label</small> {e(details['gold_disagreed'])}×")
    verdicts = details.get("verdicts") or []
    lines = []
    for verdict in verdicts if isinstance(verdicts, list) else []:
        if isinstance(verdict, dict):
            good = verdict.get("correct")
            mark = "<span class='ok'>✓</span>" if good else "<span class='bad'>✗</span>"
            lines.append(f"<li>step {e(verdict.get('step'))} {mark} {e(verdict.get('reason', ''))}</li>")
    out = f"<div>{' · '.join(parts)}</div>" if parts else ""
    return out + (f"<ul class='verdicts'>{''.join(lines)}</ul>" if lines else "")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"
