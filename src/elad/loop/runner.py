"""The active distillation loop: select -> annotate -> train -> evaluate, round after round.

Every stage writes its results to the run store before the next begins. Rerunning on the same run
directory skips finished rounds and, inside an unfinished one, reuses its stored explanations,
selection and annotations (and the teacher cache), so nothing is paid for twice.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from elad.annotation import Annotation
from elad.config import ExperimentConfig
from elad.loop.build import Parts, build_parts
from elad.loop.evaluate import evaluate
from elad.loop.explain import explanation_rows, round_view
from elad.loop.progress import stage, summary_line
from elad.loop.resume import ALL_ROUNDS_DONE, BUDGET_SPENT, EXTENSION_PENDING, AtDoneRound, admit_config, at_done_round
from elad.loop.stopping import accuracy_says_stop, transferred
from elad.report import round_summaries, write_report
from elad.store import RunDir
from elad.students.common import TrainRecord
from elad.tasks import Example
from elad.teachers import BudgetExhausted, round_limit

def round_seed(seed: int, round_: int) -> int:
    return seed * 1_000_003 + round_


class Experiment:
    def __init__(self, config: ExperimentConfig, run_dir: str | Path, console: Console | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.dir = RunDir(self.run_dir)
        self.console = console or Console()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Held from here to the end of `run`: a second process on the directory stops before it opens the
        # store (which waits on the first one's writes) or rewrites its config.
        self._lock = self.dir.lock()
        try:
            self.store = self.dir.open_store()
            admit_config(self.dir, self.store, config, self.console)
            self.store.set_meta("name", config.name)
        except BaseException:
            self._lock.close()
            raise
        self.student_round = 0  # which round's weights the student holds (0 = the base model)

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> list[dict]:
        if self._lock.closed:  # run again after an earlier `run` released it
            self._lock = self.dir.lock()
        try:
            return self._run()
        finally:
            self._lock.close()  # releases the lock

    def _run(self) -> list[dict]:
        parts = build_parts(self.config, self.store, self.dir, self.console)
        if self.config.loop.evaluate_initial and not self.store.round_done(0):
            self._round_zero(parts)
        extended = self.store.get_meta(EXTENSION_PENDING) == "1"
        for round_ in range(1, self.config.loop.rounds + 1):
            if self.store.round_done(round_):
                budget_spent = parts.ledger.exhausted(self.config.teacher.max_tokens)
                next_step = at_done_round(self.store, round_, extended, budget_spent)
                if next_step is AtDoneRound.STOP:
                    break
                if next_step is AtDoneRound.SKIP:
                    continue
                self.console.print(f"round {round_} was stopped by the budget; finishing it under the new one")
            stop_reason = self._round(parts, round_)
            if stop_reason:
                self.console.print(f"[bold]stopped after round {round_}: {stop_reason}")
                break
        if extended:
            self.store.set_meta(EXTENSION_PENDING, "0")
        write_report(self.store, self.dir.report_dir)
        return self.summaries()

    def _deferred(self, round_: int) -> list[str]:
        """Items chosen in earlier rounds that were never annotated: a round's limit (`round_budget`)
        stopped them; they are annotated before this round's own."""
        handled = self.store.handled()
        return [i for r in range(1, round_) for i in self.store.chosen(r) if i not in handled]

    def _round_zero(self, parts: Parts) -> None:
        started = time.time()
        self.store.start_round(0)
        with self._timed(0, "evaluate"):
            self._evaluate(parts, 0)
        self.store.finish_round(0)
        self._announce(0, started)

    def _round(self, parts: Parts, round_: int) -> str | None:
        started = time.time()
        self.store.start_round(round_)
        self._student_at(parts, round_ - 1)
        with self._timed(round_, "select"):
            chosen = self.store.chosen(round_) or self._select(parts, round_)
        stop_reason = transferred(self.config.loop, self.store, round_) if chosen else "the pool is exhausted"
        if stop_reason is None:
            with self._timed(round_, "annotate"):
                stop_reason = self._annotate(parts, round_, chosen)
        if self._annotated_in(round_):
            with self._timed(round_, "train"):
                self._train(parts, round_)
            with self._timed(round_, "evaluate"):
                self._evaluate(parts, round_)
            stop_reason = stop_reason or accuracy_says_stop(self.config.loop, self._accuracy_history(round_))
        if stop_reason is None and round_ == self.config.loop.rounds:
            stop_reason = ALL_ROUNDS_DONE
        self.store.finish_round(round_, stop_reason)
        self._announce(round_, started)
        return stop_reason if stop_reason != ALL_ROUNDS_DONE else None

    @contextmanager
    def _timed(self, round_: int, stage_name: str) -> Iterator[None]:
        """Record the stage's wall time in the store (metrics split "stages", `seconds_<stage>`) once it
        ends: where a round's time goes (`elad status`, metrics.csv). A resumed stage records its last run."""
        started = time.time()
        yield
        self.store.set_metrics(round_, "stages", {f"seconds_{stage_name}": time.time() - started})

    def _accuracy_history(self, round_: int) -> list[float]:
        return [r["accuracy"] for r in self.summaries() if r.get("accuracy") is not None and r["round"] <= round_]

    def _annotated_in(self, round_: int) -> bool:
        return any(a["round"] == round_ for a in self.store.annotations(up_to_round=round_))

    def _student_at(self, parts: Parts, round_: int) -> None:
        """Make the student hold the weights trained in `round_` (after a resume it starts from the base)."""
        if self.student_round == round_:
            return
        adapter = self.dir.adapter(round_)
        if round_ > 0 and adapter.exists():
            parts.student.load_adapter(adapter)
        else:
            parts.student.reset()
        self.student_round = round_

    # --- select --------------------------------------------------------------------------------

    def _select(self, parts: Parts, round_: int) -> list[str]:
        seed = round_seed(self.config.seed, round_)
        candidates = parts.batch.candidates(parts.pool, self.store.ever_chosen(), seed)
        if not candidates:
            return []
        strategy = parts.batch.strategy_for(round_)
        view = round_view(self.store, round_, parts.task, parts.student, candidates, strategy.needs,
                          self.config.selection, seed, self.console)
        ranked, chosen = parts.batch.choose(round_, strategy.score(view), candidates, seed)
        self.store.add_selection(round_, strategy.name, [(i, s.score, s.parts) for i, s in ranked], chosen=set(chosen))
        return chosen

    # --- annotate ------------------------------------------------------------------------------

    def _annotate(self, parts: Parts, round_: int, chosen: list[str]) -> str | None:
        by_id = {e.id: e for e in parts.pool}
        handled = self.store.handled()
        todo = [by_id[i] for i in self._deferred(round_) + chosen if i not in handled]
        explanations = self._student_explanations(parts, round_, todo)
        items = [(example, explanations.get(example.id)) for example in todo]
        parts.journal.at(round_, self.config.annotation.method)
        parts.ledger.limit = round_limit(self.config.loop.round_budget, self.store.teacher_totals(up_to_round=round_ - 1))
        with stage(self.console, f"round {round_} · annotate", len(todo)) as update:
            try:
                results = parts.annotator.annotate_many(items, concurrency=self.config.teacher.concurrency)
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

    def _student_explanations(self, parts: Parts, round_: int, examples: list[Example]) -> dict[str, str]:
        """The student's greedy explanations of the chosen items, for annotators that revise them (CLEAR)."""
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

    def _train(self, parts: Parts, round_: int) -> None:
        # In pool order, not in the order the teacher's replies came back (which varies with `concurrency`
        # and the network): the same config trains on the same sequence and gets the same student.
        annotations = {a["example_id"]: a for a in self.store.annotations(up_to_round=round_)}
        records = [
            TrainRecord(prompt=parts.task.prompt(example), target=a["target"], rationale=a["rationale"],
                        answer=a["answer"])
            for example in parts.pool if (a := annotations.get(example.id)) is not None
        ]
        warm = self.config.training.warm_start and round_ > 1
        with stage(self.console, f"round {round_} · train on {len(records)}") as update:
            report = parts.student.train(
                records, self.config.training, seed=round_seed(self.config.seed, round_), warm_start=warm, progress=update,
                log_dir=self.dir.trainer_logs(round_), run_name=f"{self.config.name}-round{round_}",
            )
        self.student_round = round_
        adapter = self.dir.adapter(round_)
        adapter.parent.mkdir(parents=True, exist_ok=True)
        parts.student.save_adapter(adapter)
        self.store.add_training(round_, report.examples, report.steps, report.loss, report.seconds, report.tokens)

    def _evaluate(self, parts: Parts, round_: int) -> float:
        with stage(self.console, f"round {round_} · evaluate on {len(parts.test)}", len(parts.test)) as update:
            result = evaluate(parts.student, parts.task, parts.test, progress=update,
                              ranking=self.config.loop.evaluate_by == "ranking")
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
                "teacher_calls": totals.calls,
                "teacher_tokens": totals.prompt_tokens + totals.completion_tokens,
                "teacher_dollars": totals.dollars,
                "seconds": time.time() - started,
            },
        )
        row = next(r for r in self.summaries() if r["round"] == round_)
        self.console.print(summary_line(row))
        write_report(self.store, self.dir.report_dir)

    def summaries(self) -> list[dict]:
        return round_summaries(self.store)
