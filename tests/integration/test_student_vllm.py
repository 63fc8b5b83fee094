"""The optional vLLM engine (student.generation: vllm), against a stand-in `vllm` package
(tests/fakes/vllm_pkg): what elad asks vLLM for, the adapter it hands over after training, and the clear
errors when vLLM or a GPU is missing. vLLM itself runs only on a GPU machine; see the README."""

import sys
from pathlib import Path

import pytest
import torch

from elad.config import StudentConfig, TrainingConfig
from elad.errors import EladError
from elad.students import Student
from elad.students.common import TrainRecord

pytestmark = pytest.mark.integration

FAKE_VLLM = Path(__file__).resolve().parents[1] / "fakes" / "vllm_pkg"
PROMPTS = ["Premise: a dog runs.\nHypothesis: an animal moves.", "Premise: a cat sleeps.\nHypothesis: it runs."]


def vllm_config(model_dir, **settings) -> StudentConfig:
    values = {"model": str(model_dir), "dtype": "float32", "max_new_tokens": 5, "generation": "vllm",
              "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, "vllm_options": {"max_model_len": 512}}
    return StudentConfig.model_validate({**values, **settings})


@pytest.fixture
def fake_vllm(monkeypatch):
    """The stand-in package importable as `vllm`, and a CUDA GPU reported present to elad's check."""
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(FAKE_VLLM))
    monkeypatch.setattr("elad.students.vllm_engine.require_cuda", lambda: None)
    import vllm

    vllm.ENGINES.clear()
    yield vllm
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        sys.modules.pop(name)


def test_explain_asks_vllm_for_greedy_then_seeded_samples_of_the_rendered_prompts(fake_vllm, tiny_model_dir):
    student = Student(vllm_config(tiny_model_dir))
    explanations = student.explain(PROMPTS, samples=3, temperature=0.7, top_p=0.9, seed=11)

    engine = fake_vllm.ENGINES[-1]
    assert engine.model == str(tiny_model_dir) and engine.kwargs["enable_lora"] is True
    assert engine.kwargs["max_lora_rank"] == 8 and engine.kwargs["max_model_len"] == 512  # options pass through
    greedy, sampled = engine.calls
    rendered = [student.render_prompt(p, "plain") for p in PROMPTS]
    assert greedy["prompts"] == rendered == sampled["prompts"]
    assert [(p.n, p.temperature, p.max_tokens) for p in greedy["params"]] == [(1, 0.0, 5)] * 2
    assert [(p.n, p.temperature, p.top_p) for p in sampled["params"]] == [(3, 0.7, 0.9)] * 2
    seeds = [p.seed for p in sampled["params"]]
    assert len(set(seeds)) == 2  # seeded per prompt: samples do not depend on how prompts are batched
    assert greedy["lora"] is None  # untrained: the base model
    assert [len(e) for e in explanations] == [4, 4]
    assert explanations[0][0] == "base t=0.0 seed=None #0"  # stripped, greedy first, then the samples
    assert [e.split("#")[1] for e in explanations[0][1:]] == ["0", "1", "2"]


def test_after_training_vllm_generates_with_the_trained_adapter(fake_vllm, tiny_model_dir):
    from peft import PeftModel

    student = Student(vllm_config(tiny_model_dir))
    records = [TrainRecord(prompt=p, target="It moves.\nSo the answer is neutral.") for p in PROMPTS]
    student.train(records, TrainingConfig(epochs=1, batch_size=2, learning_rate=5e-2), seed=0)
    student.generate(PROMPTS)
    first = fake_vllm.ENGINES[-1].calls[-1]["lora"]
    assert first is not None and (Path(first.lora_path) / "adapter_config.json").exists()

    # The adapter handed over holds the trained weights: loaded back, it gives the student's logits.
    reloaded = PeftModel.from_pretrained(Student(StudentConfig(model=str(tiny_model_dir), dtype="float32")).model,
                                         first.lora_path).eval()
    batch = student.tokenizer(PROMPTS[:1], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(reloaded(**batch).logits, student.model(**batch).logits, atol=1e-5)

    student.generate(PROMPTS)  # same weights: the same adapter, not saved again
    assert fake_vllm.ENGINES[-1].calls[-1]["lora"] == first
    student.train(records, TrainingConfig(epochs=1, batch_size=2), seed=1)
    student.generate(PROMPTS)
    second = fake_vllm.ENGINES[-1].calls[-1]["lora"]
    assert second.lora_int_id != first.lora_int_id and second.lora_path != first.lora_path
    assert len(fake_vllm.ENGINES) == 1  # one engine for the whole run: new weights are a new adapter


def test_a_full_fine_tune_is_refused_before_any_work(fake_vllm, tiny_model_dir):
    with pytest.raises(EladError, match="needs a LoRA student"):
        Student(vllm_config(tiny_model_dir, lora=None))


def test_without_vllm_installed_the_error_says_how_to_get_it(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError, as when it is not installed
    with pytest.raises(EladError, match=r"vllm is not installed \(pip install 'elad\[vllm\]'"):
        Student(vllm_config(tiny_model_dir))


def test_on_a_machine_without_a_gpu_the_error_says_so(monkeypatch, tiny_model_dir):
    monkeypatch.syspath_prepend(str(FAKE_VLLM))
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    try:
        with pytest.raises(EladError, match="vllm needs a CUDA GPU and none is visible"):
            Student(vllm_config(tiny_model_dir))
    finally:
        for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
            sys.modules.pop(name)
