"""The active distillation loop: select -> annotate -> train -> evaluate, round after round.

Every stage writes its results to the run store before the next begins. Rerunning on the same run
directory skips finished rounds and, inside an unfinished one, reuses its stored selection and
annotations, so nothing is paid for twice.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from elad.annotation import ANNOTATORS, Annotation
from elad.config import ExperimentConfig, parse_config
from elad.errors import EladError
from elad.loop.evaluate import evaluate
from elad.loop.progress import stage, summary_line
from elad.report import round_summaries, write_report
from elad.selection import STRATEGIES, RoundView, select_top
from elad.store import RunStore
from elad.students import Student
from elad.tasks import TASKS, Example, Task
from elad.teachers import TEACHERS, Budget, BudgetExhausted, Ledger, Price, Spent, TeacherContext


@dataclass
class Parts:
    """The components of one experiment, built from its config through the registries."""

    task: Task
    pool: list[Example]
    test: list[Example]
    student: Student
    ledger: Ledger
    annotator: object
    strategy: object


def draw(examples: list[Example], size: int | None, seed: int) -> list[Example]:
    """A seeded subset, in file order (the same config always draws the same questions)."""
    if size is None or size >= len(examples):
        return list(examples)
    keep = np.sort(np.random.default_rng(seed).choice(len(examples), size=size, replace=False))
    return [examples[i] for i in keep]


def round_seed(seed: int, round_: int) -> int:
    return seed * 1_000_003 + round_


class Experiment:
    def __init__(self, config: ExperimentConfig, run_dir: str | Path, console: Console | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.console = console or Console()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._check_same_config()
        self.store = RunStore(self.run_dir / "run.db")
        self.store.set_meta("name", config.name)

    def _check_same_config(self) -> None:
        """A run directory belongs to one config: resuming with another would mix two experiments."""
        saved = self.run_dir / "config.yaml"
        if saved.exists():
            previous = parse_config(saved.read_text(), source=str(saved))
            if previous != self.config:
                raise EladError(f"{self.run_dir} holds a run of a different config; use a new run directory")
        else:
            tmp = saved.with_suffix(".yaml.tmp")
            tmp.write_text(self.config.to_yaml())
            tmp.replace(saved)

    # --- building ------------------------------------------------------------------------------

    def build(self) -> Parts:
        cfg = self.config
        task = TASKS.create(cfg.task.name, path=cfg.task.path, **cfg.task.options)
        with self.console.status("loading the datasets"):
            pool = draw(task.load(cfg.task.pool_split), cfg.task.pool_size, cfg.seed)
            test = draw(task.load(cfg.task.test_split), cfg.task.test_size, cfg.seed + 1)
        self.store.add_examples("pool", cfg.task.pool_split, pool)
        self.store.add_examples("test", cfg.task.test_split, test)
        with self.console.status(f"loading the student {cfg.student.model}"):
            student = Student(cfg.student)
        context = TeacherContext(
            count_tokens=student.count_tokens,
            dataset=task.name,
            split=cfg.task.pool_split,
            data_root=getattr(task, "root", None),
            gold={e.id: task.target(e.rationale, e.answer) for e in pool if e.rationale},
        )
        teacher = TEACHERS.get(cfg.teacher.backend).from_config(cfg.teacher, context)
        totals = self.store.teacher_totals()
        ledger = Ledger(
            budget=Budget(cfg.loop.budget.calls, cfg.loop.budget.tokens, cfg.loop.budget.dollars),
            price=Price(cfg.teacher.price_prompt, cfg.teacher.price_completion),
            count_tokens=student.count_tokens,
            spent=Spent(totals.calls, totals.prompt_tokens, totals.completion_tokens, totals.dollars),
        )
        annotator = ANNOTATORS.create(cfg.annotation.method, task, teacher, ledger, cfg.teacher.max_tokens)
        strategy = STRATEGIES.create(cfg.selection.strategy)
        return Parts(task, pool, test, student, ledger, annotator, strategy)

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> list[dict]:
        parts = self.build()
        cfg = self.config
        if cfg.loop.evaluate_initial and not self.store.round_done(0):
            self._round_zero(parts)
        for round_ in range(1, cfg.loop.rounds + 1):
            if self.store.round_done(round_):
                if self.store.stop_reason(round_):
                    break
                continue
            stop_reason = self._round(parts, round_)
            if stop_reason:
                self.console.print(f"[bold]stopped after round {round_}: {stop_reason}")
                break
        write_report(self.store, self.run_dir / "report")
        return self.summaries()

    def _round_zero(self, parts: Parts) -> None:
        started = time.time()
        self.store.start_round(0)
        self._evaluate(parts, 0)
        self.store.finish_round(0)
        self._announce(0, started)

    def _round(self, parts: Parts, round_: int) -> str | None:
        started = time.time()
        self.store.start_round(round_)
        chosen = self.store.chosen(round_) or self._select(parts, round_)
        stop_reason = self._annotate(parts, round_, chosen)
        annotations = self.store.annotations(up_to_round=round_)
        if not chosen:
            stop_reason = stop_reason or "the pool is exhausted"
        if annotations and (chosen and self._annotated_in(round_)):
            self._train(parts, round_, annotations)
            accuracy = self._evaluate(parts, round_)
            target = self.config.loop.target_accuracy
            if stop_reason is None and target is not None and accuracy >= target:
                stop_reason = f"target accuracy {target:.1%} reached"
        if stop_reason is None and round_ == self.config.loop.rounds:
            stop_reason = "all rounds done"
        self.store.finish_round(round_, stop_reason)
        self._announce(round_, started)
        return stop_reason if stop_reason != "all rounds done" else None

    def _annotated_in(self, round_: int) -> bool:
        return any(a["round"] == round_ for a in self.store.annotations(up_to_round=round_))

    def _select(self, parts: Parts, round_: int) -> list[str]:
        taken = self.store.ever_chosen()
        candidates = [e for e in parts.pool if e.id not in taken]
        if not candidates:
            return []
        seed = round_seed(self.config.seed, round_)
        view = RoundView(round=round_, candidates=candidates, seed=seed)
        ranked = select_top(parts.strategy.score(view), len(candidates), seed)
        chosen = [example_id for example_id, _ in ranked[: self.config.loop.per_round]]
        self.store.add_selection(
            round_, parts.strategy.name, [(i, s.score, s.parts) for i, s in ranked], chosen=set(chosen)
        )
        return chosen

    def _annotate(self, parts: Parts, round_: int, chosen: list[str]) -> str | None:
        by_id = {e.id: e for e in parts.pool}
        todo = [by_id[i] for i in chosen if i not in self.store.handled()]

        def record(request, response, dollars):
            self.store.add_teacher_call(round_, request.example_id, parts.annotator.name, response, request.messages, dollars)

        parts.ledger.on_call = record
        with stage(self.console, f"round {round_} · annotate", len(todo)) as update:
            for done, example in enumerate(todo, start=1):
                try:
                    result = parts.annotator.annotate(example)
                except BudgetExhausted:
                    return "the teacher budget is spent"
                if isinstance(result, Annotation):
                    self.store.add_annotation(round_, example.id, result)
                else:
                    self.store.add_rejected(round_, example.id, result.reason, result.raw)
                update(done)
        return None

    def _train(self, parts: Parts, round_: int, annotations: list[dict]) -> None:
        by_id = {e.id: e for e in parts.pool}
        pairs = [(parts.task.prompt(by_id[a["example_id"]]), a["target"]) for a in annotations]
        warm = self.config.training.warm_start and round_ > 1
        if warm:
            parts.student.load_adapter(self.run_dir / "rounds" / str(round_ - 1) / "adapter")
        with stage(self.console, f"round {round_} · train on {len(pairs)}") as update:
            report = parts.student.train(
                pairs, self.config.training, seed=round_seed(self.config.seed, round_), warm_start=warm, progress=update
            )
        adapter = self.run_dir / "rounds" / str(round_) / "adapter"
        adapter.parent.mkdir(parents=True, exist_ok=True)
        parts.student.save_adapter(adapter)
        self.store.add_training(round_, report.examples, report.steps, report.loss, report.seconds, report.tokens)

    def _evaluate(self, parts: Parts, round_: int) -> float:
        with stage(self.console, f"round {round_} · evaluate on {len(parts.test)}", len(parts.test)) as update:
            result = evaluate(parts.student, parts.task, parts.test, progress=update)
        self.store.add_explanations(round_, "test", result.rows)
        self.store.set_metrics(round_, "test", result.metrics())
        return result.accuracy

    # --- reporting -----------------------------------------------------------------------------

    def _announce(self, round_: int, started: float) -> None:
        totals = self.store.teacher_totals(up_to_round=round_)
        self.store.set_metrics(
            round_,
            "teacher",
            {
                "annotations": len(self.store.annotations(up_to_round=round_)),
                "calls": totals.calls,
                "tokens": totals.prompt_tokens + totals.completion_tokens,
                "dollars": totals.dollars,
                "seconds": time.time() - started,
            },
        )
        row = next(r for r in self.summaries() if r["round"] == round_)
        self.console.print(summary_line(row))
        write_report(self.store, self.run_dir / "report")

    def summaries(self) -> list[dict]:
        return round_summaries(self.store)
