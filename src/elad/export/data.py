"""What a run bought, as a dataset: `elad export-data RUN_DIR --out DIR`.

    annotations.jsonl         one row per annotation: the question and the student's prompt, the rationale,
                              answer and training target, the gold answer where known, the teacher and
                              what it cost, the round, the selection score, and the method (CoT or CLEAR,
                              with the student steps CLEAR kept and the teacher's verdicts)
    messages.jsonl            {id, messages: [user, assistant]}: conversational SFT data (TRL's SFTTrainer)
    prompt_completion.jsonl   {id, prompt, completion}: prompt-completion SFT data
    README.md                 a dataset card whose `configs` let `datasets.load_dataset(DIR)` open the
                              annotations and `load_dataset(DIR, "messages")` the chat data

With `parquet=True`, each table is written as .parquet too (pyarrow), and the card points at those.
"""

import json
from pathlib import Path

from elad.config import load_config
from elad.errors import EladError
from elad.export.folders import source_and_target, staged
from elad.store import RunStore
from elad.tasks import Example, Task

TABLES = ("annotations", "messages", "prompt_completion")
CLEAR_KEYS = ("outcome", "student_steps", "kept_steps", "first_wrong", "verdicts", "continuation")


def export_data(run_dir: str | Path, out_dir: str | Path, parquet: bool = False) -> tuple[Path, int]:
    """Write the run's annotations to `out_dir` (new or empty); returns (out_dir, rows written)."""
    run, out_dir = source_and_target(run_dir, out_dir)
    config = load_config(run.config_path)
    task = config.task.open()
    store = run.open_store(readonly=True)
    try:
        rows = annotation_rows(store, task, teacher=f"{config.teacher.backend}/{config.teacher.model}")
    finally:
        store.close()
    if not rows:
        raise EladError(f"{run.path}: the run has no annotations yet")
    tables = {"annotations": rows,
              "messages": [{"id": r["id"], "messages": [{"role": "user", "content": r["prompt"]},
                                                        {"role": "assistant", "content": r["target"]}]} for r in rows],
              "prompt_completion": [{"id": r["id"], "prompt": r["prompt"], "completion": r["target"]} for r in rows]}
    with staged(out_dir) as staging:
        for name, table in tables.items():
            _write_jsonl(staging / f"{name}.jsonl", table)
            if parquet:
                _write_parquet(staging / f"{name}.parquet", table)
        (staging / "README.md").write_text(dataset_card(config, rows, "parquet" if parquet else "jsonl"),
                                           encoding="utf-8")
    return out_dir, len(rows)


def annotation_rows(store: RunStore, task: Task, teacher: str) -> list[dict]:
    spend, selected = store.teacher_spend_by_example(), store.chosen_scores()
    rows = []
    for annotation in store.annotations():
        example_id = annotation["example_id"]
        example = _example(store.example(example_id) or {"id": example_id, "question": "", "answer": ""})
        details = json.loads(annotation["details"] or "{}")
        cost = spend.get(example_id, {})
        selection = selected.get(example_id, {})
        gold = example.answer or None
        rows.append({
            "id": example_id,
            "round": annotation["round"],
            "method": annotation["annotator"],
            "question": example.question,
            "prompt": task.prompt(example),
            "rationale": annotation["rationale"],
            "answer": annotation["answer"],
            "target": annotation["target"],
            "gold": gold,
            "agrees_with_gold": None if gold is None else task.is_correct(annotation["answer"], gold),
            "teachers": cost.get("teachers") or [teacher],
            "teacher_calls": cost.get("calls", 0),
            "prompt_tokens": cost.get("prompt_tokens", 0),
            "completion_tokens": cost.get("completion_tokens", 0),
            "dollars": cost.get("dollars", 0.0),
            "selection_strategy": selection.get("strategy"),
            "selection_score": selection.get("score"),
            "selection_parts": json.dumps(selection.get("parts", {})),
            "clear": json.dumps({k: details[k] for k in CLEAR_KEYS if k in details}),
        })
    return rows


def _example(row: dict) -> Example:
    return Example(row["id"], row["question"], row["answer"], row.get("rationale"),
                   tuple(json.loads(row.get("choices") or "[]")))


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_parquet(path: Path, rows: list[dict]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise EladError("--parquet needs pyarrow (pip install pyarrow, or the `data` extra)") from None
    pq.write_table(pa.Table.from_pylist(rows), path)


def dataset_card(config, rows: list[dict], form: str) -> str:
    spent = sum(r["dollars"] for r in rows)
    tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
    agree = [r["agrees_with_gold"] for r in rows if r["agrees_with_gold"] is not None]
    configs = "\n".join(f"- config_name: {name}\n  data_files: {name}.{form}" + ("\n  default: true" if i == 0 else "")
                        for i, name in enumerate(TABLES))
    return "\n".join([
        "---", "configs:", configs, "tags: [elad, distillation, rationales]", "---", "",
        f"# {config.name}: teacher rationales bought by an elad run", "",
        f"{len(rows)} annotations of {config.task.name} by {config.teacher.backend} / {config.teacher.model} "
        f"({config.annotation.method}), chosen by {config.selection.strategy} selection: "
        f"{tokens:,} teacher tokens, ${spent:.4f}."
        + (f" {sum(agree)} of {len(agree)} teacher answers agree with the gold label." if agree else ""), "",
        "| config | rows |", "|---|---|",
        "| `annotations` (default) | everything: question, prompt, rationale, answer, target, gold, teacher, "
        "cost, round, selection score, method (CLEAR's kept steps and verdicts in `clear`) |",
        "| `messages` | `messages`: the student's prompt and the target, for chat SFT (TRL's SFTTrainer) |",
        "| `prompt_completion` | `prompt`, `completion`: the same as prompt-completion pairs |", "",
        "```python", "from datasets import load_dataset",
        "rows = load_dataset(PATH, split=\"train\")                 # the annotations",
        "chat = load_dataset(PATH, \"messages\", split=\"train\")     # for SFTTrainer", "```", "",
    ])
