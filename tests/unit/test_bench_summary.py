"""The efficiency benchmark's summary.json, written from run stores built here (no model)."""

import json

import pytest

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
                     extra={"auroc_score": 0.5 + 0.1 * seed, "teacher_agrees": 0.75})
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
    assert egss["final_accuracy_mean"] == pytest.approx(0.59) and egss["teacher_agrees_mean"] == pytest.approx(0.75)
    assert egss["auroc_score_by_round"] == {"0": pytest.approx(0.55), "1": pytest.approx(0.55), "2": pytest.approx(0.55)}
