"""Export a round's student: a standalone Hugging Face model directory (LoRA merged into the weights) or
the LoRA adapter alone, with the tokenizer, the prompt format (elad.json) and a model card (README.md);
optionally GGUF files for llama.cpp and an Ollama Modelfile (gguf.py), and an upload to the Hub.

`export_round(run_dir, round_, out_dir)` backs `elad export RUN_DIR --round N --out DIR`.
"""

import json
import shutil
from pathlib import Path

from elad.config import load_config
from elad.errors import EladError
from elad.export.card import model_card, prompt_format
from elad.export.folders import source_and_target, staged
from elad.export.gguf import QUANTIZED


def best_round(run_dir: str | Path) -> int:
    """The round whose student scored best on the validation split (the earliest of equals: it cost
    least); the test accuracy never chooses."""
    from elad.store import RunDir

    run = RunDir(run_dir)
    store = run.open_store(readonly=True)
    try:
        scores = {m["round"]: m["value"] for m in store.metrics() if m["name"] == "val_accuracy"}
    finally:
        store.close()
    candidates = {r: v for r, v in scores.items() if r == 0 or run.adapter(r).exists()}
    if not candidates:
        raise EladError(f"--round best: {run.path} has no validation accuracy (set task.validation_size to "
                        "carve a validation split); give a round number")
    return min(candidates, key=lambda r: (-candidates[r], r))


def export_round(run_dir: str | Path, round_: int, out_dir: str | Path, dtype: str = "float32",
                 adapter_only: bool = False, gguf: bool = False, gguf_quant: str = "q8_0") -> Path:
    """Write round `round_`'s student to `out_dir` (which must not exist or be empty); returns `out_dir`.
    Round 0 is the untrained base model. The LoRA adapter is merged in fp32 and saved as `dtype`
    (float32 by default: rounding a merged model to bf16 loses most of a small LoRA delta), or, with
    `adapter_only`, written alone with the base model's Hub id in its config. `gguf`: also an f16 GGUF,
    a `gguf_quant` copy (q8_0, q4_k_m; "none" for none) and an Ollama Modelfile."""
    run, out_dir = source_and_target(run_dir, out_dir)
    config = load_config(run.config_path)
    adapter = run.adapter(round_)
    if round_ != 0 and not adapter.exists():
        known = ", ".join(map(str, run.trained_rounds())) or "none"
        raise EladError(f"{run.path}: round {round_} has no trained student (rounds with one: {known})")
    if dtype not in ("float32", "bfloat16"):
        raise EladError(f"export dtype must be float32 or bfloat16, not {dtype}")
    if adapter_only and (round_ == 0 or not (adapter / "adapter_config.json").exists()):
        raise EladError(f"--adapter-only: round {round_} of {run.path} has no LoRA adapter "
                        "(round 0, or a fully fine-tuned student): export the whole model")
    if adapter_only and gguf:
        raise EladError("--gguf writes the merged model: leave out --adapter-only")
    if gguf_quant not in (*QUANTIZED, "none"):  # before minutes of merging, not after
        raise EladError(f"--gguf-quant must be one of {', '.join(QUANTIZED)} or none, not {gguf_quant!r}")
    gguf_names = _gguf_names(config.name, round_, gguf_quant) if gguf else ()

    store = run.open_store(readonly=True)
    try:
        card = model_card(config, store, round_, adapter_only=adapter_only, gguf_files=gguf_names)
    finally:
        store.close()
    with staged(out_dir) as staging:
        if adapter_only:
            _write_adapter(adapter, staging, config.student.model)
        else:
            _write_merged(config, adapter if round_ else None, staging, dtype)
        if gguf:
            _write_gguf(staging, gguf_names, gguf_quant)
        (staging / "README.md").write_text(card, encoding="utf-8")
        (staging / "elad.json").write_text(json.dumps(prompt_format(config), indent=2) + "\n", encoding="utf-8")
    return out_dir


def _write_merged(config, adapter: Path | None, folder: Path, dtype: str) -> None:
    from elad.students.student import Student  # here: torch loads only when a model is exported

    student = Student(config.student.model_copy(update={"dtype": "float32"}))
    if adapter is not None:
        student.load_adapter(adapter)
    model = student.model
    if hasattr(model, "peft_config"):
        model = model.merge_and_unload()
    if dtype == "bfloat16":
        import torch

        model = model.to(torch.bfloat16)
    model.save_pretrained(folder)
    student.tokenizer.save_pretrained(folder)


def _write_adapter(adapter: Path, folder: Path, student_model: str) -> None:
    """The saved adapter as peft reads it, pointed at the base model's Hub id (where one is known)."""
    from elad.students.models import hub_id, open_tokenizer

    for item in adapter.iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)
    settings = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    settings["base_model_name_or_path"] = hub_id(student_model) or student_model
    (folder / "adapter_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    open_tokenizer(student_model).save_pretrained(folder)


def _gguf_names(name: str, round_: int, quant: str) -> tuple[str, ...]:
    stem = f"{name}-round{round_}"
    return (f"{stem}-f16.gguf",) + (() if quant == "none" else (f"{stem}-{quant}.gguf",))


def _write_gguf(folder: Path, names: tuple[str, ...], quant: str) -> None:
    from transformers import AutoTokenizer

    from elad.export.gguf import modelfile, quantize, write_gguf

    write_gguf(folder, folder / names[0])
    if len(names) > 1:
        quantize(folder / names[0], folder / names[1], quant)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    (folder / "Modelfile").write_text(modelfile(names[-1], tokenizer), encoding="utf-8")
