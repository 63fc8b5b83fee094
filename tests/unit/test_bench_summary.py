"""The efficiency benchmark's summary.json, written from run stores built here (no model)."""

import json
from types import SimpleNamespace

import pytest

from elad.stats import seeds_for_half_width
from tests.conftest import load_bench
from tests.unit.test_report_compare import make_run


@pytest.fixture(scope="module")
def bench():
    return load_bench("distill_efficiency")


def test_summary_holds_each_strategy_with_its_paired_aulc_and_aurocs(bench, tmp_path):
    folder = tmp_path / "out" / "esnli" / "strategies"
    curves = {"random": ([0.30, 0.40, 0.45], [0.30, 0.36, 0.47]), "egss": ([0.30, 0.50, 0.60], [0.30, 0.46, 0.58])}
    for strategy, per_seed in curves.items():
        for seed, accuracy in enumerate(per_seed):
            make_run(folder, strategy, "cot", seed, accuracy, [0, 1000, 2000],
                     extra={"auroc_score": 0.5 + 0.1 * seed, "auroc_inter": 0.4, "teacher_agrees": 0.75,
                            "chance": 1 / 3})
    # a run still going (no stop reason yet) is left out: it would cut the budget to its first round
    make_run(folder, "entropy", "cot", 0, [0.30, 0.40], [0, 900], stop=None)
    summary = json.loads(bench.write_summary(tmp_path / "out").read_text())
    groups = summary["tasks"]["esnli"]["strategies"]
    assert set(groups) == {"random/cot", "egss/cot"}
    egss, random = groups["egss/cot"], groups["random/cot"]
    assert egss["seeds"] == [0, 1] and egss["pairs"] == 2 and random["paired_diff_from_random_mean"] is None
    # the curves share their costs: the paired AULC difference is the mean over seeds of the areas' gaps,
    # each area the trapezoids over 0..2000 divided by 2000
    areas = {s: [(a[0] + 2 * a[1] + a[2]) / 4 for a in per_seed] for s, per_seed in curves.items()}
    gaps = [e - r for e, r in zip(areas["egss"], areas["random"])]
    assert egss["paired_diff_from_random_mean"] == pytest.approx(sum(gaps) / 2)
    assert egss["paired_diff_from_random_ci95"] == pytest.approx(12.706 * abs(gaps[0] - gaps[1]) / 2 ** 0.5 / 2 ** 0.5)
    assert egss["seeds_for_ci95_of_3_points"] == seeds_for_half_width(gaps, 0.03)
    assert egss["final_accuracy_mean"] == pytest.approx(0.59) and egss["teacher_agrees_mean"] == pytest.approx(0.75)
    assert egss["auroc_score_by_round"] == {"0": pytest.approx(0.55), "1": pytest.approx(0.55), "2": pytest.approx(0.55)}
    assert egss["auroc_parts_by_round"] == {"inter": {"0": pytest.approx(0.4), "1": pytest.approx(0.4), "2": pytest.approx(0.4)}}
    # what each round bought: two items of two different gold labels a round (see make_run)
    assert egss["top_label_share_of_bought_by_round"] == {"1": 0.5, "2": 0.5}


def test_summary_only_prints_each_task_and_part_as_a_table(bench, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "out" / "esnli" / "strategies"
    for seed, (random, egss) in enumerate([([0.30, 0.40], [0.30, 0.50]), ([0.30, 0.44], [0.30, 0.46])]):
        make_run(folder, "random", "cot", seed, random, [0, 1000])
        make_run(folder, "egss", "cot", seed, egss, [0, 1000])
    monkeypatch.setattr("sys.argv", ["distill_efficiency.py", "--summary-only", "--out", str(tmp_path / "out")])
    bench.main()
    out = capsys.readouterr().out
    assert "esnli / strategies" in out and (tmp_path / "out" / "summary.json").exists()
    # AULC = the mean of a curve's two points: random 0.35, 0.37; egss 0.40, 0.38, so paired +5 and +1 points;
    # two values 0.02 apart have sd 0.02 / sqrt(2), so a half-width of 12.706 * 0.01
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert rows["egss/cot"] == "| egss/cot | 0,1 | 39.0 ± 12.7 | 3.0 ± 25.4 (includes 0) | 6 | 48.0 |"
    assert rows["random/cot"] == "| random/cot | 0,1 | 36.0 ± 12.7 | – | – | 42.0 |"
    assert not list(folder.glob("*/report"))  # nothing was run
    monkeypatch.setattr("sys.argv", ["distill_efficiency.py", "--summary-only", "--out", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit, match="nowhere: no such folder"):
        bench.main()


def test_bought_label_share_reads_the_gold_labels_of_each_rounds_purchases(bench, tmp_path):
    from elad.report.compare import load_runs
    closed = make_run(tmp_path / "closed", "oracle", "cot", 0, [0.3, 0.4, 0.5], [0, 10, 20], extra={"chance": 1 / 3})
    open_ = make_run(tmp_path / "open", "oracle", "cot", 0, [0.3, 0.4, 0.5], [0, 10, 20])
    # rounds 1 and 2 buy pool items 0,1 and 2,3, whose gold labels cycle through three: two labels a round
    assert bench.bought_top_label_share(load_runs([closed])[0]) == {1: 0.5, 2: 0.5}
    assert bench.bought_top_label_share(load_runs([open_])[0]) == {}


@pytest.mark.parametrize("task", ["esnli", "svamp"])
def test_the_live_teachers_exemplars_reason_in_sentences(bench, task):
    """The annotators part's exemplars teach the teacher to reason: SVAMP's own rationales are one bare
    equation each, which it copied (skipping its reasoning), so SVAMP takes Wei et al.'s exemplars."""
    from elad.config import TaskConfig

    config = TaskConfig.model_validate({**bench.TASKS[task], "options": {"exemplars": bench.EXEMPLARS[task]}})
    shots = config.open().exemplars(4, seed=0)
    assert len(shots) == 4
    rationales = [example.rationale for example, _ in shots]
    assert all(len(rationale.split()) >= 6 for rationale in rationales), rationales


def test_a_server_deaf_to_sigterm_is_killed(bench, monkeypatch):
    import subprocess
    import sys

    ignores_term = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                    "print('ready', flush=True); time.sleep(120)")
    process = subprocess.Popen([sys.executable, "-c", ignores_term], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    wait = subprocess.Popen.wait
    # the 30 s grace, shortened for the test
    monkeypatch.setattr(subprocess.Popen, "wait", lambda self, timeout=None: wait(self, None if timeout is None else 1))
    bench.stop_llama_server(process)
    process.stdout.close()
    assert process.returncode == -9
