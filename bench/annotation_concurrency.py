"""Annotation wall time with 1 and with 8 teacher requests in flight, and the calls a rerun makes.

The teacher is a local OpenAI-compatible server (tests/fakes) that answers after a fixed delay, as a
remote API does; a CPU-bound local model could not show concurrency on 2 cores. The annotator is CoT on
e-SNLI items of the packaged sample, through the real stack: `openai` client, ledger, response cache.
A rerun of the 8-in-flight run on the same cache must make no call at all.

    python bench/annotation_concurrency.py [--items 64] [--delay 0.2] [--concurrency 8]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fakes

from elad.annotation import Annotation, CotAnnotator  # noqa: E402
from elad.tasks.esnli import EsnliTask  # noqa: E402
from elad.store import ResponseCache  # noqa: E402
from elad.teachers import Budget, CachedTeacher, Ledger, OpenAITeacher  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402


def words(text: str) -> int:
    return len(text.split())


def annotate(server, examples, concurrency: int, cache_path: Path) -> tuple[float, int, dict]:
    """(seconds, requests the server received, {example id: target})."""
    teacher = OpenAITeacher("fake-teacher", count_tokens=words, base_url=server.base_url, timeout=30,
                            max_retries=2, concurrency=concurrency)
    cached = CachedTeacher(teacher, ResponseCache(cache_path))
    annotator = CotAnnotator(EsnliTask(), cached, Ledger(Budget(), count_tokens=words), 64)
    before = len(server.seen)
    started = time.perf_counter()
    targets = {e.id: r.target for e, r in annotator.annotate_many(examples, concurrency=concurrency)
               if isinstance(r, Annotation)}
    seconds = time.perf_counter() - started
    cached.cache.close()
    teacher.close()
    return seconds, len(server.seen) - before, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the server waits before answering")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    examples = EsnliTask().load("valid")[: args.items]
    labels = {e.question: e.answer for e in examples}

    def answer(messages, body):  # a teacher that is right, with a one-line rationale
        question = messages[-1]["content"].split("\nDoes the premise")[0]
        return f"Reading the premise against the hypothesis.\nSo the answer is {labels.get(question, 'neutral')}."

    with FakeOpenAIServer(answer=answer, delay=args.delay) as server, tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        t1, calls1, targets1 = annotate(server, examples, 1, scratch / "one.db")
        print(f"1 in flight: {len(examples)} items in {t1:.2f} s, {calls1} calls ({len(targets1)} annotations)")
        tn, callsn, targetsn = annotate(server, examples, args.concurrency, scratch / "many.db")
        print(f"{args.concurrency} in flight: {len(examples)} items in {tn:.2f} s, {callsn} calls "
              f"({len(targetsn)} annotations)")
        tr, rerun_calls, targetsr = annotate(server, examples, args.concurrency, scratch / "many.db")
        print(f"rerun, {args.concurrency} in flight, same cache: {tr:.2f} s, {rerun_calls} calls")
        same = targets1 == targetsn == targetsr
        print(f"server delay {args.delay} s; ideal 1-in-flight time {len(examples) * args.delay:.1f} s; "
              f"annotations identical across runs: {same}")
    speedup = t1 / tn
    print(f"speedup_{args.concurrency}_vs_1={speedup:.2f} rerun_calls={rerun_calls}")


if __name__ == "__main__":
    main()
