"""Comparing runs (elad.report.compare) on small run directories built here, without a model."""

import csv
import io
import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

from elad.config import ExperimentConfig
from elad.errors import EladError
from elad.report import write_report
from elad.report.compare import (
    COST_TOLERANCE, accuracy_at, aulc_rows, budget_points, equal_budget, find_runs, load_run, load_runs, mean_std, results_csv,
    results_markdown, results_rows,
)
from elad.store import RunStore
from elad.tasks import Example

LABELS = ("entailment", "neutral", "contradiction")


def make_run(folder: Path, strategy: str, annotator: str, seed: int, accuracy: list[float], tokens: list[int],
             task: str = "esnli", dollars: list[float] | None = None, stop: str = "all rounds done",
             question: str = "A man plays. Hypothesis: he sleeps.", student: str | None = None,
             extra: dict | None = None) -> Path:
    """A finished run directory: config.yaml and a store with rounds 0..len(accuracy)-1, their test and
    teacher metrics, training rows, and for rounds >= 1 a selection of two chosen items (with greedy
    steps, samples, answer scores) that the teacher annotated. student: its model (else the default);
    extra: more metrics for every round (split "test")."""
    run_dir = folder / f"{strategy}-{annotator}-s{seed}"
    config = ExperimentConfig.model_validate({
        "name": run_dir.name, "seed": seed, "task": {"name": task}, "selection": {"strategy": strategy},
        "annotation": {"method": annotator}, "loop": {"rounds": max(1, len(accuracy) - 1), "per_round": 2},
        **({"student": {"model": student}} if student else {}),
    })
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config.to_yaml())
    store = RunStore(run_dir / "run.db")
    store.set_meta("name", config.name)
    pool = [Example(f"p-{i}", f"{question} #{i}", LABELS[i % 3]) for i in range(8)]
    store.add_examples("pool", "valid", pool)
    store.add_examples("test", "test", [Example(f"t-{i}", f"test {i}", LABELS[i % 3]) for i in range(20)])
    for r, acc in enumerate(accuracy):
        store.start_round(r)
        store.set_metrics(r, "test", {"accuracy": acc, "correct": round(acc * 20), "total": 20, "unparsed": 1,
                                      **(extra or {})})
        store.set_metrics(r, "teacher", {
            "annotations": 2 * r, "teacher_calls": 2 * r, "teacher_tokens": tokens[r],
            "teacher_dollars": (dollars or [0.0] * len(accuracy))[r], "seconds": 3.0,
        })
        if r >= 1:
            chosen = [pool[2 * r - 2], pool[2 * r - 1]] if 2 * r <= len(pool) else []
            ranked = [(e.id, 1.0 - 0.1 * k, {"intra": 0.5 - 0.1 * k, "inter": 0.25}) for k, e in enumerate(chosen)]
            store.add_selection(r, strategy, ranked, chosen={e.id for e in chosen})
            rows = []
            for e in chosen:
                steps = ["A man plays.", "Playing is not sleeping.", f"So the answer is {e.answer}."]
                rows.append((e.id, 0, " ".join(steps), steps, e.answer, 1))
                rows += [(e.id, k, "sampled", ["sampled"], LABELS[k % 3], None) for k in (1, 2)]
            store.add_explanations(r - 1, "pool", rows)
            store.add_answer_scores(r - 1, {e.id: [{"entailment": 0.6, "neutral": 0.3, "contradiction": 0.1},
                                                   {"entailment": 0.2, "neutral": 0.2, "contradiction": 0.6}]
                                            for e in chosen})
            # the why helpers read the selection round's explanations: store them under round r too
            store.add_explanations(r, "pool", rows)
            store.add_answer_scores(r, {e.id: [{"entailment": 0.6, "neutral": 0.3, "contradiction": 0.1},
                                               {"entailment": 0.2, "neutral": 0.2, "contradiction": 0.6}]
                                        for e in chosen})
            for e in chosen:
                store.add_annotation(r, e.id, SimpleNamespace(
                    annotator=annotator, rationale=f"Teacher <b>says</b> {e.answer} & more.", answer=e.answer,
                    target=f"So the answer is {e.answer}.", raw="raw", details={}))
            store.add_training(r, 2 * r, 1, 0.5 / r, 1.0, 100)
        store.finish_round(r, stop if r == len(accuracy) - 1 else None)
    store.close()
    return run_dir


@pytest.fixture
def grid(tmp_path) -> Path:
    """2 strategies x 1 annotator x 2 seeds on one task; egss is better and spends a little more."""
    folder = tmp_path / "grid"
    make_run(folder, "random", "cot", 0, [0.30, 0.40, 0.45], [0, 1000, 2000])
    make_run(folder, "random", "cot", 1, [0.32, 0.36, 0.47], [0, 1100, 2100])
    make_run(folder, "egss", "cot", 0, [0.30, 0.50, 0.60], [0, 1200, 2400])
    make_run(folder, "egss", "cot", 1, [0.32, 0.46, 0.58], [0, 1300, 2500])
    return folder


def test_find_runs_expands_a_grid_folder_and_names_a_missing_run(grid, tmp_path):
    runs = find_runs([grid])
    assert [p.name for p in runs] == ["egss-cot-s0", "egss-cot-s1", "random-cot-s0", "random-cot-s1"]
    assert find_runs([grid / "random-cot-s1", grid]) [0].name == "random-cot-s1"
    assert len(find_runs([grid / "random-cot-s1", grid])) == 4  # no duplicates
    with pytest.raises(EladError, match="no run here"):
        find_runs([tmp_path])
    with pytest.raises(EladError, match="no such run directory"):
        find_runs([tmp_path / "missing"])


def test_load_run_reads_config_and_rounds(grid):
    run = load_run(grid / "egss-cot-s1")
    assert (run.task, run.strategy, run.annotator, run.seed) == ("esnli", "egss", "cot", 1)
    assert [r["round"] for r in run.rows] == [0, 1, 2]
    assert run.final["accuracy"] == pytest.approx(0.58) and run.stop_reason == "all rounds done"
    assert run.training[2]["examples"] == 4


def test_a_run_from_an_older_config_still_loads_and_a_broken_one_is_named(grid):
    run_dir = grid / "egss-cot-s1"
    # keys this version does not know (an older or newer elad) do not stop the comparison
    (run_dir / "config.yaml").write_text("name: old\nseed: 3\ntask: {name: gsm8k, gone_key: 1}\n"
                                         "selection: {strategy: margin}\nretired_section: {x: 1}\n")
    run = load_run(run_dir)
    assert (run.name, run.task, run.strategy, run.seed) == ("old", "gsm8k", "margin", 3)
    assert run.annotator == "cot"  # not in the config: read from the store's annotations
    (run_dir / "config.yaml").write_text("- a list\n")
    with pytest.raises(EladError, match="config.yaml: not a config"):
        load_run(run_dir)


def test_accuracy_at_budget_is_the_last_round_within_it(grid):
    run = load_run(grid / "egss-cot-s0")  # tokens 0, 1200, 2400
    assert accuracy_at(run, 0) == pytest.approx(0.30)
    assert accuracy_at(run, 1200 / (1 + COST_TOLERANCE) - 1) == pytest.approx(0.30)
    assert accuracy_at(run, 1200 / (1 + COST_TOLERANCE)) == pytest.approx(0.50)  # 5% over counts as within
    assert accuracy_at(run, 1200) == pytest.approx(0.50)
    assert accuracy_at(run, 10**9) == pytest.approx(0.60)  # stopped: keeps its last accuracy


def test_runs_that_bought_the_same_annotations_count_together_at_the_mean_budget(tmp_path):
    """Spends of the 2026-12-01 e-SNLI grid (same annotations, rationales of different lengths), and a run
    that spends twice as much per round, like CLEAR against CoT."""
    short = load_run(make_run(tmp_path, "random", "cot", 0, [0.33, 0.35, 0.45], [0, 4088, 8126]))
    long = load_run(make_run(tmp_path, "egss", "cot", 0, [0.33, 0.33, 0.46], [0, 4188, 8343]))
    double = load_run(make_run(tmp_path, "random", "clear", 0, [0.33, 0.40, 0.50], [0, 8300, 16600]))
    points = budget_points([short, long], "teacher_tokens")
    assert points == [0, pytest.approx(4138), pytest.approx(8234.5)]
    assert [accuracy_at(long, b) for b in points] == pytest.approx([0.33, 0.33, 0.46])  # 8343 is within 8234.5
    assert accuracy_at(double, points[2]) == pytest.approx(0.40)  # twice the spend: round 1's student


def test_budget_points_and_equal_budget(grid):
    runs = load_runs([grid])
    assert budget_points(runs, "teacher_tokens") == [0, 1150, 2250]
    assert equal_budget(runs, "teacher_tokens") == 2000


def test_mean_std_uses_the_sample_std_and_none_for_one_seed():
    assert mean_std([0.4, 0.6]) == (pytest.approx(0.5), pytest.approx(statistics.stdev([0.4, 0.6])))
    assert mean_std([0.4]) == (0.4, None)
    assert mean_std([]) == (None, None)


def test_results_rows_and_csv_hold_mean_and_std_over_seeds(grid):
    runs = load_runs([grid])
    rows = results_rows(runs)
    assert len(rows) == 6  # 2 groups x 3 rounds
    egss_final = next(r for r in rows if r["strategy"] == "egss" and r["round"] == 2)
    assert egss_final["seeds"] == 2 and egss_final["cost_unit"] == "tokens"
    assert egss_final["accuracy_mean"] == pytest.approx(0.59)
    assert egss_final["accuracy_std"] == pytest.approx(statistics.stdev([0.60, 0.58]))
    assert egss_final["cost_mean"] == pytest.approx(2450)
    # round 2's budget point is the mean spend of all four runs by then: 2250 tokens; egss had spent more
    # than 5% over that by round 2, so at that budget it holds its round-1 students
    assert egss_final["budget"] == pytest.approx(2250)
    assert egss_final["accuracy_at_budget_mean"] == pytest.approx(0.48)
    random_final = next(r for r in rows if r["strategy"] == "random" and r["round"] == 2)
    assert random_final["accuracy_at_budget_mean"] == pytest.approx(0.46)

    parsed = list(csv.DictReader(io.StringIO(results_csv(rows))))
    assert parsed[0]["task"] == "esnli" and float(parsed[2]["accuracy_mean"]) == pytest.approx(0.59)
    single = [r for r in results_rows(runs[:1])]
    assert single[0]["accuracy_std"] is None
    assert list(csv.DictReader(io.StringIO(results_csv(single))))[0]["accuracy_std"] == ""


def test_results_markdown_bolds_the_best_mean_of_each_column(grid):
    text = results_markdown(load_runs([grid]))
    assert "## esnli" in text
    egss = next(line for line in text.splitlines() if line.startswith("| egss | cot |") and "round" not in line)
    # two seeds 2 points apart: std 1.4, the mean's 95% t-interval 12.706 x 1.41 / sqrt 2 = 12.7 points
    assert "**59.0 ± 12.7 (2.5k)**" in egss
    # a column where every group ties (round 0: the same untrained students) singles nothing out
    assert "| random | cot | 31.0 ± 12.7 (0) | 38.0 ± 25.4 (1.1k) | 46.0 ± 12.7 (2.0k) |" in text
    # at equal budget: egss seed 0 spent 1200 by round 1, within 5% of the point 1150; seed 1 (1300) is not
    assert "| random | cot | 31.0 ± 12.7 | 38.0 ± 25.4 | 46.0 ± 12.7 |" in text
    assert "| egss | cot | 31.0 ± 12.7 | **41.0 ± 114.4** | **48.0 ± 25.4** |" in text  # 50 and 32: std 12.7
    assert "| strategy | annotator | ≤ 0 | ≤ 1.1k | ≤ 2.2k |" in text


def test_dollars_become_the_cost_when_any_run_paid(tmp_path):
    folder = tmp_path / "paid"
    make_run(folder, "random", "cot", 0, [0.3, 0.4], [0, 500], dollars=[0.0, 0.25])
    rows = results_rows(load_runs([folder]))
    assert rows[-1]["cost_unit"] == "dollars" and rows[-1]["cost_mean"] == pytest.approx(0.25)


def test_write_report_per_run_still_writes_csv_and_png(grid):
    store = RunStore(grid / "random-cot-s0" / "run.db")
    paths = write_report(store, grid / "random-cot-s0" / "report")
    store.close()
    assert [p.name for p in paths] == ["metrics.csv", "accuracy_vs_tokens.png"]
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(json.dumps(paths[0].read_text().splitlines()[0].split(",")))[0] == "round"


def test_aulc_per_group_with_intervals_and_differences_paired_by_seed(tmp_path):
    from elad.report.compare import aulc_rows
    from elad.stats import area_under_curve, mean_interval, seeds_for_half_width

    curves = {("random", 0): [0.3, 0.4, 0.5], ("random", 1): [0.3, 0.5, 0.5], ("random", 2): [0.3, 0.4, 0.4],
              ("egss", 0): [0.3, 0.5, 0.6], ("egss", 1): [0.3, 0.5, 0.7], ("egss", 2): [0.3, 0.5, 0.5]}
    tokens = {0: [0, 100, 200], 1: [0, 110, 220], 2: [0, 90, 210]}
    for (strategy, seed), accuracy in curves.items():
        make_run(tmp_path, strategy, "cot", seed, accuracy, tokens[seed])
    rows = {r["strategy"]: r for r in aulc_rows(load_runs([tmp_path]))}
    budget = 200.0  # the smallest final spend
    expected = {s: [area_under_curve(list(zip(tokens[seed], curves[(s, seed)])), budget) for seed in range(3)]
                for s in ("random", "egss")}
    egss, random = rows["egss"], rows["random"]
    assert egss["budget"] == random["budget"] == budget and egss["seeds"] == 3
    assert (egss["aulc_mean"], egss["aulc_ci95"]) == pytest.approx(mean_interval(expected["egss"]))
    diffs = [e - r for e, r in zip(expected["egss"], expected["random"])]
    assert (egss["paired_diff_mean"], egss["paired_diff_ci95"]) == pytest.approx(mean_interval(diffs))
    assert egss["pairs"] == 3 and random["paired_diff_mean"] is None
    assert egss["seeds_for_target"] == seeds_for_half_width(diffs, 0.03) and random["seeds_for_target"] is None
    text = results_markdown(load_runs([tmp_path]))
    assert "### Area under the accuracy-vs-cost curve, up to 200 tokens" in text
    assert "| seeds for ±3 |" in text and f"| {egss['seeds_for_target']} |" in text
    assert f"{100 * egss['aulc_mean']:.1f} ± {100 * egss['aulc_ci95']:.1f}" in text
    # another baseline: the same pairs, the other way round
    against_egss = {r["strategy"]: r for r in aulc_rows(load_runs([tmp_path]), baseline="egss")}
    assert against_egss["random"]["paired_diff_mean"] == pytest.approx(-egss["paired_diff_mean"])
    assert against_egss["egss"]["paired_diff_mean"] is None and against_egss["random"]["baseline"] == "egss"
    assert "| minus egss, paired (95% CI) |" in results_markdown(load_runs([tmp_path]), baseline="egss")


def test_the_area_and_the_t_interval_of_known_values():
    from elad.stats import area_under_curve, mean_interval

    assert area_under_curve([(0, 0.3), (100, 0.5), (200, 0.6)], 200) == pytest.approx(0.475)
    assert area_under_curve([(0, 0.3), (100, 0.5), (200, 0.6)], 150) == pytest.approx(66.25 / 150)
    assert area_under_curve([(0, 0.3)], 100) is None
    # a round that spent nothing (cost 100 twice): its points stay in round order, not sorted by accuracy
    assert area_under_curve([(0, 0.5), (100, 0.8), (100, 0.2), (300, 0.8)], 300) == pytest.approx(0.55)
    mean, half = mean_interval([0.4, 0.5, 0.6])
    assert mean == pytest.approx(0.5) and half == pytest.approx(4.303 * 0.1 / 3 ** 0.5)
    assert mean_interval([0.7]) == (0.7, None)


def test_seeds_for_an_interval_from_the_spread_seen_so_far():
    from elad.stats import seeds_for_half_width

    # sd 0.1: t(6 df) * 0.1 / sqrt(7) = 0.0925 is the first half-width under 0.1 (6 seeds give 0.105)
    assert seeds_for_half_width([0.4, 0.5, 0.6], 0.1) == 7
    # past the t table: t(386 df) = 1.9661, (1.9661 * 0.1 / 0.01)^2 = 386.5; the normal's 1.96 would say 385
    assert seeds_for_half_width([0.4, 0.5, 0.6], 0.01) == 387
    assert seeds_for_half_width([0.2, 0.2, 0.2], 0.01) == 2
    assert seeds_for_half_width([0.2], 0.01) is None
    assert seeds_for_half_width([0.4, 0.5], 0) is None


def test_the_t_quantile_past_its_table_stays_above_the_normal():
    from elad.stats import t_975

    # published two-sided 95% quantiles of Student's t
    for degrees, quantile in ((4, 2.776), (30, 2.042), (40, 2.021), (60, 2.000), (120, 1.980)):
        assert t_975(degrees) == pytest.approx(quantile, abs=0.001)
    assert t_975(10_000) > 1.95996


def test_runs_that_differ_in_their_student_are_kept_apart(tmp_path):
    folder = tmp_path / "mixed"
    make_run(folder, "random", "cot", 0, [0.30, 0.40], [0, 1000])
    make_run(folder, "egss", "cot", 0, [0.30, 0.50], [0, 1000], student="smollm2-135m")
    runs = load_runs([folder])
    assert sorted(r.task for r in runs) == ["esnli [student.model=qwen2.5-coder-0.5b]",
                                            "esnli [student.model=smollm2-135m]"]
    text = results_markdown(runs)
    assert "## esnli [student.model=smollm2-135m]" in text and "kept apart" in text
    # no comparison across them: each task section has one strategy, so no paired difference from random
    assert not any(r["paired_diff_mean"] is not None for r in aulc_rows(runs))
    same = load_runs([make_run(tmp_path / "same", "random", "cot", s, [0.3, 0.4], [0, 900]) for s in (0, 1)])
    assert {r.task for r in same} == {"esnli"} and all(r.apart is None for r in same)



@pytest.mark.parametrize("section, key, value", [("teacher", "source", "other-recording"),
                                                 ("training", "learning_rate", 0.0001),
                                                 ("annotation", "few_shot", 4),
                                                 ("training", "inference", "predict"),
                                                 ("loop", "evaluate_by", "ranking"),
                                                 ("loop", "evaluate_initial", False),
                                                 ("student", "max_new_tokens", 160)])
def test_runs_with_another_teacher_recording_or_training_are_kept_apart(tmp_path, section, key, value):
    import yaml

    make_run(tmp_path / "g", "random", "cot", 0, [0.30, 0.40], [0, 1000])
    other = make_run(tmp_path / "g", "egss", "cot", 0, [0.30, 0.50], [0, 1000])
    config = yaml.safe_load((other / "config.yaml").read_text())
    config[section][key] = value
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    runs = load_runs([tmp_path / "g"])
    assert len({r.task for r in runs}) == 2 and all(f"{section}.{key}=" in r.task for r in runs)
    assert f"esnli [{section}.{key}={value}]" in {r.task for r in runs}

def test_a_key_an_older_config_leaves_out_counts_as_its_default(tmp_path):
    import yaml

    make_run(tmp_path / "g", "random", "cot", 0, [0.30, 0.40], [0, 1000])
    older = make_run(tmp_path / "g", "egss", "cot", 0, [0.30, 0.50], [0, 1000])
    config = yaml.safe_load((older / "config.yaml").read_text())
    del config["loop"]["evaluate_by"], config["student"]["lora"]  # as an elad before these keys wrote it
    (older / "config.yaml").write_text(yaml.safe_dump(config))
    runs = load_runs([tmp_path / "g"])
    assert {r.task for r in runs} == {"esnli"} and all(r.apart is None for r in runs)


def test_a_second_run_of_the_same_seed_is_kept_apart_not_counted_twice(tmp_path):
    for folder in ("a", "b"):  # the same grid's run copied into two folders, and rerun in the second
        make_run(tmp_path / folder, "random", "cot", 0, [0.30, 0.40], [0, 1000])
    make_run(tmp_path / "a", "egss", "cot", 0, [0.30, 0.90], [0, 1000])
    make_run(tmp_path / "b", "egss", "cot", 0, [0.30, 0.50], [0, 1000])
    runs = load_runs([tmp_path / "a", tmp_path / "b"])
    assert sorted(r.task for r in runs) == ["esnli", "esnli", "esnli [repeat 2 of seed 0]",
                                            "esnli [repeat 2 of seed 0]"]
    egss = next(r for r in aulc_rows(runs) if r["task"] == "esnli" and r["strategy"] == "egss")
    assert egss["seeds"] == 1 and egss["paired_diff_mean"] == pytest.approx(0.25)  # the first copy's (0.6 - 0.35)
    firsts = [r for r in results_rows(runs) if r["task"] == "esnli" and r["round"] == 1]
    assert {r["seeds"] for r in firsts} == {1}


def test_each_task_is_measured_in_its_own_cost(tmp_path):
    # one task's teacher was paid in dollars, the other's was free: the free one keeps its token axis
    for seed in (0, 1):
        make_run(tmp_path / "g", "random", "cot", seed, [0.3, 0.4], [0, 1000], dollars=[0.0, 0.5])
        make_run(tmp_path / "g", "egss", "cot", seed, [0.3, 0.5], [0, 1000], dollars=[0.0, 0.5])
        make_run(tmp_path / "g2", "random", "cot", seed, [0.3, 0.4], [0, 900], task="svamp")
        make_run(tmp_path / "g2", "egss", "cot", seed, [0.3, 0.6], [0, 900], task="svamp")
    rows = aulc_rows(load_runs([tmp_path / "g", tmp_path / "g2"]))
    units = {(r["task"], r["cost_unit"], r["budget"]) for r in rows}
    assert units == {("esnli", "dollars", 0.5), ("svamp", "tokens", 900)}
    svamp = next(r for r in rows if r["task"] == "svamp" and r["strategy"] == "egss")
    assert svamp["paired_diff_mean"] == pytest.approx(0.1)
    text = results_markdown(load_runs([tmp_path / "g", tmp_path / "g2"]))
    assert "Teacher cost in esnli: dollars; svamp: tokens" in text


def test_a_run_with_one_evaluated_round_leaves_the_equal_budget_alone(tmp_path):
    from elad.report.compare import task_notes

    make_run(tmp_path / "g", "random", "cot", 0, [0.3, 0.4, 0.5], [0, 1000, 2000])
    make_run(tmp_path / "g", "egss", "cot", 0, [0.3, 0.45, 0.6], [0, 1000, 2000])
    make_run(tmp_path / "g", "egss", "cot", 1, [0.3], [0], stop="")  # evaluated round 0, then stopped
    runs = load_runs([tmp_path / "g"])
    assert equal_budget(runs, "teacher_tokens") == 2000
    egss = next(r for r in aulc_rows(runs) if r["strategy"] == "egss")
    assert egss["seeds"] == 1 and egss["paired_diff_mean"] == pytest.approx(0.05)
    assert "egss-cot-s1: one evaluated round, no learning curve yet" in " ".join(task_notes(runs))


def test_purchase_agreement_is_each_rounds_own_share_from_the_cumulative_rows():
    from elad.report.compare import purchase_agreement

    run = SimpleNamespace(rows=[
        {"round": 0, "teacher_agrees": None, "teacher_checked": None},
        {"round": 1, "teacher_agrees": 0.5, "teacher_checked": 2.0},
        {"round": 2, "teacher_agrees": 0.75, "teacher_checked": 4.0},  # 3 of 4 so far: round 2 bought 2 of 2
        {"round": 3, "teacher_agrees": 0.5, "teacher_checked": 6.0},  # 3 of 6: round 3 bought 0 of 2
        {"round": 4, "teacher_agrees": 0.5, "teacher_checked": 6.0},  # nothing bought: no share
    ])
    assert purchase_agreement(run) == {1: 0.5, 2: 1.0, 3: 0.0}
    gap = SimpleNamespace(rows=[{"round": 1, "teacher_agrees": 0.5, "teacher_checked": 2.0},
                                {"round": 3, "teacher_agrees": 0.75, "teacher_checked": 4.0}])
    assert purchase_agreement(gap) == {1: 0.5}  # round 3's share would lump in round 2's purchases


def test_what_the_teacher_got_right_of_each_purchase_reaches_the_report(tmp_path):
    from elad.report.compare import purchase_rows

    for seed, later in ((0, 1.0), (1, 0.0)):  # round 2's purchases: both right in seed 0, both wrong in seed 1
        run_dir = make_run(tmp_path / "g", "oracle", "cot", seed, [0.3, 0.4, 0.5], [0, 100, 200])
        store = RunStore(run_dir / "run.db")
        store.set_metrics(1, "teacher", {"teacher_agrees": 0.5, "teacher_checked": 2.0})
        store.set_metrics(2, "teacher", {"teacher_agrees": (1 + 2 * later) / 4, "teacher_checked": 4.0})
        store.close()
    runs = load_runs([tmp_path / "g"])
    rows = {r["round"]: r for r in purchase_rows(runs)}
    assert rows[1]["agrees_mean"] == pytest.approx(0.5) and rows[2]["agrees_mean"] == pytest.approx(0.5)
    assert rows[2]["seeds"] == 2
    assert "| oracle | cot | 50% (n=2) | 50% (n=2) |" in results_markdown(runs)
    from elad.report.html import write_html_report

    assert "id='purchases-esnli'" in write_html_report([tmp_path / "g"], tmp_path / "rep").read_text()


def test_chance_and_teacher_agreement_reach_the_tables(tmp_path):
    folder = tmp_path / "grid"
    for seed, agrees in ((0, 0.75), (1, 0.5)):
        make_run(folder, "random", "cot", seed, [0.30, 0.40], [0, 1000], extra={"chance": 1 / 3,
                                                                                 "teacher_agrees": agrees})
    runs = load_runs([folder])
    text = results_markdown(runs)
    assert "Chance (a uniform guess among each question's answers): 33.3%." in text
    assert "agree with gold on 50.0-75.0% of each run's annotations" in text
    assert "| random | cot | 2 |" in text and text.rstrip().endswith("| 62.5 |")  # the mean over runs, in the AULC table
    rows = results_rows(runs)
    assert rows[0]["chance"] == pytest.approx(1 / 3) and rows[0]["teacher_agrees"] == pytest.approx(0.625)


def test_an_unfinished_run_that_cuts_the_equal_budget_is_named(tmp_path):
    from elad.report.compare import task_notes, unfinished_cut

    make_run(tmp_path / "g", "random", "cot", 0, [0.3, 0.4, 0.5], [0, 1000, 2000])
    make_run(tmp_path / "g", "egss", "cot", 0, [0.3, 0.45, 0.5], [0, 1100, 2100])
    assert unfinished_cut(load_runs([tmp_path / "g"])) is None  # both finished
    make_run(tmp_path / "g", "egss", "cot", 1, [0.3, 0.45], [0, 1050], stop="")
    runs = load_runs([tmp_path / "g"])
    note = unfinished_cut(runs)
    assert note is not None and "egss-cot-s1" in note and "(1.1k tokens)" in note and "(1 run(s) unfinished)" in note
    assert note in " ".join(task_notes(runs))
    # an unfinished run ahead of the finished ones does not set the budget: nothing to warn about
    make_run(tmp_path / "h", "random", "cot", 0, [0.3, 0.4], [0, 1000])
    make_run(tmp_path / "h", "egss", "cot", 0, [0.3, 0.45, 0.5], [0, 1100, 2100], stop=None)
    assert unfinished_cut(load_runs([tmp_path / "h"])) is None


def test_error_aurocs_are_averaged_over_seeds_without_parts_that_tell_nothing(tmp_path):
    from elad.report.compare import auroc_rows

    for seed, (score, inter) in enumerate(((0.6, 0.7), (0.8, 0.5))):
        make_run(tmp_path / "g", "egss", "cot", seed, [0.3, 0.4], [0, 1000], extra={
            "auroc_score": score, "auroc_inter": inter, "auroc_inter_scaled": inter,  # a rescaled copy
            "auroc_weight": 0.5, "errors_known": 64.0, "errors_wrong": 30.0 + 4 * seed})  # a constant part
    make_run(tmp_path / "g", "random", "cot", 0, [0.3, 0.4], [0, 1000])  # stores none: no rows
    runs = load_runs([tmp_path / "g"])
    rows = auroc_rows(runs)
    assert {(r["strategy"], r["part"]) for r in rows} == {("egss", "score"), ("egss", "inter")}
    score = next(r for r in rows if r["part"] == "score" and r["round"] == 1)
    assert score["seeds"] == 2 and score["auroc_mean"] == pytest.approx(0.7) and score["wrong_mean"] == 32
    text = results_markdown(runs)
    assert "| egss | cot | score | 0.70 (32/64 wrong) | 0.70 (32/64 wrong) |" in text
    assert "| egss | cot | inter | 0.60 | 0.60 |" in text


def test_a_strategy_that_reads_gold_is_named_as_a_ceiling(tmp_path):
    make_run(tmp_path / "g", "random", "cot", 0, [0.3, 0.4], [0, 1000])
    assert "reads the gold answers" not in results_markdown(load_runs([tmp_path / "g"]))
    make_run(tmp_path / "g", "oracle", "cot", 0, [0.3, 0.5], [0, 1000])
    assert "Strategy oracle reads the gold answers: a ceiling for benchmarks" in results_markdown(load_runs([tmp_path / "g"]))
