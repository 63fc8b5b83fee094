"""Export a round's student as a standalone Hugging Face model directory: LoRA merged into the weights,
the tokenizer, and a model card (README.md) with the task, teacher, budget spent and accuracy.

`export_round(run_dir, round_, out_dir)` backs `elad export RUN_DIR --round N --out DIR`.
"""

import json
import shutil
import tempfile
from pathlib import Path

from elad.errors import EladError


def export_round(run_dir: str | Path, round_: int, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Write round `round_`'s student to `out_dir` (which must not exist or be empty); returns `out_dir`.
    Round 0 is the untrained base model. The LoRA adapter is merged in fp32 and saved as `dtype`
    (float32 by default: rounding a merged model to bf16 loses most of a small LoRA delta)."""
    from elad.config import load_config
    from elad.store import RunDir
    from elad.students.student import Student

    run, out_dir = RunDir(run_dir), Path(out_dir)
    if not run.config_path.exists() or not run.has_run():
        raise EladError(f"{run.path}: no run here (config.yaml and run.db expected)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise EladError(f"{out_dir}: exists and is not empty; choose a new directory")
    config = load_config(run.config_path)
    adapter = run.adapter(round_)
    if round_ != 0 and not adapter.exists():
        known = ", ".join(map(str, run.trained_rounds())) or "none"
        raise EladError(f"{run.path}: round {round_} has no trained student (rounds with one: {known})")

    store = run.open_store(readonly=True)
    try:
        card = model_card(config, store, round_)
    finally:
        store.close()

    if dtype not in ("float32", "bfloat16"):
        raise EladError(f"export dtype must be float32 or bfloat16, not {dtype}")
    student = Student(config.student.model_copy(update={"dtype": "float32"}))
    if round_ != 0:
        student.load_adapter(adapter)
    model = student.model
    if hasattr(model, "peft_config"):
        model = model.merge_and_unload()
    if dtype == "bfloat16":
        import torch

        model = model.to(torch.bfloat16)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        model.save_pretrained(staging)
        student.tokenizer.save_pretrained(staging)
        (staging / "README.md").write_text(card, encoding="utf-8")
        (staging / "elad.json").write_text(json.dumps(_prompt_format(config), indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _prompt_format(config) -> dict:
    step_by_step = config.training.objective == "step_by_step"
    prefix = ("predict: " if config.training.inference == "predict" else "explain: ") if step_by_step else ""
    return {
        "objective": config.training.objective,
        "inference": config.training.inference if step_by_step else "cot",
        "prompt_prefix": prefix,
        "answer_cue": "So the answer is",
        "task": config.task.name,
    }


def _metric(store, round_: int, split: str, name: str):
    for row in store.metrics():
        if row["round"] == round_ and row["split"] == split and row["name"] == name:
            return row["value"]
    return None


def model_card(config, store, round_: int) -> str:
    totals = store.teacher_totals(up_to_round=round_)
    annotations = len(store.annotations(up_to_round=round_))
    accuracy = _metric(store, round_, "test", "accuracy")
    correct, total = _metric(store, round_, "test", "correct"), _metric(store, round_, "test", "total")
    baseline = _metric(store, 0, "test", "accuracy")
    budget = config.loop.budget
    limits = [f"{budget.calls} calls" if budget.calls else None, f"{budget.tokens:,} tokens" if budget.tokens else None,
              f"${budget.dollars:g}" if budget.dollars else None]
    limits = ", ".join(x for x in limits if x) or "none"
    fmt = _prompt_format(config)
    shown = "not evaluated" if accuracy is None else (
        f"{accuracy:.1%}" + (f" ({int(correct)}/{int(total)})" if correct is not None and total else ""))
    lora = config.student.lora
    method = "full fine-tuning" if lora is None else f"LoRA (r={lora.r}, alpha={lora.alpha}), merged into the weights"
    usage = (f"Prefix the prompt with `{fmt['prompt_prefix']}`: the student was trained with the distilling "
             f"step-by-step objective (alpha={config.training.alpha}) and answers "
             + ("straight away." if fmt["inference"] == "predict" else "with a rationale.")
             if fmt["prompt_prefix"] else
             "Ask with the task's prompt; the student writes its reasoning, then `So the answer is <answer>.`")
    lines = [
        "---",
        f"base_model: {config.student.model}",
        "tags: [elad, distillation, active-learning]",
        "---",
        "",
        f"# {config.name}: round {round_} student",
        "",
        f"A student distilled by elad (active distillation of a teacher's reasoning): base model "
        f"`{config.student.model}`, {method}.",
        "",
        "| | |",
        "|---|---|",
        f"| task | {config.task.name} (pool split `{config.task.pool_split}`, test split `{config.task.test_split}`) |",
        f"| teacher | {config.teacher.backend} / {config.teacher.model} |",
        f"| annotation | {config.annotation.method} |",
        f"| selection | {config.selection.strategy} |",
        f"| training | {config.training.objective}, {config.training.epochs:g} epochs, lr {config.training.learning_rate:g} |",
        f"| round | {round_} of {config.loop.rounds} |",
        f"| annotated examples | {annotations} |",
        f"| teacher spend to this round | {totals.calls} calls, {totals.prompt_tokens + totals.completion_tokens:,} tokens, "
        f"${totals.dollars:.4f} (budget: {limits}) |",
        f"| test accuracy | {shown}" + (f"; untrained: {baseline:.1%}" if baseline is not None and round_ else "") + " |",
        f"| seed | {config.seed} |",
        "",
        "## Use",
        "",
        usage,
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer  # AutoModelForSeq2SeqLM for T5-style",
        "tokenizer = AutoTokenizer.from_pretrained(PATH)",
        "model = AutoModelForCausalLM.from_pretrained(PATH)",
        "```",
        "",
        "`elad.json` records the prompt format (prefix, answer cue). The weights are the base model with the "
        "adapter merged in float32; the evaluation above ran on the unmerged adapter.",
        "",
    ]
    return "\n".join(lines)
