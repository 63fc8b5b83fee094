"""Checks a run's config can pass before anything is written or loaded: `elad run` (and each grid) calls
`preflight(config)` before it makes the run directory, its store or the student.

What is checked, each an EladError naming the key or the file:
- the teacher's API key: a backend that reads one (`openai`) finds its environment variable set, so a
  missing key is named before minutes go into loading the student;
- the annotator and the teacher go together: CLEAR needs a teacher that reads the student's steps, and a
  replay teacher only replays recordings (every item would fall back to CoT, a `clear` run or grid cell a
  copy of its `cot` twin that says nothing about CLEAR);
- the task's data: the dataset folder exists, the pool and the test split load (a malformed row is named
  by file and line, as in the run itself) and neither comes out empty.

The data is read the way the run reads it (`load_questions`), so a config that passes here does not fail
there on its data; the price is reading the splits twice, once here and once in the run.
"""

from elad.config import ExperimentConfig
from elad.errors import EladError


def preflight(config: ExperimentConfig) -> None:
    """Raise EladError if the config cannot run; read-only, loads no model."""
    check_teacher_key(config)
    check_annotator(config)
    check_data(config)


def preflight_cells(cells: list[ExperimentConfig]) -> None:
    """preflight for a grid's cells, which differ only in strategy, annotator and seed: one check of the
    teacher's key and the data stands for every cell, the annotator is checked per cell."""
    preflight(cells[0])
    for cell in cells[1:]:
        check_annotator(cell)


def check_teacher_key(config: ExperimentConfig) -> None:
    from elad.teachers import TEACHERS, OpenAITeacher
    from elad.teachers.openai_compat import read_api_key

    backend = TEACHERS.get(config.teacher.backend)
    if isinstance(backend, type) and issubclass(backend, OpenAITeacher):
        read_api_key(config.teacher.api_key_env, config.teacher.base_url)


def check_annotator(config: ExperimentConfig) -> None:
    from elad.teachers import TEACHERS

    if config.annotation.method == "clear" and getattr(TEACHERS.get(config.teacher.backend), "replays", False):
        raise EladError(
            f"annotation.method: clear needs a teacher that reviews the student's steps, and teacher.backend: "
            f"{config.teacher.backend} only replays recorded rationales: every item would be annotated by CoT "
            "instead. Use a live teacher (backend openai or local; docs/teachers.md) or annotation.method: cot")


def check_data(config: ExperimentConfig) -> None:
    from elad.loop.build import load_questions, splits

    task = config.task.open()
    pool, test, _ = load_questions(config, task)
    pool_split, test_split = splits(config, task)
    if not test:
        raise EladError(f"{_where(task, test_split)}: the test split '{test_split}' has no questions"
                        f"{_skipped(task, test_split)} (task.test_split); the run would have nothing to evaluate on")
    if not pool:
        held_out = " once the test questions are held out of it" if pool_split == test_split else ""
        raise EladError(f"{_where(task, pool_split)}: the pool split '{pool_split}' has no questions{held_out}"
                        f"{_skipped(task, pool_split)} (task.pool_split); the run would have nothing to select")


def _skipped(task, split: str) -> str:
    from elad.tasks.base import canonical_split

    count = task.skipped.get(canonical_split(split), 0)
    return f" ({count} malformed rows skipped)" if count else ""


def _where(task, split: str) -> str:
    """The split's file(s), or the task's data folder where the task does not say."""
    from elad.tasks.base import canonical_split

    try:
        files = task.files(canonical_split(split))
    except (EladError, NotImplementedError):
        files = []
    if files:
        return ", ".join(str(f) for f in files)
    return f"task.path ({getattr(task, 'root', None) or 'the packaged sample'})"
