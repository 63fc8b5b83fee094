"""Two rounds of the loop on a GPU with a tiny randomly initialised model: does every stage run there, and
where does the time go?

    python bench/gpu_check.py [--out DIR] [--cpu]

Builds a 2-layer Llama from a config (no download: a word-level tokenizer is made from the packaged
e-SNLI sample), then runs two rounds of EGSS selection (pool explanations with K samples, answer scores
after every step prefix), replayed PaLM rationales, LoRA training and evaluation, with `student.dtype:
auto` (bf16 on a GPU). Prints each round's stage times and ends with one line of name=value pairs.
`--cpu` runs the same on the CPU (fp32 where bf16 is emulated), to check the script itself.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def tiny_model(folder: Path) -> Path:
    """A word-level tokenizer over the sample's words and a 2-layer Llama with random weights."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    sample = REPO / "src" / "elad" / "tasks" / "samples" / "esnli"
    texts = [line for path in sample.rglob("*.json") for line in path.read_text(encoding="utf-8").splitlines()]
    specials = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=8000, special_tokens=specials))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def config(model: Path, cpu: bool) -> dict:
    return {
        "name": "gpu-check", "seed": 0,
        "task": {"name": "esnli", "pool_split": "valid", "test_split": "test", "pool_size": 96, "test_size": 64},
        "student": {"model": str(model), "dtype": "float32" if cpu else "auto", "max_new_tokens": 32,
                    "generation_batch_size": 32, "lora": {"r": 8, "alpha": 16}},
        "training": {"epochs": 1, "batch_size": 8, "max_length": 256},
        "selection": {"strategy": "egss", "samples": 2},
        "teacher": {"backend": "replay", "source": "dsbs", "model": "palm-540b"},
        "annotation": {"method": "cot"},
        "loop": {"rounds": 2, "per_round": 16, "evaluate_initial": True},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="where to keep the run (default: a temporary folder)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU, to check the script")
    args = parser.parse_args()

    import torch
    from rich.console import Console

    from elad.config import ExperimentConfig
    from elad.loop import Experiment
    from elad.report.tables import STAGES

    if not args.cpu and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU visible (use --cpu to check the script on a CPU)")
    work = args.out or Path(tempfile.mkdtemp(prefix="elad-gpu-check-"))
    started = time.time()
    model = tiny_model(work / "model")
    experiment = Experiment(ExperimentConfig.model_validate(config(model, args.cpu)), work / "run", Console())
    rows = experiment.run()
    device = "cpu" if args.cpu else torch.cuda.get_device_name(0)
    print(f"device: {device}; dtype: {experiment.config.student.dtype}; run: {work / 'run'}")
    for row in rows:
        times = " ".join(f"{stage}={row.get(f'seconds_{stage}') or 0:.1f}s" for stage in STAGES)
        print(f"round {row['round']}: {times} accuracy={row.get('accuracy')}")
    last = rows[-1]
    pairs = {f"{stage}_s": round(sum(r.get(f"seconds_{stage}") or 0 for r in rows), 2) for stage in STAGES}
    print(" ".join([f"device={json.dumps(device)}", f"rounds={last['round']}",
                    f"total_s={time.time() - started:.1f}", *(f"{k}={v}" for k, v in pairs.items())]))


if __name__ == "__main__":
    main()
