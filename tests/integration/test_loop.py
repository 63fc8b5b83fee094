"""The whole loop on a tiny random Llama with a real tokenizer: store contents, resume, budget."""

import csv

import pytest
import yaml

from elad.config import ExperimentConfig
from elad.errors import EladError
from elad.loop import Experiment
from elad.store import RunStore

pytestmark = pytest.mark.integration


def make_config(esnli_dir, tiny_model_dir, **loop) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "name": "tiny",
        "task": {"name": "esnli", "path": str(esnli_dir), "pool_size": None, "test_size": None},
        "student": {"model": str(tiny_model_dir), "max_new_tokens": 8, "new_tokens_cap": 8, "generation_batch_size": 4,
                    "lora": {"r": 4, "alpha": 8}},
        "training": {"epochs": 1, "batch_size": 4, "max_length": 128},
        "loop": {"rounds": 2, "per_round": 4, **loop},
    })


def test_two_rounds_write_everything_to_the_store(esnli_dir, tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    summaries = Experiment(make_config(esnli_dir, tiny_model_dir), run_dir).run()

    assert [row["round"] for row in summaries] == [0, 1, 2]
    assert [int(row["annotations"]) for row in summaries] == [0, 4, 8]
    store = RunStore(run_dir / "run.db")
    assert [r["state"] for r in store.rounds()] == ["done", "done", "done"]
    assert len(store.example_ids("pool")) == 12 and len(store.example_ids("test")) == 6

    # Every teacher call is recorded with its tokens; the replayed text was cut before the run-on.
    calls = store.db.execute("SELECT * FROM teacher_calls ORDER BY id").fetchall()
    assert len(calls) == 8 and all(c["prompt_tokens"] > 20 and c["completion_tokens"] > 5 for c in calls)
    assert not any("invented" in c["completions"] for c in calls)
    assert store.teacher_totals(up_to_round=1).calls == 4

    # The teacher's answer (label i % 3 of row i) is what the student is trained on.
    labels = ("entailment", "neutral", "contradiction")
    for annotation in store.annotations():
        row = int(annotation["example_id"].split("-")[1])
        assert annotation["answer"] == labels[row % 3]
        assert annotation["target"].endswith(f"So the answer is {labels[row % 3]}.")

    assert [t["examples"] for t in store.training()] == [4, 8]
    assert len(store.explanations(2, "test")) == 6
    # what reports put beside the accuracy: a uniform guess among 3 labels, and the teacher against gold
    assert all(row["chance"] == pytest.approx(1 / 3) for row in summaries)
    for row in summaries[1:]:
        annotations = store.annotations(up_to_round=row["round"])
        agree = sum(a["answer"] == store.example(a["example_id"], "pool")["answer"] for a in annotations)
        assert row["teacher_checked"] == len(annotations) and row["teacher_agrees"] == pytest.approx(agree / len(annotations))
    stages = {m["name"]: m["value"] for m in store.metrics() if m["round"] == 1 and m["split"] == "stages"}
    assert set(stages) == {"seconds_select", "seconds_annotate", "seconds_train", "seconds_evaluate"}
    assert all(seconds > 0 for seconds in stages.values())
    assert (run_dir / "rounds" / "2" / "adapter" / "adapter_config.json").exists()
    with open(run_dir / "report" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["round"] for r in rows] == ["0", "1", "2"] and int(rows[2]["teacher_tokens"]) > 0
    assert (run_dir / "report" / "accuracy_vs_tokens.png").stat().st_size > 1000


def test_rounds_trained_in_processes_of_their_own_store_what_rounds_trained_here_store(esnli_dir, tiny_model_dir,
                                                                                      tmp_path, monkeypatch):
    """training.own_process changes where a round trains, not what the run stores: the same selections,
    explanations and accuracies round by round, and the same adapter weights."""
    from safetensors.torch import load_file

    from elad.students import training

    launched = []
    launch = training.train_in_processes
    monkeypatch.setattr(training, "train_in_processes", lambda *a, **k: launched.append(1) or launch(*a, **k))

    def run(own_process: bool, name: str):
        config = make_config(esnli_dir, tiny_model_dir)
        config = config.model_copy(update={"training": config.training.model_copy(update={"own_process": own_process})})
        summaries = Experiment(config, tmp_path / name).run()
        store = RunStore(tmp_path / name / "run.db")
        explanations = [e["text"] for e in store.explanations(2, "test")]
        adapter = load_file(tmp_path / name / "rounds" / "2" / "adapter" / "adapter_model.safetensors")
        return [(r["round"], r["accuracy"], r["annotations"]) for r in summaries], explanations, adapter

    here = run(False, "here")
    assert not launched
    apart = run(True, "apart")
    assert len(launched) == 2  # both rounds trained apart
    assert here[:2] == apart[:2]
    assert here[2].keys() == apart[2].keys() and all((here[2][k] == apart[2][k]).all() for k in here[2])


def test_a_crash_mid_round_resumes_without_paying_twice(esnli_dir, tiny_model_dir, tmp_path, monkeypatch):
    from elad.students import Student

    run_dir = tmp_path / "run"
    config = make_config(esnli_dir, tiny_model_dir)
    real_train = Student.train
    trained_rounds = []

    def train_then_crash_in_round_2(self, pairs, *args, **kwargs):
        trained_rounds.append(len(pairs))
        if len(pairs) == 8:
            raise KeyboardInterrupt  # the user pressed Ctrl-C after round 2 was annotated
        return real_train(self, pairs, *args, **kwargs)

    monkeypatch.setattr(Student, "train", train_then_crash_in_round_2)
    with pytest.raises(KeyboardInterrupt):
        Experiment(config, run_dir).run()
    assert RunStore(run_dir / "run.db").teacher_totals().calls == 8

    monkeypatch.setattr(Student, "train", real_train)
    Experiment(config, run_dir).run()
    store = RunStore(run_dir / "run.db")
    assert store.teacher_totals().calls == 8  # round 2's annotations were reused, not bought again
    assert store.round_done(2) and [t["examples"] for t in store.training()] == [4, 8]


def test_a_crash_after_training_resumes_from_the_saved_adapter(esnli_dir, tiny_model_dir, tmp_path, monkeypatch):
    from elad.loop import stages as stages_module
    from elad.students import Student

    reference = Experiment(make_config(esnli_dir, tiny_model_dir), tmp_path / "reference").run()
    run_dir = tmp_path / "run"
    real_train, real_evaluate = Student.train, stages_module.Stages.evaluate
    trained_on = []

    def counting_train(self, pairs, *args, **kwargs):
        trained_on.append(len(pairs))
        return real_train(self, pairs, *args, **kwargs)

    def crash_in_round_2(self, round_):
        if round_ == 2:
            raise KeyboardInterrupt  # Ctrl-C while round 2's trained student is evaluated
        return real_evaluate(self, round_)

    monkeypatch.setattr(Student, "train", counting_train)
    monkeypatch.setattr(stages_module.Stages, "evaluate", crash_in_round_2)
    with pytest.raises(KeyboardInterrupt):
        Experiment(make_config(esnli_dir, tiny_model_dir), run_dir).run()
    assert trained_on == [4, 8]

    monkeypatch.setattr(stages_module.Stages, "evaluate", real_evaluate)
    resumed = Experiment(make_config(esnli_dir, tiny_model_dir), run_dir).run()
    assert trained_on == [4, 8]  # round 2 was not trained again: its saved adapter was loaded
    assert [r["accuracy"] for r in resumed] == [r["accuracy"] for r in reference]
    store = RunStore(run_dir / "run.db")
    assert [e["text"] for e in store.explanations(2, "test")] == [
        e["text"] for e in RunStore(tmp_path / "reference" / "run.db").explanations(2, "test")]


def test_a_lost_adapter_is_trained_again_from_the_store(esnli_dir, tiny_model_dir, tmp_path, monkeypatch):
    """A run kept as its store alone (the adapters deleted) goes on as if they were there: the student that
    selects round 2 is round 1's, trained again with the same seed and order, not the base model."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from elad.students import Student

    def config(rounds):
        data = make_config(esnli_dir, tiny_model_dir, rounds=rounds).model_dump()
        data["selection"] = {**data["selection"], "strategy": "entropy"}  # reads the student's answers
        return ExperimentConfig.model_validate(data)

    reference = Experiment(config(2), tmp_path / "reference").run()
    run_dir = tmp_path / "run"
    Experiment(config(1), run_dir).run()
    adapter = run_dir / "rounds" / "1" / "adapter"
    trained = load_file(adapter / "adapter_model.safetensors")
    shutil.rmtree(adapter)
    real_train, trained_on = Student.train, []

    def counting_train(self, pairs, *args, **kwargs):
        trained_on.append(len(pairs))
        return real_train(self, pairs, *args, **kwargs)

    monkeypatch.setattr(Student, "train", counting_train)
    resumed = Experiment(config(2), run_dir).run()
    assert trained_on == [4, 8]  # round 1 again (its adapter was gone), then round 2
    again = load_file(adapter / "adapter_model.safetensors")
    assert again.keys() == trained.keys() and all(torch.equal(again[k], trained[k]) for k in trained)
    store, expected = RunStore(run_dir / "run.db"), RunStore(tmp_path / "reference" / "run.db")
    assert store.chosen(2) == expected.chosen(2)
    assert [r["accuracy"] for r in resumed] == [r["accuracy"] for r in reference]
    assert [t["examples"] for t in store.training()] == [4, 8]


def test_budget_stops_the_loop(esnli_dir, tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    Experiment(make_config(esnli_dir, tiny_model_dir, budget={"calls": 6}, rounds=3), run_dir).run()
    store = RunStore(run_dir / "run.db")
    assert store.teacher_totals().calls == 6
    assert store.stop_reason(2) == "the teacher budget is spent"
    assert not store.round_done(3)
    assert [t["examples"] for t in store.training()] == [4, 6]  # what was bought is still used


def test_a_run_directory_belongs_to_one_config(esnli_dir, tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    Experiment(make_config(esnli_dir, tiny_model_dir, rounds=1), run_dir).run()
    with pytest.raises(EladError, match="different config"):
        Experiment(make_config(esnli_dir, tiny_model_dir, rounds=2, per_round=3), run_dir)


def test_a_run_the_budget_stopped_goes_on_with_a_bigger_budget(esnli_dir, tiny_model_dir, tmp_path, monkeypatch):
    from elad.students import Student

    run_dir = tmp_path / "run"
    Experiment(make_config(esnli_dir, tiny_model_dir, budget={"calls": 6}, rounds=3), run_dir).run()
    Experiment(make_config(esnli_dir, tiny_model_dir, budget={"calls": 6}, rounds=3), run_dir).run()
    store = RunStore(run_dir / "run.db")
    assert [t["examples"] for t in store.training()] == [4, 6]  # the same config stops where it stopped

    real_generate, evaluated = Student.generate, []
    monkeypatch.setattr(Student, "generate", lambda self, prompts, *a, **k: (
        evaluated.append(len(prompts)), real_generate(self, prompts, *a, **k))[1])
    Experiment(make_config(esnli_dir, tiny_model_dir, budget={"calls": 12}, rounds=3), run_dir).run()
    # round 2, retrained, is evaluated again in full (what the weights it replaced wrote is not kept), then 3
    assert evaluated == [6, 6]
    store = RunStore(run_dir / "run.db")
    assert store.teacher_totals().calls == 12
    # round 2's two unannotated items were finished in round 2 (retrained on 8), round 3 bought the rest
    assert [t["examples"] for t in store.training()] == [4, 8, 12]
    assert {a["example_id"] for a in store.annotations(up_to_round=2)} == set(store.chosen(1) + store.chosen(2))
    assert store.stop_reason(2) is None and store.round_done(3)
    assert ExperimentConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text())).loop.budget.calls == 12


def test_more_rounds_continue_a_finished_run_and_nothing_else_may_change(esnli_dir, tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    Experiment(make_config(esnli_dir, tiny_model_dir, rounds=1), run_dir).run()
    Experiment(make_config(esnli_dir, tiny_model_dir, rounds=2, min_gain=0.01), run_dir).run()
    store = RunStore(run_dir / "run.db")
    assert [t["examples"] for t in store.training()] == [4, 8] and store.teacher_totals().calls == 8
    with pytest.raises(EladError, match="takes new values only for loop"):
        Experiment(make_config(esnli_dir, tiny_model_dir, rounds=3, per_round=2), run_dir)


def test_a_started_run_takes_a_new_teacher_address_but_not_a_new_teacher(esnli_dir, tiny_model_dir, tmp_path):
    """A teacher server restarted on another port (the bench's llama.cpp server gets a free port each start)
    must not orphan a run; another model must."""
    run_dir = tmp_path / "run"
    config = make_config(esnli_dir, tiny_model_dir, rounds=1)
    Experiment(config, run_dir).run()
    moved = config.model_copy(update={"teacher": config.teacher.model_copy(
        update={"base_url": "http://127.0.0.1:9/v1", "timeout": 300.0, "concurrency": 1})})
    Experiment(moved, run_dir)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())["teacher"]
    assert (saved["base_url"], saved["timeout"]) == ("http://127.0.0.1:9/v1", 300.0)
    assert RunStore(run_dir / "run.db").get_meta("extension_pending") is None  # no loop setting changed
    other = config.model_copy(update={"teacher": config.teacher.model_copy(update={"model": "another"})})
    with pytest.raises(EladError, match="different config"):
        Experiment(other, run_dir)


def test_ranking_evaluation_answers_every_test_item_with_a_label(esnli_dir, tiny_model_dir, tmp_path):
    config = make_config(esnli_dir, tiny_model_dir, rounds=1, evaluate_by="ranking")
    config.training.objective, config.training.inference = "step_by_step", "predict"
    summaries = Experiment(config, tmp_path / "run").run()
    store = RunStore(tmp_path / "run" / "run.db")
    for round_ in (0, 1):
        answers = [row["answer"] for row in store.explanations(round_, "test")]
        assert len(answers) == 6 and set(answers) <= {"entailment", "neutral", "contradiction"}
    assert all(row["unparsed"] == 0 for row in summaries if "unparsed" in row)

    config.training.objective = "cot"
    with pytest.raises(EladError, match="ranking needs"):
        Experiment(config, tmp_path / "other").run()


def test_training_losses_and_round_metrics_go_to_tensorboard_when_asked(esnli_dir, tiny_model_dir, tmp_path):
    config = make_config(esnli_dir, tiny_model_dir, rounds=1)
    config.training.report_to = ["tensorboard"]
    Experiment(config, tmp_path / "run").run()
    events = list((tmp_path / "run" / "rounds" / "1" / "trainer").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = EventAccumulator(str(events[0].parent)).Reload()
    assert "train/loss" in logged.Tags()["scalars"]
    # each round's accuracy (with its 95% interval) and spend, at step = round
    rounds = EventAccumulator(str(tmp_path / "run" / "trackers" / "tensorboard")).Reload()
    assert {"round/accuracy", "round/accuracy_low", "round/accuracy_high", "round/teacher_tokens",
            "round/seconds_train"} <= set(rounds.Tags()["scalars"])
    store = RunStore(tmp_path / "run" / "run.db")
    accuracy = {m["round"]: m["value"] for m in store.metrics() if m["name"] == "accuracy"}
    logged_accuracy = {e.step: e.value for e in rounds.Scalars("round/accuracy")}
    assert logged_accuracy == pytest.approx(accuracy) and set(logged_accuracy) == {0, 1}
    low, high = rounds.Scalars("round/accuracy_low")[-1].value, rounds.Scalars("round/accuracy_high")[-1].value
    assert low <= accuracy[1] <= high and high - low > 0.1  # 6 test items: a wide interval


def test_the_wilson_interval():
    from elad.stats import wilson

    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and 0.2 < wilson(0, 10)[1] < 0.35
    assert wilson(0, 0) == (0.0, 1.0)


def test_an_unknown_tracker_is_a_clear_error(esnli_dir, tiny_model_dir, tmp_path):
    config = make_config(esnli_dir, tiny_model_dir, rounds=1, evaluate_initial=False)
    config.training.report_to = ["no_such_tracker"]
    with pytest.raises(EladError, match="training.report_to no_such_tracker"):
        Experiment(config, tmp_path / "run").run()


def test_training_order_does_not_follow_the_order_replies_came_back(esnli_dir, tiny_model_dir, tmp_path,
                                                                     monkeypatch):
    """With several requests in flight the replies arrive in any order; the student trains on the pool's
    order, so one config always trains the same student."""
    from elad.annotation import TeacherAnnotator
    from elad.students import Student

    original_many, original_train = TeacherAnnotator.annotate_many, Student.train
    trained: list[list[str]] = []

    def reversed_many(self, items, concurrency=1):
        yield from reversed(list(original_many(self, items, concurrency)))

    def recording_train(self, records, *args, **kwargs):
        trained.append([r.prompt for r in records])
        return original_train(self, records, *args, **kwargs)

    monkeypatch.setattr(Student, "train", recording_train)
    Experiment(make_config(esnli_dir, tiny_model_dir, rounds=1), tmp_path / "a").run()
    monkeypatch.setattr(TeacherAnnotator, "annotate_many", reversed_many)
    Experiment(make_config(esnli_dir, tiny_model_dir, rounds=1), tmp_path / "b").run()
    assert len(trained) == 2 and len(trained[0]) == 4 and trained[0] == trained[1]



def test_a_stop_inside_a_generation_stage_keeps_the_groups_already_stored(esnli_dir, tiny_model_dir, tmp_path,
                                                                           monkeypatch):
    """loop.store_every: 2 stores the pool's explanations and the evaluation two items at a time. Stopped in
    the third explanation group, then in the second evaluation group, a rerun writes only the groups that
    were missing, and the run ends as an unstopped one does."""
    from elad.students import Student

    def config():
        data = make_config(esnli_dir, tiny_model_dir, store_every=2, rounds=1, evaluate_initial=False).model_dump()
        data["selection"] = {**data["selection"], "strategy": "egss_inter", "samples": 2}
        return ExperimentConfig.model_validate(data)

    Experiment(config(), tmp_path / "reference").run()
    real_explain, real_generate = Student.explain, Student.generate
    calls = {"explain": [], "generate": []}

    def stopping(name, real, stop_at):
        def method(self, prompts, *args, **kwargs):
            calls[name].append(len(prompts))
            if len(calls[name]) == stop_at:
                raise KeyboardInterrupt
            return real(self, prompts, *args, **kwargs)
        return method

    run_dir = tmp_path / "run"
    monkeypatch.setattr(Student, "explain", stopping("explain", real_explain, 3))  # 12 pool items: 6 groups
    with pytest.raises(KeyboardInterrupt):
        Experiment(config(), run_dir).run()
    monkeypatch.setattr(Student, "explain", stopping("explain", real_explain, 0))
    monkeypatch.setattr(Student, "generate", stopping("generate", real_generate, 2))  # 6 test items: 3 groups
    with pytest.raises(KeyboardInterrupt):
        Experiment(config(), run_dir).run()
    assert calls["explain"] == [2] * 7  # 3 (the third stopped), then groups 3-6: the first two were kept
    monkeypatch.setattr(Student, "generate", stopping("generate", real_generate, 0))
    Experiment(config(), run_dir).run()
    assert calls["generate"] == [2] * 4  # the first group was kept; the second was asked again, then the third
    reference, resumed = RunStore(tmp_path / "reference" / "run.db"), RunStore(run_dir / "run.db")
    for role in ("pool", "test"):
        assert resumed.explanations(1, role) == reference.explanations(1, role)
    test_metrics = [[m for m in store.metrics() if m["split"] == "test"] for store in (resumed, reference)]
    assert test_metrics[0] == test_metrics[1] and {"accuracy", "correct", "total"} <= {m["name"] for m in test_metrics[0]}


def test_a_round_whose_replies_were_all_rejected_hands_on_the_student_before_it(esnli_dir, tiny_model_dir,
                                                                                  tmp_path, monkeypatch):
    from elad.loop import stages as stages_module
    from elad.students import Student

    real_annotate, real_load = stages_module.Stages.annotate, Student.load_adapter
    resets, loaded = [], []

    def annotate(self, round_, chosen):
        if round_ == 2:  # every reply of round 2 rejected: nothing to train on in it
            for example_id in chosen:
                self.store.add_rejected(round_, example_id, "gold check failed", "")
            return None
        return real_annotate(self, round_, chosen)

    monkeypatch.setattr(stages_module.Stages, "annotate", annotate)
    monkeypatch.setattr(Student, "reset", lambda self: resets.append(True))
    monkeypatch.setattr(Student, "load_adapter", lambda self, path: (loaded.append(path.parent.name),
                                                                     real_load(self, path))[1])
    Experiment(make_config(esnli_dir, tiny_model_dir, rounds=3, evaluate_initial=False), tmp_path / "run").run()
    # round 3 selects with round 1's student, still held (round 2 trained nothing), not the untrained one
    assert resets == [] and loaded == []
    assert [t["round"] for t in RunStore(tmp_path / "run" / "run.db").training()] == [1, 3]


def test_a_rerun_killed_while_retraining_a_budget_stopped_round_retrains_it_next_time(esnli_dir, tiny_model_dir,
                                                                                       tmp_path, monkeypatch):
    from elad.students import Student

    run_dir = tmp_path / "run"
    Experiment(make_config(esnli_dir, tiny_model_dir, rounds=3, budget={"calls": 6}), run_dir).run()
    real_train = Student.train

    def killed_at_eight(self, records, *args, **kwargs):
        if len(records) == 8:
            raise KeyboardInterrupt  # round 2, finished under the larger budget, killed while it trains
        return real_train(self, records, *args, **kwargs)

    monkeypatch.setattr(Student, "train", killed_at_eight)
    with pytest.raises(KeyboardInterrupt):
        Experiment(make_config(esnli_dir, tiny_model_dir, rounds=3, budget={"calls": 12}), run_dir).run()
    monkeypatch.setattr(Student, "train", real_train)
    Experiment(make_config(esnli_dir, tiny_model_dir, rounds=3, budget={"calls": 12}), run_dir).run()
    store = RunStore(run_dir / "run.db")
    assert [(t["round"], t["examples"]) for t in store.training()] == [(1, 4), (2, 8), (3, 12)]


def test_a_resumed_round_annotates_at_the_fitted_length(esnli_dir, tiny_model_dir, tmp_path, monkeypatch):
    from elad.loop import stages as stages_module

    real_annotate, lengths, kill = stages_module.Stages.annotate, [], {"round 2": True}

    def annotate(self, round_, chosen):
        lengths.append((round_, self.parts.student.max_new_tokens))
        if round_ == 2 and kill["round 2"]:
            kill["round 2"] = False
            raise KeyboardInterrupt  # killed after round 2's selection was stored
        return real_annotate(self, round_, chosen)

    monkeypatch.setattr(stages_module.Stages, "annotate", annotate)
    config = make_config(esnli_dir, tiny_model_dir, rounds=2, evaluate_initial=False)
    config = config.model_copy(update={"student": config.student.model_copy(update={"new_tokens_cap": 512})})
    with pytest.raises(KeyboardInterrupt):
        Experiment(config, tmp_path / "run").run()
    Experiment(config, tmp_path / "run").run()
    (_, first), (_, killed), (_, resumed) = lengths
    assert killed > first and resumed == killed  # fitted to round 1's annotations both times
