"""Export a round's student as a standalone Hugging Face model directory: LoRA merged into the weights,
the tokenizer, the prompt format (elad.json) and a model card (README.md).

`export_round(run_dir, round_, out_dir)` backs `elad export RUN_DIR --round N --out DIR`.
"""

import json
from pathlib import Path

from elad.config import load_config
from elad.errors import EladError
from elad.export.card import model_card, prompt_format
from elad.export.folders import source_and_target, staged


def export_round(run_dir: str | Path, round_: int, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Write round `round_`'s student to `out_dir` (which must not exist or be empty); returns `out_dir`.
    Round 0 is the untrained base model. The LoRA adapter is merged in fp32 and saved as `dtype`
    (float32 by default: rounding a merged model to bf16 loses most of a small LoRA delta)."""
    from elad.students.student import Student  # here: torch loads only when a model is exported

    run, out_dir = source_and_target(run_dir, out_dir)
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
    with staged(out_dir) as staging:
        model.save_pretrained(staging)
        student.tokenizer.save_pretrained(staging)
        (staging / "README.md").write_text(card, encoding="utf-8")
        (staging / "elad.json").write_text(json.dumps(prompt_format(config), indent=2) + "\n", encoding="utf-8")
    return out_dir
