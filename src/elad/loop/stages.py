"""The work of each stage of a round: select, annotate, train, evaluate.

`Stages` holds what every stage reads (the config, the run's store and directory, the built parts) and
writes each stage's results to the store before returning; `runner.py` decides which stage runs when.
"""

from dataclasses import dataclass

from rich.console import Console

from elad.annotation import Annotation
from elad.config import ExperimentConfig
from elad.loop.build import Parts
from elad.loop.evaluate import Evaluation, evaluate, score_texts
from elad.loop.explain import explanation_rows, round_view
from elad.loop.progress import groups_left, in_groups, stage
from elad.loop.resume import BUDGET_SPENT
from elad.selection.errors_auroc import error_aurocs, student_wrong
from elad.store import RunDir, RunStore
from elad.students.common import TrainRecord
from elad.tasks import Example
from elad.teachers import BudgetExhausted, round_limit


def round_seed(seed: int, round_: int) -> int:
    return seed * 1_000_003 + round_


def training_records(task, pool: list[Example], annotations: list[dict]) -> list[TrainRecord]:
    """What a round trains on: the annotated pool questions, in pool order."""
    by_id = {a["example_id"]: a for a in annotations}
    return [TrainRecord(prompt=task.prompt(e), target=a["target"], rationale=a["rationale"], answer=a["answer"])
            for e in pool if (a := by_id.get(e.id)) is not None]


@dataclass
class Stages:
    config: ExperimentConfig
    store: RunStore
    dir: RunDir
    parts: Parts
    console: Console

    # --- select --------------------------------------------------------------------------------

    def select(self, round_: int) -> list[str]:
        """Score the round's candidates with its strategy and store the ranking; returns the chosen ids."""
        parts, seed = self.parts, round_seed(self.config.seed, round_)
        candidates = parts.batch.candidates(parts.pool, self.store.ever_chosen(), seed)
        if not candidates:
            return []
        strategy = parts.batch.strategy_for(round_)
        view = round_view(self.store, round_, parts.task, parts.student, candidates, strategy.needs,
                          self.config.selection, seed, self.console, self.config.loop.store_every)
        scored = strategy.score(view)
        ranked, chosen = parts.batch.choose(round_, scored, candidates, seed)
        self.store.add_selection(round_, strategy.name, [(i, s.score, s.parts) for i, s in ranked], chosen=set(chosen))
        wrong = student_wrong(view, parts.task.is_correct)
        if wrong:  # how well the scores point at the student's errors, where gold is known
            self.store.set_metrics(round_, "selection", error_aurocs(scored, wrong))
        return chosen

    # --- annotate ------------------------------------------------------------------------------

    def annotate(self, round_: int, chosen: list[str]) -> str | None:
        """Annotate what earlier rounds' limits left, then `chosen`; returns a stop reason when the whole
        budget refused a call."""
        parts = self.parts
        by_id = {e.id: e for e in parts.pool}
        handled = self.store.handled()
        todo = [by_id[i] for i in self._deferred(round_) + chosen if i not in handled]
        explanations = self._student_explanations(round_, todo)
        items = [(example, explanations.get(example.id)) for example in todo]
        parts.journal.at(round_, self.config.annotation.method)
        parts.ledger.limit = round_limit(self.config.loop.round_budget, self.store.teacher_totals(up_to_round=round_ - 1))
        with stage(self.console, f"round {round_} · annotate", len(todo)) as update:
            try:
                results = parts.annotator.annotate_many(items, concurrency=self.config.teacher.in_flight())
                for done, (example, result) in enumerate(results, start=1):
                    if isinstance(result, Annotation):
                        self.store.add_annotation(round_, example.id, result)
                    else:
                        self.store.add_rejected(round_, example.id, result.reason, result.raw)
                    update(done)
            except BudgetExhausted as refused:
                # The ledger decides: the whole budget refused the next call (the run stops here), or only
                # the round's limit did (what is left waits for the next round).
                return BUDGET_SPENT if refused.total else None
        return None

    def _deferred(self, round_: int) -> list[str]:
        """Items chosen in earlier rounds that were never annotated: a round's limit (`round_budget`)
        stopped them; they are annotated before this round's own."""
        handled = self.store.handled()
        return [i for r in range(1, round_) for i in self.store.chosen(r) if i not in handled]

    def _student_explanations(self, round_: int, examples: list[Example]) -> dict[str, str]:
        """The student's greedy explanations of the chosen items, for annotators that revise them (CLEAR)."""
        parts = self.parts
        if not examples or not parts.annotator.reads_student_explanation:
            return {}
        stored = self.store.explanations_by_id(round_, "pool")
        missing = [e for e in examples if e.id not in stored]
        if missing:
            with stage(self.console, f"round {round_} · explain {len(missing)} chosen items", len(missing)) as update:
                # explain, not generate: a step-by-step student answering with `predict:` still explains
                # with `explain:`, and that explanation is what CLEAR reviews
                texts = [t[0] for t in parts.student.explain([parts.task.prompt(e) for e in missing], samples=0,
                                                             progress=update)]
            rows = [row for e, t in zip(missing, texts) for row in explanation_rows(parts.task, e, [t])]
            self.store.add_explanations(round_, "pool", rows)
            stored = self.store.explanations_by_id(round_, "pool")
        return {e.id: stored[e.id][0]["text"] for e in examples}

    # --- train and evaluate --------------------------------------------------------------------

    def train(self, round_: int, again: bool = False) -> None:
        """Fine-tune the student on every annotation so far and save the round's adapter. again: the round
        was trained before (its record stands) and its adapter lost; the same training makes the same
        weights, so what they wrote is kept."""
        parts = self.parts
        # In pool order, not in the order the teacher's replies came back (which varies with `concurrency`
        # and the network): the same config trains on the same sequence and gets the same student.
        records = training_records(parts.task, parts.pool, self.store.annotations(up_to_round=round_))
        warm = self.config.training.warm_start and round_ > 1
        # What an earlier training of this round (a round finished again under a raised budget) was
        # evaluated on belongs to those weights, not to the ones trained now.
        if not again:
            self.store.forget_explanations(round_, ("test", "validation"))
        with stage(self.console, f"round {round_} · train on {len(records)}") as update:
            report = parts.student.train(
                records, self.config.training, seed=round_seed(self.config.seed, round_), warm_start=warm, progress=update,
                log_dir=self.dir.trainer_logs(round_), run_name=f"{self.config.name}-round{round_}",
            )
        adapter = self.dir.adapter(round_)
        adapter.parent.mkdir(parents=True, exist_ok=True)
        parts.student.save_adapter(adapter)
        if not again:
            self.store.add_training(round_, report.examples, report.steps, report.loss, report.seconds, report.tokens)

    def evaluate(self, round_: int) -> float:
        """The student's accuracy on the test split (and on the validation split, if any: metrics
        `val_accuracy`, `val_correct`, `val_total`), with every explanation stored."""
        parts = self.parts
        if parts.validation:
            checked = self._evaluate_on(round_, "validation", parts.validation, "validate")
            self.store.set_metrics(round_, "validation", {f"val_{k}": v for k, v in checked.metrics().items()})
        result = self._evaluate_on(round_, "test", parts.test, "evaluate")
        self.store.set_metrics(round_, "test", result.metrics())
        return result.accuracy

    def _evaluate_on(self, round_: int, role: str, examples: list[Example], verb: str) -> Evaluation:
        """The student's texts for `examples`, written every loop.store_every items (those stored before a
        stop are kept), then scored together."""
        parts, ranking = self.parts, self.config.loop.evaluate_by == "ranking"
        texts = {eid: rows[0]["text"] for eid, rows in self.store.explanations_by_id(round_, role).items()}

        def work(items: list[Example], index: int, progress) -> None:
            checked = evaluate(parts.student, parts.task, items, progress=progress, ranking=ranking)
            self.store.add_explanations(round_, role, checked.rows)
            texts.update((row[0], row[2]) for row in checked.rows)

        groups = groups_left(examples, self.config.loop.store_every, lambda e: e.id in texts)
        left = sum(map(len, groups))
        label = f"round {round_} · {verb} on {len(examples)}" + (f" ({left} left)" if left < len(examples) else "")
        in_groups(self.console, label, groups, 1, work)
        return score_texts(parts.task, examples, [texts[e.id] for e in examples])
