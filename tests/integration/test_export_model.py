"""`elad export`: a round's student as a merged model, as its LoRA adapter alone, and as GGUF files that
llama.cpp runs, each with a model card; and the upload to the Hub (its calls, no network)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from elad.cli import app
from elad.errors import EladError
from elad.export import export_round
from elad.loop import Experiment
from tests.integration.test_loop import make_config

pytestmark = pytest.mark.integration

NEAR_TIE = 0.05  # a top-2 logit margin this small may flip when the weights are rounded to f16


@pytest.fixture(scope="module")
def peaked_model_dir(tokenizer_dir, tmp_path_factory):
    """The tiny Llama with larger initial weights: its greedy choices are rarely near-ties, so that a
    rounding of the weights shows as a real disagreement, not a coin flip between two equal logits."""
    import shutil

    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
        initializer_range=0.3,
    )
    directory = tmp_path_factory.mktemp("peaked-llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, directory / item.name)
    return directory


@pytest.fixture(scope="module")
def trained_run(esnli_dir_module, peaked_model_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("export-run") / "run"
    config = make_config(esnli_dir_module, peaked_model_dir, rounds=1, per_round=4, evaluate_initial=False)
    Experiment(config, run).run()
    return run


@pytest.fixture(scope="module")
def esnli_dir_module(tmp_path_factory):
    from tests.conftest import write_esnli

    labels = ("entailment", "neutral", "contradiction")
    valid = [(f"A person number {i} walks.", f"Someone {i} moves.", i % 3) for i in range(12)]
    test = [(f"A dog number {i} runs.", f"An animal {i} is outside.", i % 3) for i in range(20)]
    recorded = [f"Person {i} walking means moving. So the answer is {labels[i % 3]}." for i in range(12)]
    return write_esnli(tmp_path_factory.mktemp("esnli"), {"valid": valid, "test": test}, {"valid": recorded})


def _greedy(model, ids: list[int], steps: int) -> tuple[list[int], list[float]]:
    """transformers' greedy continuation and, per step, the margin between its two best logits."""
    out = model.generate(torch.tensor([ids]), max_new_tokens=steps, do_sample=False, output_scores=True,
                         return_dict_in_generate=True, pad_token_id=0)
    margins = [float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in out.scores]
    return out.sequences[0, len(ids):].tolist(), margins


def _llama_greedy(llm, ids: list[int], steps: int) -> list[int]:
    llm.reset()
    tokens = []
    for token in llm.generate(ids, temp=0.0, top_k=1):
        tokens.append(token)
        if len(tokens) == steps or token == llm.token_eos():
            return tokens
    return tokens


def test_the_gguf_runs_in_llama_cpp_with_the_students_greedy_outputs(trained_run, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.llamacpp import plain_weight_layouts

    plain_weight_layouts()

    from elad.store import RunStore

    out = export_round(trained_run, 1, tmp_path / "student", gguf=True, gguf_quant="q8_0")
    f16, q8 = out / "tiny-round1-f16.gguf", out / "tiny-round1-q8_0.gguf"
    assert f16.exists() and q8.exists() and q8.stat().st_size < 0.7 * f16.stat().st_size
    modelfile = (out / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./tiny-round1-q8_0.gguf") and '{{ .Prompt }}<|im_end|>' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "tiny-round1-q8_0.gguf" in (out / "README.md").read_text()

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    store = RunStore(trained_run / "run.db")
    questions = [store.example(i)["question"] for i in store.example_ids("test")]
    assert len(questions) == 20
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
               for q in questions]
    prompts = [p["input_ids"] if hasattr(p, "keys") else p for p in prompts]
    reference = [_greedy(model, ids, 8) for ids in prompts]
    shares = {}
    for name, path in (("f16", f16), ("q8_0", q8)):
        llm = llama_cpp.Llama(str(path), n_ctx=256, n_threads=2, verbose=False)
        assert llm.tokenize(tokenizer.decode(prompts[0]).encode(), add_bos=False, special=True) == prompts[0]
        outputs = [_llama_greedy(llm, ids, len(tokens)) for ids, (tokens, _) in zip(prompts, reference)]
        shares[name] = sum(got == tokens for got, (tokens, _) in zip(outputs, reference)) / len(prompts)
        if name == "f16":  # the same tokens, up to a near-tie that f16 rounding flipped
            for got, (tokens, margins) in zip(outputs, reference):
                differ = next((k for k, (a, b) in enumerate(zip(got, tokens)) if a != b), None)
                assert differ is None or margins[differ] < NEAR_TIE, (got, tokens, margins)
        llm.close()
    print(f"greedy continuations equal to transformers': f16 {shares['f16']:.0%}, q8_0 {shares['q8_0']:.0%}")
    assert shares["f16"] >= 0.75 and shares["f16"] >= shares["q8_0"]


def test_the_adapter_alone_loads_with_peft_and_the_card_names_the_base(trained_run, tmp_path):
    from huggingface_hub import ModelCard

    out = export_round(trained_run, 1, tmp_path / "adapter", adapter_only=True)
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "peft" and "gguf" not in card.data.tags
    assert card.data.eval_results[0].metric_type == "accuracy"
    assert "95% interval" in card.content and "4 teacher-annotated examples" in card.content
    from peft import AutoPeftModelForCausalLM

    from elad.config import load_config

    base = load_config(trained_run / "config.yaml").student.model
    # A local base model has no Hub id: the adapter points at where it is.
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == base
    loaded = AutoPeftModelForCausalLM.from_pretrained(out)
    merged = export_round(trained_run, 1, tmp_path / "merged")
    from transformers import AutoModelForCausalLM

    whole = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, whole(ids).logits, atol=1e-4)


def test_an_alias_student_card_names_its_hub_model(trained_run, tmp_path, monkeypatch):
    from huggingface_hub import ModelCard

    from elad.students import models

    monkeypatch.setattr(models, "hub_id", lambda spec: "HuggingFaceTB/SmolLM2-135M-Instruct")
    out = export_round(trained_run, 1, tmp_path / "card-only", adapter_only=True)
    assert ModelCard.load(out / "README.md").data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_export_refusals_and_push_to_hub_calls(trained_run, tmp_path, monkeypatch):
    from elad.export import best_round

    with pytest.raises(EladError, match="no validation accuracy"):
        best_round(trained_run)
    with pytest.raises(EladError, match="no LoRA adapter"):
        export_round(trained_run, 0, tmp_path / "a", adapter_only=True)
    with pytest.raises(EladError, match="leave out --adapter-only"):
        export_round(trained_run, 1, tmp_path / "b", adapter_only=True, gguf=True)
    with pytest.raises(EladError, match="--gguf-quant must be one of"):
        export_round(trained_run, 1, tmp_path / "c", gguf=True, gguf_quant="q3")
    assert not (tmp_path / "c").exists()  # nothing half-written under the name asked for

    import huggingface_hub

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs["repo_type"], kwargs["private"]))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, repo_id, folder_path, repo_type, **kwargs):
            calls.append(("upload", repo_id, repo_type, sorted(p.name for p in __import__("pathlib").Path(
                folder_path).iterdir())))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    result = CliRunner().invoke(app, ["export", str(trained_run), "--round", "1", "--out", str(tmp_path / "d"),
                                      "--adapter-only", "--push-to-hub", "me/student"])
    assert result.exit_code == 0, result.output
    assert calls[0] == ("create", "me/student", "model", True)
    assert calls[1][:3] == ("upload", "me/student", "model") and "adapter_config.json" in calls[1][3]
