"""bench/keep_runs.py: a run kept as its store alone, before it finished, resumes where it stopped."""

import shutil

import pytest

from elad.loop import Experiment
from elad.store import RunStore
from tests.conftest import load_bench
from tests.integration.test_loop import make_config


@pytest.fixture(scope="module")
def keep_runs():
    return load_bench("keep_runs")


def test_an_unfinished_run_kept_and_restored_resumes_to_the_same_result(keep_runs, esnli_dir, tiny_model_dir,
                                                                        tmp_path, monkeypatch, capsys):
    from elad.loop import stages as stages_module

    config = make_config(esnli_dir, tiny_model_dir)
    reference = Experiment(config, tmp_path / "reference").run()
    grid, kept = tmp_path / "grid", tmp_path / "kept"
    real_evaluate = stages_module.Stages.evaluate

    def stop_in_round_2(self, round_):
        if round_ == 2:
            raise KeyboardInterrupt
        return real_evaluate(self, round_)

    monkeypatch.setattr(stages_module.Stages, "evaluate", stop_in_round_2)
    with pytest.raises(KeyboardInterrupt):
        Experiment(config, grid / "cell-s0").run()
    monkeypatch.setattr(stages_module.Stages, "evaluate", real_evaluate)
    (grid / "cell-s1").mkdir(parents=True)  # a cell that never started: nothing to keep

    keep_runs.keep(grid, kept)
    assert capsys.readouterr().out.splitlines()[-1] == "kept=0 kept_unfinished=0 skipped_unfinished=1"
    keep_runs.keep(grid, kept, unfinished=True)
    assert capsys.readouterr().out.splitlines()[-1] == "kept=0 kept_unfinished=1 skipped_unfinished=0"
    shutil.rmtree(grid)  # the machine is lost: adapters, caches, checkpoints with it

    keep_runs.restore(grid, kept)
    assert sorted(p.name for p in (grid / "cell-s0").iterdir()) == ["config.yaml", "run.db"]
    resumed = Experiment(config, grid / "cell-s0").run()
    assert [r["accuracy"] for r in resumed] == [r["accuracy"] for r in reference]
    store, expected = RunStore(grid / "cell-s0" / "run.db"), RunStore(tmp_path / "reference" / "run.db")
    assert store.chosen(2) == expected.chosen(2)
    assert [e["text"] for e in store.explanations(2, "test")] == [e["text"] for e in expected.explanations(2, "test")]

    keep_runs.keep(grid, kept, unfinished=True)  # finished now: kept as such, the unfinished copy gone
    assert capsys.readouterr().out.splitlines()[-1] == "kept=1 kept_unfinished=0 skipped_unfinished=0"
    assert (kept / "cell-s0" / "run.db.gz").exists() and not (kept / "unfinished" / "cell-s0").exists()
