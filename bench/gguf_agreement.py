"""Does an exported GGUF answer like the student it came from? A run's round is exported (`elad export
--gguf`, f16 and a quantized copy), then the first N test questions of the run are answered greedily by
the transformers student (the run's adapter on its base, as the run evaluated it) and by llama.cpp on
each GGUF. Prints, per file, the share of questions with the same answer and with the same text, and the
generation speed of each engine.

    nice .venv/bin/python -u bench/gguf_agreement.py RUN_DIR --round 1 --items 20 --quant q4_k_m

Last line: gguf_same_answers=<f16>/<quant> gguf_same_text=<f16>/<quant> items=<n>
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.llamacpp
from tests.llamacpp import plain_weight_layouts  # noqa: E402

from elad.config import load_config  # noqa: E402
from elad.export import export_round  # noqa: E402
from elad.store import RunDir  # noqa: E402
from elad.students import Student  # noqa: E402
from elad.tasks import TASKS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--quant", default="q8_0")
    args = parser.parse_args()

    import llama_cpp

    plain_weight_layouts()
    run = RunDir(args.run_dir)
    config = load_config(run.config_path)
    task = TASKS.create(config.task.name, path=config.task.path, **config.task.options)
    store = run.open_store(readonly=True)
    examples = [store.example(i) for i in store.example_ids("test")[: args.items]]
    store.close()
    questions = [task.prompt(_example(task, e)) for e in examples]

    student = Student(config.student.model_copy(update={"dtype": "float32"}))
    student.load_adapter(run.adapter(args.round))
    started = time.perf_counter()
    reference = student.generate(questions)
    hf_seconds = time.perf_counter() - started
    rendered = [student.render_prompt(q) for q in questions]

    out = export_round(args.run_dir, args.round, Path(tempfile.mkdtemp(prefix="elad-gguf-")) / "student", gguf=True,
                       gguf_quant=args.quant)
    answers, texts = {}, {}
    for path in sorted(out.glob("*.gguf"), key=lambda p: "f16" not in p.name):
        llm = llama_cpp.Llama(str(path), n_ctx=1024, n_threads=2, verbose=False)
        started, produced = time.perf_counter(), []
        for prompt in rendered:
            ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
            reply = llm.create_completion(ids, max_tokens=config.student.max_new_tokens, temperature=0.0)
            produced.append(reply["choices"][0]["text"].strip())
        seconds = time.perf_counter() - started
        kind = path.stem.rsplit("-", 1)[1]
        answers[kind] = sum(task.parse_answer(a) == task.parse_answer(b) for a, b in zip(produced, reference))
        texts[kind] = sum(a == b for a, b in zip(produced, reference))
        print(f"{path.name}: {path.stat().st_size / 1e6:.0f} MB, same answer {answers[kind]}/{len(questions)}, "
              f"same text {texts[kind]}/{len(questions)}, {seconds:.1f} s (transformers fp32: {hf_seconds:.1f} s)",
              flush=True)
        llm.close()
    kinds = list(answers)
    print(f"gguf_same_answers={'/'.join(str(answers[k]) for k in kinds)} "
          f"gguf_same_text={'/'.join(str(texts[k]) for k in kinds)} items={len(questions)} files={'/'.join(kinds)}")


def _example(task, row: dict):
    from elad.tasks import Example

    return Example(id=row["id"], question=row["question"], answer=row["answer"])


if __name__ == "__main__":
    main()
