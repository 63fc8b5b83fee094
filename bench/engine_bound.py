"""How close the student's generation is to what llama.cpp reaches with the same model on the same cores.

Both engines read the same prompts (e-SNLI test items, as the student sees them) and decode the same
number of tokens for every sequence, in one batch of `--batch` sequences:

- transformers: the student's model (the packaged GGUF de-quantized, fp32 on a CPU without native bf16),
  a prompt pass, then `generate` with min_new_tokens = max_new_tokens (the prompt pass is subtracted);
- llama.cpp: the packaged Q4_K_M GGUF through llama-cpp-python's low-level API, every sequence in one
  `llama_decode` batch per step (the high-level `Llama` object decodes one sequence at a time), with
  the weights in the file's layout (tests/llamacpp.py: llama.cpp's AMX layout crashes on CPUs with AMX).

    nice .venv/bin/python -u bench/engine_bound.py [--batch 48] [--new-tokens 64] [--threads 2]

Last line: prompt_ratio=<llama.cpp prompt tok/s / transformers'> decode_ratio=<the same for decoding>
transformers_prompt_tps=... transformers_decode_tps=... llamacpp_prompt_tps=... llamacpp_decode_tps=...
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dsbs-rationales" / "esnli"
sys.path.insert(0, str(REPO))  # tests.llamacpp
from tests.llamacpp import plain_weight_layouts  # noqa: E402


def rendered_prompts(student, count: int) -> list[str]:
    from elad.config import TaskConfig

    task = TaskConfig(name="esnli", path=str(DATA)).open()
    return [student.render_prompt(task.prompt(e)) for e in task.load("test")[:count]]


def transformers_rates(student, rendered: list[str], new_tokens: int) -> tuple[float, float]:
    """(prompt tokens/s, decoded tokens/s) of one padded batch."""
    tokenizer = student.tokenizer
    tokenizer.padding_side = "left"
    batch = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_tokens = int(batch["attention_mask"].sum())
    with torch.inference_mode():
        started = time.perf_counter()
        student.model(**batch, logits_to_keep=1)
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        student.model.generate(**batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                               pad_token_id=tokenizer.pad_token_id)
        decode_s = time.perf_counter() - started - prompt_s
    return prompt_tokens / prompt_s, len(rendered) * new_tokens / decode_s


def llamacpp_rates(gguf: Path, rendered: list[str], new_tokens: int, threads: int) -> tuple[float, float]:
    """(prompt tokens/s, decoded tokens/s) with every sequence in one llama_decode batch per step (greedy)."""
    import llama_cpp as lc

    plain_weight_layouts()
    lc.llama_backend_init()
    model = lc.llama_model_load_from_file(str(gguf).encode(), lc.llama_model_default_params())
    vocab = lc.llama_model_get_vocab(model)
    size = lc.llama_vocab_n_tokens(vocab)
    prompts = [tokens(lc, vocab, text) for text in rendered]
    params = lc.llama_context_default_params()
    params.n_seq_max, params.n_ctx = len(prompts), len(prompts) * (max(map(len, prompts)) + new_tokens + 8)
    params.n_batch, params.n_ubatch = sum(map(len, prompts)), 512  # the prompts go in as one batch
    params.n_threads = params.n_threads_batch = threads
    context = lc.llama_init_from_model(model, params)
    batch = lc.llama_batch_init(sum(map(len, prompts)), 0, 1)
    try:
        started = time.perf_counter()
        rows = fill(batch, [(seq, pos, token, pos == len(ids) - 1) for seq, ids in enumerate(prompts)
                            for pos, token in enumerate(ids)])
        check(lc.llama_decode(context, batch))
        prompt_s = time.perf_counter() - started
        logit_rows = [row for row, (_, _, _, wanted) in enumerate(rows) if wanted]
        positions = [len(ids) for ids in prompts]
        started = time.perf_counter()
        for _ in range(new_tokens):
            chosen = [int(np.ctypeslib.as_array(lc.llama_get_logits_ith(context, row), shape=(size,)).argmax())
                      for row in logit_rows]
            fill(batch, [(seq, positions[seq], token, True) for seq, token in enumerate(chosen)])
            check(lc.llama_decode(context, batch))
            logit_rows, positions = list(range(len(prompts))), [p + 1 for p in positions]
        decode_s = time.perf_counter() - started
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(context)
        lc.llama_model_free(model)
    return sum(map(len, prompts)) / prompt_s, len(prompts) * new_tokens / decode_s


def tokens(lc, vocab, text: str) -> list[int]:
    raw = text.encode()
    buffer = (lc.llama_token * (len(raw) + 16))()
    count = lc.llama_tokenize(vocab, raw, len(raw), buffer, len(buffer), False, True)
    return list(buffer[:count])


def fill(batch, rows: list[tuple[int, int, int, bool]]) -> list:
    """Put (sequence, position, token, wants logits) rows into a llama_batch."""
    for i, (seq, pos, token, wanted) in enumerate(rows):
        batch.token[i], batch.pos[i], batch.logits[i] = token, pos, wanted
        batch.n_seq_id[i], batch.seq_id[i][0] = 1, seq
    batch.n_tokens = len(rows)
    return rows


def check(status: int) -> None:
    if status != 0:
        raise RuntimeError(f"llama_decode returned {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from elad.config import StudentConfig
    from elad.students import Student
    from elad.students.models import gguf_file

    student = Student(StudentConfig(model="qwen2.5-coder-0.5b"))
    rendered = rendered_prompts(student, args.batch)
    hf_prompt, hf_decode = transformers_rates(student, rendered, args.new_tokens)
    print(f"transformers ({student.dtype}): prompt {hf_prompt:.0f} tok/s, decode {hf_decode:.0f} tok/s", flush=True)
    lc_prompt, lc_decode = llamacpp_rates(gguf_file("qwen2.5-coder-0.5b"), rendered, args.new_tokens, args.threads)
    print(f"llama.cpp (Q4_K_M): prompt {lc_prompt:.0f} tok/s, decode {lc_decode:.0f} tok/s", flush=True)
    print(f"prompt_ratio={lc_prompt / hf_prompt:.2f} decode_ratio={lc_decode / hf_decode:.2f} "
          f"transformers_prompt_tps={hf_prompt:.0f} transformers_decode_tps={hf_decode:.0f} "
          f"llamacpp_prompt_tps={lc_prompt:.0f} llamacpp_decode_tps={lc_decode:.0f}")


if __name__ == "__main__":
    main()
