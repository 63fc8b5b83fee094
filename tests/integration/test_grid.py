"""The ablation grid on the tiny random Llama: 2 strategies x 1 annotator x 2 seeds, one round each."""

import csv
import statistics

import pytest

from elad.errors import EladError
from elad.loop.grid import RESULTS_CSV, RESULTS_MD, plan, run_grid, run_grid_workers
from elad.report.compare import load_run
from elad.store import RunStore
from tests.integration.test_loop import make_config

pytestmark = pytest.mark.integration


def _config(esnli_dir, tiny_model_dir):
    config = make_config(esnli_dir, tiny_model_dir, rounds=1, per_round=2)
    data = config.model_dump()
    data["selection"].update({"samples": 1, "pool_sample": 4})  # score 4 random pool items a round: fast
    data["student"].update({"max_new_tokens": 6, "new_tokens_cap": 6})
    return type(config).model_validate(data)


def _seed_set_config(esnli_dir, tiny_model_dir):
    """Two rounds, the first a random seed set of 2: what the grid shares between a seed's cells."""
    config = _config(esnli_dir, tiny_model_dir)
    data = config.model_dump()
    data["loop"].update({"rounds": 2, "initial_random": 2})
    return type(config).model_validate(data)


def test_grid_runs_every_cell_tabulates_mean_and_std_and_skips_finished_runs(esnli_dir, tiny_model_dir, tmp_path):
    from elad.students import Student

    config = _config(esnli_dir, tiny_model_dir)
    out = tmp_path / "grid"
    markdown = run_grid(config, ["random", "least_confidence"], ["cot"], 2, out)

    names = ["random-cot-s0", "random-cot-s1", "least_confidence-cot-s0", "least_confidence-cot-s1"]
    assert markdown == out / RESULTS_MD
    assert sorted(p.name for p in out.iterdir() if (p / "run.db").exists()) == sorted(names)
    for name in names:
        store = RunStore(out / name / "run.db")
        assert store.round_done(1) and store.stop_reason(1) == "all rounds done"
        assert store.teacher_totals().calls == 2
        store.close()
    run = load_run(out / "least_confidence-cot-s1")
    assert (run.strategy, run.annotator, run.seed) == ("least_confidence", "cot", 1)

    # Same seed -> the same pool and test questions for both strategies (a paired comparison).
    ids = {n: RunStore(out / n / "run.db").example_ids("test") for n in names}
    assert ids["random-cot-s0"] == ids["least_confidence-cot-s0"]

    with open(out / RESULTS_CSV) as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["strategy"], r["annotator"], r["round"]) for r in rows} == {
        (s, "cot", r) for s in ("random", "least_confidence") for r in ("0", "1")
    }
    for strategy in ("random", "least_confidence"):
        finals = [load_run(out / f"{strategy}-cot-s{seed}").final for seed in (0, 1)]
        row = next(r for r in rows if r["strategy"] == strategy and r["round"] == "1")
        accuracy = [f["accuracy"] for f in finals]
        tokens = [f["teacher_tokens"] for f in finals]
        assert row["seeds"] == "2" and row["cost_unit"] == "tokens"
        assert float(row["accuracy_mean"]) == pytest.approx(statistics.fmean(accuracy), abs=1e-6)
        assert float(row["accuracy_std"]) == pytest.approx(statistics.stdev(accuracy), abs=1e-6)
        assert float(row["cost_mean"]) == pytest.approx(statistics.fmean(tokens), abs=1e-6)
        assert float(row["annotations"]) == 2
    text = markdown.read_text()
    assert "## esnli" in text and "| least_confidence | cot |" in text and "round 1" in text
    assert (out / "report" / "report.html").exists() and (out / "grid.yaml").exists()

    # A rerun loads no model and buys nothing: every cell is finished.
    def no_model(*args, **kwargs):
        raise AssertionError("a finished run was started again")

    before = (out / RESULTS_CSV).read_text()
    original = Student.__init__
    Student.__init__ = no_model
    try:
        run_grid(config, ["random", "least_confidence"], ["cot"], [0, 1], out)
    finally:
        Student.__init__ = original
    assert (out / RESULTS_CSV).read_text() == before


def test_grid_checks_every_cell_before_running_any(esnli_dir, tiny_model_dir, tmp_path):
    config = _config(esnli_dir, tiny_model_dir)
    with pytest.raises(EladError, match="no_such_strategy"):
        run_grid(config, ["random", "no_such_strategy"], ["cot"], 1, tmp_path / "grid")
    assert not (tmp_path / "grid" / "random-cot-s0").exists()
    cells = plan(config, ["random"], ["cot", "clear"], [3, 7])
    assert [name for name, _ in cells] == ["random-cot-s3", "random-clear-s3", "random-cot-s7", "random-clear-s7"]
    assert cells[3][1].annotation.method == "clear" and cells[3][1].seed == 7


def test_a_clear_cell_with_a_replay_teacher_stops_the_grid_before_any_cell(esnli_dir, tiny_model_dir, tmp_path):
    config = _config(esnli_dir, tiny_model_dir)  # the replay teacher
    assert config.teacher.backend == "replay"
    with pytest.raises(EladError, match="annotation.method: clear needs a teacher"):
        run_grid(config, ["random"], ["cot", "clear"], 1, tmp_path / "grid")
    with pytest.raises(EladError, match="annotation.method: clear needs a teacher"):  # nor starts its shards
        run_grid_workers(config, tmp_path / "unread.yaml", [], ["random"], ["cot", "clear"], 1, tmp_path / "grid", 2)
    assert not (tmp_path / "grid").exists()


def test_two_shards_cover_the_grid_and_report_what_one_process_does(esnli_dir, tiny_model_dir, tmp_path):
    from elad.loop.grid import parse_shard, shard_of

    config = _config(esnli_dir, tiny_model_dir)
    whole = run_grid(config, ["random", "least_confidence"], ["cot"], 2, tmp_path / "whole", html=False)
    # two array jobs, each in its own folder (no shared file system); the report merges them
    assert run_grid(config, ["random", "least_confidence"], ["cot"], 2, tmp_path / "a", html=False,
                    shard=parse_shard("1/2"), results=False) is None
    run_grid(config, ["random", "least_confidence"], ["cot"], 2, tmp_path / "b", html=False, shard=parse_shard("2/2"))
    ran = sorted(p.name for folder in ("a", "b") for p in (tmp_path / folder).iterdir() if (p / "run.db").exists())
    assert ran == sorted(p.name for p in (tmp_path / "whole").iterdir() if (p / "run.db").exists())
    assert not set(p.name for p in (tmp_path / "a").iterdir()) & {p.name for p in (tmp_path / "b").iterdir()
                                                                  if (p / "run.db").exists()}
    from elad.report.compare import load_runs, results_csv, results_rows

    merged = results_csv(results_rows(load_runs([tmp_path / "a", tmp_path / "b"])))
    assert merged == (whole.parent / RESULTS_CSV).read_text()
    assert [name for name, _ in shard_of(plan(config, ["random"], ["cot"], 3), (2, 2))] == ["random-cot-s1"]
    for bad in ("3/2", "0/2", "x", "1/0"):
        with pytest.raises(EladError, match="--shard"):
            parse_shard(bad)


def test_workers_run_the_shards_in_parallel_processes(esnli_dir, tiny_model_dir, tmp_path):
    import yaml

    config = _config(esnli_dir, tiny_model_dir)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    markdown = run_grid_workers(config, path, ["loop.per_round=2"], ["random", "least_confidence"], ["cot"], 1,
                                tmp_path / "grid", workers=2)
    assert markdown == tmp_path / "grid" / RESULTS_MD
    for name in ("random-cot-s0", "least_confidence-cot-s0"):
        store = RunStore(tmp_path / "grid" / name / "run.db")
        assert store.stop_reason(1) == "all rounds done"
        store.close()
    # each worker had its share of the cores
    threads = {yaml.safe_load((tmp_path / "grid" / n / "config.yaml").read_text())["student"]["threads"]
               for n in ("random-cot-s0", "least_confidence-cot-s0")}
    assert threads == {max(1, (__import__("os").cpu_count() or 1) // 2)}


def _cached_replies(run_dir) -> set[str]:
    import json
    import sqlite3

    with sqlite3.connect(run_dir / "teacher_cache.db") as db:
        return {c["text"] for (row,) in db.execute("SELECT completions FROM responses") for c in json.loads(row)}


def _paid_replies(store: RunStore) -> set[str]:
    import json

    rows = store.db.execute("SELECT completions FROM teacher_calls WHERE cache_hit = 0")
    return {text for (row,) in rows for text in json.loads(row)}


def test_the_seed_set_is_computed_once_per_seed_and_copied(esnli_dir, tiny_model_dir, tmp_path, monkeypatch):
    from elad.students import Student

    config = _seed_set_config(esnli_dir, tiny_model_dir)
    trained = []  # how many annotations each training call saw, in order
    real_train = Student.train

    def counting_train(self, records, *args, **kwargs):
        trained.append(len(records))
        return real_train(self, records, *args, **kwargs)

    monkeypatch.setattr(Student, "train", counting_train)
    out = tmp_path / "grid"
    run_grid(config, ["random", "least_confidence"], ["cot"], 1, out, html=False)
    # the first cell trains rounds 1 and 2; the second starts from its copied round 1 and trains round 2 only
    assert trained == [2, 4, 4]
    first, second = (RunStore(out / name / "run.db") for name in ("random-cot-s0", "least_confidence-cot-s0"))
    assert second.get_meta("seed_set_from") == "random-cot-s0" and first.get_meta("seed_set_from") is None
    assert [a["example_id"] for a in second.annotations(up_to_round=1)] == \
        [a["example_id"] for a in first.annotations(up_to_round=1)]
    assert [a["example_id"] for a in second.annotations() if a["round"] == 2] != []
    metrics = {s: {(m["round"], m["name"]): m["value"] for m in store.metrics() if m["split"] == "test"}
               for s, store in (("first", first), ("second", second))}
    assert metrics["second"][(1, "accuracy")] == metrics["first"][(1, "accuracy")]
    assert second.stop_reason(2) == "all rounds done" and second.get_meta("name").endswith("least_confidence-cot-s0")
    assert second.teacher_totals(up_to_round=1) == first.teacher_totals(up_to_round=1)  # the seed set is paid for
    # every reply in a cell's teacher cache is one that cell paid for: none of the first cell's round-2
    # purchases reach the second cell as free cache hits
    assert [a for a in first.annotations() if a["round"] == 2]
    assert _cached_replies(out / "least_confidence-cot-s0") <= _paid_replies(second)
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no staging folder left behind
    load_run(out / "least_confidence-cot-s0")  # reads as a run of its own strategy
    assert load_run(out / "least_confidence-cot-s0").strategy == "least_confidence"
    # a cell whose config differs in more than its strategy does not take another run's seed set
    from elad.loop.seedset import seed_set_source

    other = config.model_dump()
    other["training"]["epochs"] = 2
    other["selection"]["strategy"] = "margin"
    assert seed_set_source(type(config).model_validate(other), [out / "random-cot-s0"]) is None
    other["training"]["epochs"] = config.training.epochs
    assert seed_set_source(type(config).model_validate(other), [out / "random-cot-s0"]) == out / "random-cot-s0"


def test_round_twos_view_of_the_pool_is_written_once_per_seed_and_copied(esnli_dir, tiny_model_dir, tmp_path,
                                                                        monkeypatch):
    from elad.students import Student

    config = _seed_set_config(esnli_dir, tiny_model_dir)
    explained = []  # prompts explained per call
    real_explain = Student.explain

    def counting_explain(self, prompts, *args, **kwargs):
        explained.append(len(prompts))
        return real_explain(self, prompts, *args, **kwargs)

    monkeypatch.setattr(Student, "explain", counting_explain)
    out = tmp_path / "grid"
    run_grid(config, ["egss", "entropy", "egss_inter", "random"], ["cot"], 1, out, html=False)
    # egss explains round 2's 4 candidates; entropy and egss_inter find them explained; random reads none
    assert explained == [4]
    egss, entropy, inter, random = (RunStore(out / f"{s}-cot-s0" / "run.db")
                                    for s in ("egss", "entropy", "egss_inter", "random"))
    assert entropy.get_meta("pool_view_from") == inter.get_meta("pool_view_from") == "egss-cot-s0"
    assert random.get_meta("pool_view_from") is None and random.explanations(2, "pool") == []
    # each copy holds what its own strategy reads, as its own run would have written it: entropy (the final
    # answer's distribution, on closed answers) the greedy explanations and the answers after each step;
    # egss_inter the sampled explanations and the answer forced after each
    greedy = [row for row in egss.explanations(2, "pool") if row["sample"] == 0]
    assert entropy.explanations(2, "pool") == greedy != []
    assert entropy.answer_scores(2) == egss.answer_scores(2) and entropy.forced_answers(2, "pool") == {}
    assert inter.explanations(2, "pool") == egss.explanations(2, "pool") != greedy
    assert inter.forced_answers(2, "pool") == egss.forced_answers(2, "pool") and inter.answer_scores(2) == {}
    # and chose from it by its own scores, then trained and evaluated its own round 2
    assert [r["strategy"] for r in entropy.db.execute("SELECT DISTINCT strategy FROM selections WHERE round = 2")] \
        == ["entropy"]
    assert entropy.stop_reason(2) == inter.stop_reason(2) == "all rounds done"


def test_a_view_is_lent_only_by_a_run_of_the_same_round_one_that_read_enough(esnli_dir, tiny_model_dir, tmp_path):
    from elad.loop.seedset import first_view_source

    config = _seed_set_config(esnli_dir, tiny_model_dir)
    out = tmp_path / "grid"
    # each cell computes its own round 1; egss_intra reads greedy explanations and the answers after each step
    run_grid(config, ["egss_intra", "egss"], ["cot"], 1, out, html=False, share_seed_set=False)
    intra, egss = out / "egss_intra-cot-s0", out / "egss-cot-s0"

    def wanting(strategy):
        wants = config.model_dump()
        wants["selection"]["strategy"] = strategy
        return type(config).model_validate(wants)

    assert first_view_source(wanting("entropy"), [intra], seed_set=intra) == intra  # reads what intra wrote
    assert first_view_source(wanting("egss_inter"), [intra], seed_set=intra) is None  # reads samples it lacks
    assert first_view_source(wanting("entropy"), [intra], seed_set=egss) is None  # another round-1 student
    assert first_view_source(wanting("entropy"), [intra, egss], seed_set=egss) == egss
    assert first_view_source(wanting("random"), [intra, egss], seed_set=egss) is None  # reads nothing


def test_an_acquisition_variant_is_its_own_cell_and_group_sharing_the_seed_set(esnli_dir, tiny_model_dir, tmp_path):
    config = _seed_set_config(esnli_dir, tiny_model_dir)
    out = tmp_path / "grid"
    markdown = run_grid(config, ["egss", "egss+softrank"], ["cot"], 1, out, html=False)
    variant = out / "egss+softrank-cot-s0"
    cell = RunStore(variant / "run.db")
    assert cell.get_meta("seed_set_from") == "egss-cot-s0" and cell.get_meta("pool_view_from") == "egss-cot-s0"
    assert "acquisition: softrank" in (variant / "config.yaml").read_text()
    assert load_run(variant).strategy == "egss+softrank" and load_run(out / "egss-cot-s0").strategy == "egss"
    assert "| egss+softrank |" in markdown.read_text()


def test_status_of_a_grid_folder_shows_where_each_cell_stands(esnli_dir, tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from elad.cli import app
    from elad.loop.grid import grid_progress

    config = _config(esnli_dir, tiny_model_dir)
    out = tmp_path / "grid"
    run_grid(config, ["random", "least_confidence"], ["cot"], 1, out, html=False, shard=(1, 2), results=False)
    cells = grid_progress(out)
    assert [(c["dir"], c["state"], c["rounds"]) for c in cells] == [
        ("random-cot-s0", "finished", 1), ("least_confidence-cot-s0", "not started", 0)]
    assert cells[0]["annotations"] == 2 and 0 <= cells[0]["accuracy"] <= 1 and cells[0]["hours"] > 0
    result = CliRunner().invoke(app, ["status", str(out)])  # the table's cells wrap with the console's width
    assert result.exit_code == 0 and "1 of 2 cells finished" in result.output and "h left, at the pace" in result.output
    with pytest.raises(EladError, match="no grid.yaml"):
        grid_progress(tmp_path)
    (out / "grid.yaml").write_text("runs: [unclosed\n")
    with pytest.raises(EladError, match="grid.yaml: not a grid listing"):
        grid_progress(out)


def test_cells_in_processes_of_their_own_give_what_one_process_gives(esnli_dir, tiny_model_dir, tmp_path,
                                                                     monkeypatch):
    from elad.students import Student

    config = _config(esnli_dir, tiny_model_dir)
    here = run_grid(config, ["random", "least_confidence"], ["cot"], 1, tmp_path / "here", html=False)

    def no_model(*args, **kwargs):
        raise AssertionError("the grid's own process loaded a student")

    monkeypatch.setattr(Student, "__init__", no_model)  # this process only: the cells' own load theirs
    apart = run_grid(config, ["random", "least_confidence"], ["cot"], 1, tmp_path / "apart", html=False,
                     cell_process=True)
    assert (apart.parent / RESULTS_CSV).read_text() == (here.parent / RESULTS_CSV).read_text()
    for name in ("random-cot-s0", "least_confidence-cot-s0"):
        store = RunStore(tmp_path / "apart" / name / "run.db")
        assert store.stop_reason(1) == "all rounds done" and store.teacher_totals().calls == 2
        store.close()


def test_a_cell_that_fails_in_its_own_process_stops_the_grid_naming_it(esnli_dir, tiny_model_dir, tmp_path,
                                                                        monkeypatch):
    import sys

    from elad.loop import grid

    monkeypatch.setattr(grid, "elad_command", lambda *args: [sys.executable, "-c", "raise SystemExit(3)"])
    out = tmp_path / "grid"
    with pytest.raises(EladError, match=r"grid cell random-cot-s0 failed \(exit status 3\).*rerun the same command"):
        run_grid(_config(esnli_dir, tiny_model_dir), ["random", "least_confidence"], ["cot"], 1, out,
                 cell_process=True)
    assert not (out / "least_confidence-cot-s0").exists()  # the grid stopped at the failed cell
    store = RunStore(out / "random-cot-s0" / "run.db")  # and let its directory go for the rerun
    assert not store.round_done(1)
    store.close()


def test_a_cell_ends_when_its_grid_has_gone_and_lets_its_run_directory_go(esnli_dir, tiny_model_dir, tmp_path):
    """A grid killed outright (SIGKILL: no cleanup of its own) does not leave its cell computing."""
    import subprocess
    import sys
    import time

    from elad.store import RunDir
    from tests.integration.test_student import _alive

    config = make_config(esnli_dir, tiny_model_dir, rounds=8, per_round=2)
    (tmp_path / "cell.yaml").write_text(config.to_yaml())
    run_dir, log = tmp_path / "cell", tmp_path / "cell.log"
    script = (  # a grid's side: start the cell as run_grid does, wait until its run has begun, say its pid
        "import subprocess, sys, time\n"
        "from elad.children import elad_command\n"
        f"child = subprocess.Popen(elad_command('run', {str(tmp_path / 'cell.yaml')!r}, '--run-dir', {str(run_dir)!r}),"
        f" stdout=open({str(log)!r}, 'w'), stderr=subprocess.STDOUT)\n"
        f"while 'round 1' not in open({str(log)!r}).read():\n"
        "    time.sleep(0.1)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    grid = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    cell = int(grid.stdout.readline())
    grid.kill()
    grid.wait()
    deadline = time.time() + 20
    while _alive(cell) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(cell), log.read_text()
    store = RunStore(run_dir / "run.db")
    assert not store.round_done(8)  # it stopped, not finished
    store.close()
    # free for the rerun: the kernel drops the lock once the cell's last thread has exited, which on a busy
    # machine can be a moment after its main thread shows as a zombie (the last one frees its memory first)
    deadline = time.time() + 10
    while True:
        try:
            RunDir(run_dir).lock().close()
            break
        except EladError:
            assert time.time() < deadline, "the run directory is still held after the cell has gone"
            time.sleep(0.2)

