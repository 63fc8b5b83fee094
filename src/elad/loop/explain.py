"""The student's view of the pool in one round: its explanations and its answer after each step.

Computed only as far as the round's strategy needs it, stored before selection uses it, and read back
from the store when a round is resumed (so a crash after sampling does not sample again).
"""

import time
from collections.abc import Callable

from rich.console import Console

from elad.config import SelectionConfig
from elad.loop.progress import groups_left, in_groups
from elad.selection import ANSWER_SCORES, EXPLANATIONS, SAMPLES, RoundView, measures
from elad.store import RunStore
from elad.students import Student
from elad.tasks import ANSWER_CUE, Example, Task
from elad.tasks.steps import split_steps, step_segments


def reasoning_steps(text: str) -> list[str]:
    """The explanation's steps without its answer sentence: prefix i = the first i reasoning steps, as
    written (a sentence that continues a line keeps its leading space: tasks/steps.step_segments)."""
    steps = step_segments(text)
    while steps and ANSWER_CUE.lower() in steps[-1].lower():
        steps.pop()
    return steps


def explanation_rows(task: Task, example: Example, texts: list[str]) -> list[tuple]:
    """Store rows (example_id, sample, text, steps, answer, correct) for one item's explanations."""
    rows = []
    for sample, text in enumerate(texts):
        answer = task.parse_answer(text, example)
        rows.append((example.id, sample, text, split_steps(text), answer, int(task.is_correct(answer, example.answer))))
    return rows


GROUP_SEED_STRIDE = 7_777_777  # far from the next round's seed (+1) and the next run seed's (+1_000_003)


def group_seed(seed: int, index: int) -> int:
    """The sampling seed of a stage's group `index`: group 0 samples with the round's seed itself, and no
    later group with another round's."""
    return seed + index * GROUP_SEED_STRIDE


def write_explanations(
    store: RunStore, round_: int, task: Task, student: Student, examples: list[Example], settings: SelectionConfig,
    samples: int, seed: int, console: Console, group: int,
) -> None:
    """Greedy (+ `samples` sampled) explanations of the items not yet explained this round, stored every
    `group` items (group k samples with `group_seed(seed, k)`)."""
    done = set(store.explanations_by_id(round_, "pool"))
    groups = groups_left(examples, group, lambda e: e.id in done)

    def work(items: list[Example], index: int, progress) -> None:
        texts = student.explain([task.prompt(e) for e in items], samples=samples, temperature=settings.temperature,
                                top_p=settings.top_p, seed=group_seed(seed, index), progress=progress)
        store.add_explanations(round_, "pool", [row for example, item_texts in zip(items, texts)
                                                for row in explanation_rows(task, example, item_texts)])

    left = sum(map(len, groups))
    label = f"round {round_} · explain {left} pool items" + (f" × {1 + samples}" if samples else "")
    in_groups(console, label, groups, 1 + samples, work)


def write_answer_scores(
    store: RunStore, round_: int, task: Task, student: Student, examples: list[Example], console: Console, group: int
) -> None:
    """The answer distribution after each prefix of each item's greedy explanation."""
    done = store.answer_scores(round_)
    explanations = store.explanations_by_id(round_, "pool")

    def work(items: list[Example], index: int, progress) -> None:
        scores = student.answer_scores(
            [task.prompt(e) for e in items], [reasoning_steps(explanations[e.id][0]["text"]) for e in items],
            [task.candidates(e) for e in items], parse=task.parse_answer, progress=progress,
        )
        store.add_answer_scores(round_, {e.id: s for e, s in zip(items, scores)})

    in_groups(console, f"round {round_} · answer after each step", groups_left(examples, group, lambda e: e.id in done),
              1, work)


def forced_rows(example_id: str, distributions: list[dict[str, float]]) -> list[tuple]:
    """Store rows (example_id, sample, answer, distribution) for one item's forced answers; an open answer
    that could not be parsed ("") is no answer (None)."""
    rows = []
    for sample, distribution in enumerate(distributions):
        top = measures.top_answer(measures.normalise(distribution))
        rows.append((example_id, sample, top or None, distribution))
    return rows


def write_forced_answers(
    store: RunStore, round_: int, task: Task, student: Student, examples: list[Example], console: Console, group: int
) -> None:
    """The answer the student gives when made to answer after each of its explanations of each item (its
    answer sentence left out), so that no answer is read from an unfinished or prompt-echoing text."""
    forced = store.forced_answers(round_, "pool")
    explanations = store.explanations_by_id(round_, "pool")

    def work(items: list[Example], index: int, progress) -> None:
        distributions = student.final_answers(
            [task.prompt(e) for e in items], [[reasoning_steps(x["text"]) for x in explanations[e.id]] for e in items],
            [task.candidates(e) for e in items], parse=task.parse_answer, progress=progress,
        )
        store.add_forced_answers(round_, "pool", [row for e, item_distributions in zip(items, distributions)
                                                  for row in forced_rows(e.id, item_distributions)])

    def done(e: Example) -> bool:
        return all((e.id, s) in forced for s in range(len(explanations[e.id])))

    in_groups(console, f"round {round_} · answer after each explanation", groups_left(examples, group, done), 1, work)


def write_step_and_forced_answers(
    store: RunStore, round_: int, task: Task, student: Student, examples: list[Example], console: Console, group: int
) -> None:
    """`write_answer_scores` and `write_forced_answers` in one pass, for a strategy that reads both: the
    prompt and the greedy explanation are read once, for its steps and its end."""
    scored, forced = store.answer_scores(round_), store.forced_answers(round_, "pool")
    explanations = store.explanations_by_id(round_, "pool")

    def work(items: list[Example], index: int, progress) -> None:
        steps, ends = student.step_and_final_answers(
            [task.prompt(e) for e in items], [[reasoning_steps(x["text"]) for x in explanations[e.id]] for e in items],
            [task.candidates(e) for e in items], parse=task.parse_answer, progress=progress,
        )
        store.add_answer_scores(round_, {e.id: s for e, s in zip(items, steps)})
        store.add_forced_answers(round_, "pool", [row for e, d in zip(items, ends) for row in forced_rows(e.id, d)])

    def done(e: Example) -> bool:
        return e.id in scored and all((e.id, s) in forced for s in range(len(explanations[e.id])))

    in_groups(console, f"round {round_} · answer after each step and each explanation",
              groups_left(examples, group, done), 1, work)


def timed(store: RunStore, round_: int, part: str, write: Callable[[], None]) -> None:
    """Run one part of the round's view of the pool and store its seconds (metrics seconds_<part>)."""
    started = time.time()
    write()
    store.set_metrics(round_, "stages", {f"seconds_{part}": time.time() - started})


def round_view(
    store: RunStore, round_: int, task: Task, student: Student, candidates: list[Example], needs: frozenset[str],
    settings: SelectionConfig, seed: int, console: Console, group: int,
) -> RoundView:
    """What the round's strategy reads about its candidates, computed where missing and stored every
    `group` items (loop.store_every)."""
    view = RoundView(round=round_, candidates=candidates, seed=seed, is_correct=task.is_correct)
    if not needs:
        return view
    samples = settings.samples if SAMPLES in needs else 0
    timed(store, round_, "explain",
          lambda: write_explanations(store, round_, task, student, candidates, settings, samples, seed, console, group))
    forced = SAMPLES in needs and settings.forced_answers  # the strategy reads the explanations' own answers
    scored = ANSWER_SCORES in needs
    args = (store, round_, task, student, candidates, console, group)
    if forced and scored:  # one pass for both: its time is the score part's
        timed(store, round_, "score", lambda: write_step_and_forced_answers(*args))
    elif forced:
        timed(store, round_, "force", lambda: write_forced_answers(*args))
    elif scored:
        timed(store, round_, "score", lambda: write_answer_scores(*args))
    if scored:
        view.answer_scores = store.answer_scores(round_)
    if needs & {EXPLANATIONS, SAMPLES, ANSWER_SCORES}:
        view.explanations = store.explanations_by_id(round_, "pool")
    return view
