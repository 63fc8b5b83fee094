"""Build an experiment's components from its config, through the registries."""

from dataclasses import dataclass

import numpy as np
from rich.console import Console

from elad.annotation import Annotator, build_annotator
from elad.config import ExperimentConfig
from elad.errors import EladError
from elad.selection import Strategy, create_strategy, reads_gold
from elad.selection.batch import BatchPolicy
from elad.selection.stochastic import check_acquisition
from elad.loop.evaluate import check_ranking
from elad.loop.stopping import stop_measure
from elad.store import ResponseCache, RunDir, RunStore, StoreJournal
from elad.students import Student
from elad.tasks import AnswerKind, Example, Task
from elad.teachers import Budget, Ledger, TeacherContext, build_teacher, price_for


@dataclass
class Parts:
    """The components of one experiment."""

    task: Task
    pool: list[Example]
    test: list[Example]
    validation: list[Example]  # empty unless task.validation_size
    student: Student
    ledger: Ledger
    journal: StoreJournal  # the ledger's durable book, in the run store
    annotator: Annotator
    strategy: Strategy
    batch: BatchPolicy  # the strategy, with the seed set, pool sampling and diversity around it


def draw(examples: list[Example], size: int | None, seed: int) -> list[Example]:
    """A seeded subset, in file order (the same config always draws the same questions)."""
    if size is None or size >= len(examples):
        return list(examples)
    keep = np.sort(np.random.default_rng(seed).choice(len(examples), size=size, replace=False))
    return [examples[i] for i in keep]


def splits(config: ExperimentConfig, task: Task) -> tuple[str, str]:
    default_pool, default_test = task.default_splits
    return config.task.pool_split or default_pool, config.task.test_split or default_test


def refuse_without_gold(test: list[Example], split: str) -> None:
    """A split whose questions lack gold answers (a benchmark's hidden test set) cannot measure accuracy."""
    missing = sum(1 for e in test if not e.answer)
    if missing:
        raise EladError(f"task.test_split: {missing} of {len(test)} questions of split '{split}' have no gold answer "
                        "(a prediction-only split); choose a split with answers as the test split")


def load_questions(config: ExperimentConfig, task: Task) -> tuple[list[Example], list[Example], list[Example]]:
    """The pool, the test set and the validation set (empty unless `task.validation_size`). When pool and
    test come from one split, the test set is drawn first and the pool from what is left, so no question
    is both trained on and tested; the validation set is carved from the pool side before the pool is
    drawn, so it is never selected either."""
    pool_split, test_split = splits(config, task)
    test_rows = task.load(test_split)
    refuse_without_gold(test_rows, test_split)
    test = draw(test_rows, config.task.test_size, config.seed + 1)
    pool_rows = task.load(pool_split)
    if pool_split == test_split:
        held_out = {e.id for e in test}
        pool_rows = [e for e in pool_rows if e.id not in held_out]
    validation = []
    if config.task.validation_size:
        with_gold = [e for e in pool_rows if e.answer]  # a question without gold cannot tell a round's accuracy
        if len(with_gold) < config.task.validation_size:
            raise EladError(f"task.validation_size: {config.task.validation_size} asked, but only {len(with_gold)} "
                            f"questions of split '{pool_split}' that are not test questions have a gold answer")
        validation = draw(with_gold, config.task.validation_size, config.seed + 2)
        carved = {e.id for e in validation}
        pool_rows = [e for e in pool_rows if e.id not in carved]
    return draw(pool_rows, config.task.pool_size, config.seed), test, validation


def build_parts(config: ExperimentConfig, store: RunStore, run_dir: RunDir, console: Console) -> Parts:
    task = config.task.open()
    strategy, batch = build_selection(config, task, console)  # before any loading: its errors come first
    with console.status("loading the datasets"):
        pool, test, validation = load_questions(config, task)
    pool_split, test_split = splits(config, task)
    store.add_examples("pool", pool_split, pool)
    store.add_examples("test", test_split, test)
    store.add_examples("validation", pool_split, validation)
    if config.loop.evaluate_by == "ranking":
        check_ranking(task, config.training.objective, config.training.inference)
    with console.status(f"loading the student {config.student.model}"):
        student = Student(config.student)
    context = TeacherContext(
        count_tokens=student.count_tokens,
        dataset=task.name,
        split=pool_split,
        data_root=getattr(task, "root", None),
        gold={e.id: task.target(e.rationale, e.answer) for e in pool if e.rationale},
    )
    cache = ResponseCache(run_dir.cache_path) if config.teacher.cache else None
    teacher = build_teacher(config.teacher, context, cache)
    journal = StoreJournal(store.path, purpose=config.annotation.method)
    ledger = Ledger(
        budget=Budget(config.loop.budget.calls, config.loop.budget.tokens, config.loop.budget.dollars),
        price=price_for(config.teacher),
        count_tokens=student.count_tokens,
        journal=journal,
    )
    # What a process that died left in flight is counted before anything reads what was spent.
    ledger.recover(teacher)
    annotator = build_annotator(config.annotation, config.teacher, task, teacher, ledger, seed=config.seed)
    return Parts(task, pool, test, validation, student, ledger, journal, annotator, strategy, batch)


def build_selection(config: ExperimentConfig, task: Task, console: Console) -> tuple[Strategy, BatchPolicy]:
    """The strategy and how each round's batch is taken, every setting checked."""
    strategy = create_strategy(
        config.selection.strategy, weight=config.selection.weight, options=config.selection.options,
        open_answers=task.answer_kind == AnswerKind.NUMBER,
    )
    if config.loop.stop_uncertainty is not None and stop_measure(strategy) is None:
        raise EladError(f"loop.stop_uncertainty: strategy '{config.selection.strategy}'"
                        + (f" with weight {config.selection.weight}" if strategy.name.startswith("egss") else "")
                        + " gives no uncertainty to average (its scores are draws, gold ranks or scaled over "
                        "each round); use it with entropy, least_confidence, margin, disagreement, egss_intra, "
                        "egss_inter or egss with weight < 1")
    if reads_gold(config.selection.strategy):
        console.print(f"[yellow]strategy {strategy.name} reads the gold answers: a ceiling for benchmarks, not a "
                      "selection for real use[/]")
    training = config.training
    if training.objective == "step_by_step" and training.inference == "predict" and strategy.needs:
        # Distilling step-by-step as published: the explain task learns rationales without their answers
        console.print(f"[yellow]strategy {strategy.name} reads the answer the student gives after an explanation, "
                      "but with training.inference=predict its explain task is never taught to give one: those "
                      "answers are guesses; training.inference=cot teaches them[/]")
    options = config.selection.options
    diversity = _fraction(options.get("diversity"), "selection.options.diversity")
    acquisition, beta = str(options.get("acquisition", "top")), float(options.get("beta", 1.0))
    check_acquisition(acquisition, beta)
    batch = BatchPolicy(strategy, config.loop.per_round, config.loop.initial_random, config.selection.pool_sample,
                        diversity, acquisition, beta)
    return strategy, batch


def _fraction(value, where: str) -> float | None:
    """A number in (0, 1] or None, else an error that names the setting."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 < number <= 1:
        raise EladError(f"{where} must be a number in (0, 1], not {value!r}")
    return number
