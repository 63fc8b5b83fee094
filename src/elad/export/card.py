"""The model card of an exported student: task, teacher, budget spent and accuracy, and how to prompt it."""


def prompt_format(config) -> dict:
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
    fmt = prompt_format(config)
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
