"""An exported student as GGUF, the file llama.cpp and Ollama run, and an Ollama Modelfile beside it.

`write_gguf(model_dir, path)` writes an f16 (or f32) GGUF from a Hugging Face model folder (the merged
student `export_round` wrote) with the `gguf` library: the architecture's hyperparameters, the
tokenizer (byte-level BPE: tokens, token types, merges, special ids, chat template) and the weights under
llama.cpp's tensor names. `quantize(f16, path, kind)` makes a smaller copy with llama.cpp's own quantizer
(through llama-cpp-python). Architectures: `llama` (SmolLM2 and other Llama-shaped students) and `qwen2`.

llama.cpp applies rotary embeddings to a `llama` model's q and k rows in interleaved order, where
transformers uses two halves, so those two weights are reordered on the way out; `qwen2` uses the halves
order in both.
"""

import json
from pathlib import Path

import numpy as np

from elad.errors import EladError

# llama.cpp's name for the pre-tokenizer (the regex split before BPE) of the students elad knows.
PRE_TOKENIZERS = {"qwen2": "qwen2", "llama": "smollm"}
QUANTIZED = {"q8_0": 7, "q4_k_m": 15}  # llama.cpp's LLAMA_FTYPE_MOSTLY_* numbers


def write_gguf(model_dir: Path, path: Path, dtype: str = "f16") -> Path:
    import gguf

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    arch = config.get("model_type")
    if arch not in PRE_TOKENIZERS:
        raise EladError(f"--gguf: {arch!r} models are not supported (supported: {', '.join(PRE_TOKENIZERS)})")
    writer = gguf.GGUFWriter(str(path), arch)
    _hyperparameters(writer, config, dtype)
    _tokenizer(writer, model_dir, arch, config)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA if arch == "llama" else gguf.MODEL_ARCH.QWEN2,
                                     config["num_hidden_layers"])
    for name, tensor in _weights(model_dir, config):
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise EladError(f"--gguf: no llama.cpp name for the weight {name}")
        writer.add_tensor(target, _stored(tensor, dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _hyperparameters(writer, config: dict, dtype: str) -> None:
    import gguf

    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    writer.add_name(config.get("_name_or_path") or config["model_type"])
    writer.add_context_length(config.get("max_position_embeddings", 2048))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(config.get("rope_theta") or (config.get("rope_parameters") or {}).get(
        "rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32)


def _tokenizer(writer, model_dir: Path, arch: str, config: dict) -> None:
    """A byte-level BPE tokenizer as llama.cpp reads it ("gpt2" model)."""
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not (model_dir / "tokenizer.json").exists() or json.loads(
            (model_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["type"] != "BPE":
        raise EladError("--gguf: only byte-level BPE tokenizers are supported")
    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    special = set(tokenizer.all_special_ids)
    added = set(tokenizer.get_added_vocab().values())
    tokens, types = [], []
    for i in range(config["vocab_size"]):
        token = by_id.get(i)
        if token is None:  # the embedding has more rows than the tokenizer has tokens
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(token)
        types.append(gguf.TokenType.CONTROL if i in special or (i in added and token.startswith("<|"))
                     else gguf.TokenType.USER_DEFINED if i in added else gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_TOKENIZERS[arch])
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer)


def _weights(model_dir: Path, config: dict):
    """(transformers name, float32 array) of every weight; a `llama` model's q and k rows reordered."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise EladError(f"--gguf: {model_dir} holds no .safetensors weights")
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    for file in files:
        with safe_open(str(file), framework="pt") as weights:
            for name in weights.keys():
                if name == "lm_head.weight" and config.get("tie_word_embeddings"):
                    continue  # llama.cpp reads the output layer from the embedding when there is none
                tensor = weights.get_tensor(name).float().numpy()
                if config["model_type"] == "llama" and name.endswith("self_attn.q_proj.weight"):
                    tensor = _interleaved(tensor, heads)
                elif config["model_type"] == "llama" and name.endswith("self_attn.k_proj.weight"):
                    tensor = _interleaved(tensor, kv_heads)
                yield name, tensor


def _interleaved(weight: np.ndarray, heads: int) -> np.ndarray:
    """Rows of each head from [first halves; second halves] to pairs (the rotary order llama.cpp uses)."""
    rows = weight.shape[0] // heads
    return weight.reshape(heads, 2, rows // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _stored(tensor: np.ndarray, dtype: str) -> np.ndarray:
    """Matrices in the file's type; vectors (norms, biases) stay float32, as llama.cpp expects."""
    if dtype == "f16" and tensor.ndim > 1:
        return tensor.astype(np.float16)
    return tensor.astype(np.float32)


def quantize(source: Path, path: Path, kind: str) -> Path:
    """A quantized copy of a GGUF (`kind` q8_0 or q4_k_m), by llama.cpp's quantizer."""
    try:
        import llama_cpp
    except ImportError:
        raise EladError("--gguf-quant needs llama-cpp-python (pip install llama-cpp-python)") from None
    if kind not in QUANTIZED:
        raise EladError(f"--gguf-quant must be one of {', '.join(QUANTIZED)} or none, not {kind!r}")
    import ctypes

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANTIZED[kind]
    failed = llama_cpp.llama_model_quantize(str(source).encode(), str(path).encode(), ctypes.byref(params))
    if failed:
        raise EladError(f"llama.cpp could not quantize {source} to {kind} (code {failed})")
    return path


def modelfile(gguf_name: str, tokenizer) -> str:
    """An Ollama Modelfile: the GGUF, the student's chat frame around one user turn (as elad prompts it,
    default system prompt included), greedy decoding, and the end-of-turn token as the stop."""
    marker = "\u0000PROMPT\u0000"
    framed = tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False,
                                           add_generation_prompt=True) if tokenizer.chat_template else f"{marker}\n"
    before, after = framed.split(marker)
    stop = tokenizer.eos_token or ""
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{before}{{{{ .Prompt }}}}{after}"""', "PARAMETER temperature 0"]
    if stop:
        lines.append(f'PARAMETER stop "{stop}"')
    return "\n".join(lines) + "\n"
