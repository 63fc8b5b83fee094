"""The model card of an exported student (a `huggingface_hub.ModelCard`): the base model's Hub id, task,
teacher, budget spent, accuracy with its 95% interval, and how to prompt it (transformers, peft, llama.cpp,
Ollama)."""

from elad.stats import wilson


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


def model_card(config, store, round_: int, adapter_only: bool = False, gguf_files: tuple[str, ...] = ()) -> str:
    """The card's text: YAML metadata (base_model, library, tags, the test accuracy as an eval result)
    and the body."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from elad.students.models import hub_id

    accuracy = _metric(store, round_, "test", "accuracy")
    base = hub_id(config.student.model)
    results = [] if accuracy is None else [EvalResult(
        task_type="text-generation", dataset_type=config.task.name, dataset_name=f"{config.task.name} (test split)",
        metric_type="accuracy", metric_value=round(accuracy, 4))]
    data = ModelCardData(base_model=base, library_name="peft" if adapter_only else "transformers",
                         pipeline_tag="text-generation", tags=["elad", "distillation", "active-learning"]
                         + (["gguf"] if gguf_files else []),
                         model_name=f"{config.name}-round{round_}", eval_results=results or None)
    body = _body(config, store, round_, base, adapter_only, gguf_files)
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def _accuracy_text(store, round_: int) -> str:
    accuracy = _metric(store, round_, "test", "accuracy")
    if accuracy is None:
        return "not evaluated"
    correct, total = _metric(store, round_, "test", "correct"), _metric(store, round_, "test", "total")
    if correct is None or not total:
        return f"{accuracy:.1%}"
    low, high = wilson(correct, total)
    return f"{accuracy:.1%} ({int(correct)}/{int(total)}; 95% interval {low:.1%} to {high:.1%})"


def _body(config, store, round_: int, base: str | None, adapter_only: bool, gguf_files: tuple[str, ...]) -> str:
    totals = store.teacher_totals(up_to_round=round_)
    annotations = len(store.annotations(up_to_round=round_))
    baseline = _metric(store, 0, "test", "accuracy")
    budget = config.loop.budget
    limits = [f"{budget.calls} calls" if budget.calls else None, f"{budget.tokens:,} tokens" if budget.tokens else None,
              f"${budget.dollars:g}" if budget.dollars else None]
    limits = ", ".join(x for x in limits if x) or "none"
    fmt = prompt_format(config)
    lora = config.student.lora
    method = ("full fine-tuning" if lora is None else f"LoRA (r={lora.r}, alpha={lora.alpha})"
              + (", the adapter alone" if adapter_only else ", merged into the weights"))
    usage = (f"Prefix the prompt with `{fmt['prompt_prefix']}`: the student was trained with the distilling "
             f"step-by-step objective (alpha={config.training.alpha}) and answers "
             + ("straight away." if fmt["inference"] == "predict" else "with a rationale.")
             if fmt["prompt_prefix"] else
             "Ask with the task's prompt; the student writes its reasoning, then `So the answer is <answer>.`")
    base_text = f"`{base}`" + (f" (elad's `{config.student.model}`)" if base and base != config.student.model else "") \
        if base else f"`{config.student.model}`"
    lines = [
        f"# {config.name}: round {round_} student",
        "",
        f"A student distilled by elad (active distillation of a teacher's reasoning): base model {base_text}, "
        f"{method}.",
        "",
        "| | |",
        "|---|---|",
        f"| task | {config.task.name} (pool split `{config.task.pool_split}`, test split `{config.task.test_split}`) |",
        f"| teacher | {config.teacher.backend} / {config.teacher.model} |",
        f"| annotation | {config.annotation.method} |",
        f"| selection | {config.selection.strategy} |",
        f"| training data | {annotations} teacher-annotated examples (rationale and answer) |",
        f"| training | {config.training.objective}, {config.training.epochs:g} epochs, lr {config.training.learning_rate:g} |",
        f"| round | {round_} of {config.loop.rounds} |",
        f"| teacher spend to this round | {totals.calls} calls, {totals.prompt_tokens + totals.completion_tokens:,} tokens, "
        f"${totals.dollars:.4f} (budget: {limits}) |",
        f"| test accuracy | {_accuracy_text(store, round_)}"
        + (f"; untrained: {baseline:.1%}" if baseline is not None and round_ else "") + " |",
        f"| seed | {config.seed} |",
        "",
        "## Use",
        "",
        usage,
        "",
        "```python",
        *(_peft_use(base) if adapter_only else _transformers_use()),
        "```",
        *_gguf_use(gguf_files),
        "",
        "`elad.json` records the prompt format (prefix, answer cue). "
        + ("The evaluation above ran on this adapter." if adapter_only else
           "The weights are the base model with the adapter merged in float32; the evaluation above ran on the "
           "unmerged adapter."),
        "",
    ]
    return "\n".join(lines)


def _transformers_use() -> list[str]:
    return ["from transformers import AutoModelForCausalLM, AutoTokenizer  # AutoModelForSeq2SeqLM for T5-style",
            "tokenizer = AutoTokenizer.from_pretrained(PATH)",
            "model = AutoModelForCausalLM.from_pretrained(PATH)"]


def _peft_use(base: str | None) -> list[str]:
    return ["from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer",
            "tokenizer = AutoTokenizer.from_pretrained(PATH)",
            "model = AutoPeftModelForCausalLM.from_pretrained(PATH)"
            + ("" if base else "  # set base_model_name_or_path in adapter_config.json to the base model first")]


def _gguf_use(gguf_files: tuple[str, ...]) -> list[str]:
    if not gguf_files:
        return []
    smallest = gguf_files[-1]
    return ["", f"GGUF for llama.cpp and Ollama: {', '.join(f'`{name}`' for name in gguf_files)}.", "",
            "```bash",
            f"llama-cli -m {smallest} -cnv --temp 0     # llama.cpp",
            "ollama create my-student -f Modelfile && ollama run my-student   # Ollama",
            "```"]
