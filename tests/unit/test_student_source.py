"""Where an alias's weights come from: the Hub model in the local Hugging Face cache when it is there
(read offline), else the packaged GGUF; and the Hub id a model card names."""

import json

from elad.students import models


def _use_cache(monkeypatch, folder) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))  # read when called, not at import


def _cache_with(tmp_path, repo_id: str, weights: bool = True):
    """A Hugging Face cache laid out as huggingface_hub writes it, holding one model snapshot."""
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snapshot / "config.json").write_text(json.dumps({"model_type": "llama"}))
    if weights:
        (snapshot / "model.safetensors").write_bytes(b"")
    return snapshot


def test_an_alias_is_the_cached_hub_model_when_the_cache_holds_it(tmp_path, monkeypatch):
    _use_cache(monkeypatch, tmp_path / "hub")
    monkeypatch.setattr(models, "_converted_package", lambda spec, packaged: tmp_path / "packaged")
    assert models.resolve_model("smollm2-135m") == str(tmp_path / "packaged")
    snapshot = _cache_with(tmp_path, "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert models.resolve_model("smollm2-135m") == str(snapshot)
    assert models.resolve_model("qwen2.5-coder-0.5b") == str(tmp_path / "packaged")  # not cached: packaged


def test_a_cached_config_without_weights_is_not_enough(tmp_path, monkeypatch):
    _use_cache(monkeypatch, tmp_path / "hub")
    _cache_with(tmp_path, "Qwen/Qwen2.5-Coder-0.5B-Instruct", weights=False)
    assert models.hub_snapshot("Qwen/Qwen2.5-Coder-0.5B-Instruct") is None


def test_the_hub_id_of_each_kind_of_student(tmp_path):
    assert models.hub_id("qwen2.5-coder-0.5b") == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert models.hub_id("google/flan-t5-small") == "google/flan-t5-small"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "Qwen/Qwen2.5-0.5B"}))
    assert models.hub_id(str(folder)) == "Qwen/Qwen2.5-0.5B"
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "/home/me/checkpoints/x"}))
    assert models.hub_id(str(folder)) is None and models.hub_id(str(tmp_path / "m.gguf")) is None
