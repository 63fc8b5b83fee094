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

from elad.config import ExperimentConfig
from elad.errors import EladError
from elad.loop.build import Parts, build_parts
from elad.loop.progress import summary_line
from elad.loop.resume import (
    ALL_ROUNDS_DONE, EXTENSION_PENDING, AtDoneRound, admit_config, at_done_round, trained_on_all,
)
from elad.loop.stages import Stages
from elad.loop.stopping import accuracy_says_stop, transferred
from elad.loop.trackers import RoundTrackers
from elad.report import round_summaries, write_report
from elad.store import RunDir
from elad.students.common import fitted_new_tokens


def gold_agreement(parts: Parts, annotations: list[dict]) -> dict[str, float]:
    """How often the teacher's answers so far agree with the gold answers, where the pool has them:
    `teacher_agrees` (a share) over `teacher_checked` annotations. A noisy teacher caps what any selection
    can teach; reports show it beside the accuracy."""
    gold = {e.id: e.answer for e in parts.pool if e.answer}
    checked = [a for a in annotations if a["example_id"] in gold]
    if not checked:
        return {}
    agree = sum(bool(parts.task.is_correct(a["answer"], gold[a["example_id"]])) for a in checked)
    return {"teacher_agrees": agree / len(checked), "teacher_checked": float(len(checked))}


class Experiment:
    def __init__(self, config: ExperimentConfig, run_dir: str | Path, console: Console | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.dir = RunDir(self.run_dir)
        self.console = console or Console()
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise EladError(f"{self.run_dir}: is a file, not a run directory; choose another --run-dir")
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

    def close(self) -> None:
        """Let the run directory go: its store closed and its lock released, for another process to take."""
        self.store.close()
        self._lock.close()

    def _run(self) -> list[dict]:
        parts = build_parts(self.config, self.store, self.dir, self.console)
        stages = Stages(self.config, self.store, self.dir, parts, self.console)
        self.trackers = RoundTrackers(self.config.training.report_to, self.dir.tracker_logs, self.config.name,
                                      self.config.model_dump(mode="json"))
        try:
            self._rounds(stages)
        finally:
            self.trackers.close()
        write_report(self.store, self.dir.report_dir)
        return self.summaries()

    def _rounds(self, stages: Stages) -> None:
        parts = stages.parts
        if self.config.loop.evaluate_initial and not self.store.round_done(0):
            self._round_zero(stages)
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
            stop_reason = self._round(stages, round_)
            if stop_reason:
                self.console.print(f"[bold]stopped after round {round_}: {stop_reason}")
                break
        if extended:
            self.store.set_meta(EXTENSION_PENDING, "0")

    def _round_zero(self, stages: Stages) -> None:
        started = time.time()
        self.store.start_round(0)
        with self._timed(0, "evaluate"):
            stages.evaluate(0)
        self.store.finish_round(0)
        self._announce(0, started)

    def _round(self, stages: Stages, round_: int) -> str | None:
        started = time.time()
        self.store.start_round(round_)
        if not trained_on_all(self.store, round_):  # it selects, annotates (CLEAR reads it), or trains on from it
            self._student_at(stages, round_ - 1)
        chosen = self.store.chosen(round_)  # selected before a stop: stored
        # the length the student writes at, for selecting and for what CLEAR reads: a resumed round too
        self._fit_generation(stages.parts, round_ - 1, round_, "select")
        if not chosen:
            with self._timed(round_, "select"):
                chosen = stages.select(round_)
        stop_reason = (transferred(self.config.loop, self.store, round_, stages.parts.batch.strategy_for(round_))
                       if chosen else "the pool is exhausted")
        if stop_reason is None:
            with self._timed(round_, "annotate"):
                stop_reason = stages.annotate(round_, chosen)
        if self._annotated_in(round_):
            if trained_on_all(self.store, round_):
                self._student_at(stages, round_)  # trained before a stop: its saved adapter, not hours again
            else:
                with self._timed(round_, "train"):
                    stages.train(round_)
                self.student_round = round_
            self._fit_generation(stages.parts, round_, round_, "evaluate")
            with self._timed(round_, "evaluate"):
                stages.evaluate(round_)
            stop_reason = stop_reason or accuracy_says_stop(self.config.loop, self._accuracy_history(round_))
        if stop_reason is None and round_ == self.config.loop.rounds:
            stop_reason = ALL_ROUNDS_DONE
        self.store.finish_round(round_, stop_reason)
        self._announce(round_, started, stages.parts)
        return stop_reason if stop_reason != ALL_ROUNDS_DONE else None

    @contextmanager
    def _timed(self, round_: int, stage_name: str) -> Iterator[None]:
        """Record the stage's wall time in the store (metrics split "stages", `seconds_<stage>`) once it
        ends: where a round's time goes (`elad status`, metrics.csv). A resumed stage records its last run."""
        started = time.time()
        yield
        self.store.set_metrics(round_, "stages", {f"seconds_{stage_name}": time.time() - started})

    def _accuracy_history(self, round_: int) -> list[float]:
        """The validation accuracies up to `round_`: what the stopping rules read (never the test set's)."""
        return [r["val_accuracy"] for r in self.summaries() if r.get("val_accuracy") is not None and r["round"] <= round_]

    def _annotated_in(self, round_: int) -> bool:
        return any(a["round"] == round_ for a in self.store.annotations(up_to_round=round_))

    def _student_at(self, stages: Stages, round_: int) -> None:
        """Make the student hold the weights trained in `round_` (after a resume it starts from the base).
        Weights the store says were trained but whose adapter is gone (deleted, or a run kept as its store
        alone) are trained again from the stored annotations, with the same seed and order: the run store
        is all a run needs to go on, never a student that silently lost its training."""
        if self.student_round == round_:
            return
        adapter = self.dir.adapter(round_)
        if round_ > 0 and not adapter.exists() and trained_on_all(self.store, round_):
            self.console.print(f"[yellow]round {round_}: its trained weights are missing ({adapter}); training "
                               "them again from the stored annotations")
            if self.config.training.warm_start and round_ > 1:
                self._student_at(stages, round_ - 1)
            stages.train(round_, again=True)
        elif round_ > 0 and adapter.exists():
            stages.parts.student.load_adapter(adapter)
        elif round_ > 0 and not any(t["round"] == round_ for t in self.store.training()):
            self._student_at(stages, round_ - 1)  # nothing trained in it (every reply rejected): the round before's
        else:
            stages.parts.student.reset()
        self.student_round = round_

    def _fit_generation(self, parts: Parts, taught_by: int, round_: int, stage_name: str) -> None:
        """Let the student write at most what it was taught by the end of round `taught_by`
        (student.fit_new_tokens); recorded as round `round_`'s `new_tokens_<stage>`."""
        settings = self.config.student
        targets = [a["target"] for a in self.store.annotations(up_to_round=taught_by)] if taught_by > 0 else []
        length = settings.max_new_tokens
        if settings.fit_new_tokens and targets:
            length = fitted_new_tokens([parts.student.count_tokens(t) for t in targets], settings.new_tokens_cap)
        parts.student.max_new_tokens = length
        self.store.set_metrics(round_, "student", {f"new_tokens_{stage_name}": length})

    # --- reporting -----------------------------------------------------------------------------

    def _announce(self, round_: int, started: float, parts: Parts | None = None) -> None:
        totals = self.store.teacher_totals(up_to_round=round_)
        annotations = self.store.annotations(up_to_round=round_)
        self.store.set_metrics(
            round_,
            "teacher",
            {
                "annotations": len(annotations),
                "teacher_calls": totals.calls,
                "teacher_tokens": totals.prompt_tokens + totals.completion_tokens,
                "teacher_dollars": totals.dollars,
                "seconds": time.time() - started,
                **(gold_agreement(parts, annotations) if parts else {}),
            },
        )
        row = next(r for r in self.summaries() if r["round"] == round_)
        self.console.print(summary_line(row))
        self.trackers.log(round_, row)
        write_report(self.store, self.dir.report_dir)

    def summaries(self) -> list[dict]:
        return round_summaries(self.store)
