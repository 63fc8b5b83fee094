"""torch.compile on a CPU: the student's forward passes compiled (inductor) against eager.

Prompt passes and decode steps are bound by fp32 matrix products, which compiling leaves to the same
BLAS; what it can fuse is the small work around them (norms, rotary embeddings, activations, the
attention's softmax). This times both shapes a round runs, on the base Qwen2.5-Coder-0.5B in fp32:
a prompt pass of 8 rows x 96 tokens, and a decode step of 48 rows over 110 cached tokens.

    nice .venv/bin/python -u bench/compile_forward.py [--reps 5]

Last line: compile_speedup_prompt=<eager/compiled> compile_speedup_decode=<...> compile_s=<first calls>
max_logit_diff=<...>
"""

import argparse
import time

import torch


def best_time(call, reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM

    from elad.students.models import resolve_model

    model = AutoModelForCausalLM.from_pretrained(resolve_model("qwen2.5-coder-0.5b"), dtype=torch.float32).eval()
    torch.manual_seed(0)
    prompt = torch.randint(0, 50000, (8, 96))
    context = torch.randint(0, 50000, (48, 110))
    step = torch.randint(0, 50000, (48, 1))

    def prompt_pass(forward):
        return forward(input_ids=prompt, use_cache=False, logits_to_keep=1).logits

    with torch.inference_mode():
        cache = model(input_ids=context, use_cache=True, logits_to_keep=1).past_key_values

        def decode_step(forward):
            logits = forward(input_ids=step, past_key_values=cache, use_cache=True).logits
            cache.crop(-1)  # back to 110 cached tokens for the next repeat
            return logits

        eager = {"prompt": best_time(lambda: prompt_pass(model), args.reps),
                 "decode": best_time(lambda: decode_step(model), args.reps * 4)}
        reference = (prompt_pass(model), decode_step(model))
        compiled_forward = torch.compile(model.forward, dynamic=True)
        started = time.perf_counter()
        got = (prompt_pass(compiled_forward), decode_step(compiled_forward))
        compile_s = time.perf_counter() - started
        compiled = {"prompt": best_time(lambda: prompt_pass(compiled_forward), args.reps),
                    "decode": best_time(lambda: decode_step(compiled_forward), args.reps * 4)}
    diff = max((a - b).abs().max().item() for a, b in zip(reference, got))
    for shape in ("prompt", "decode"):
        print(f"{shape}: eager {eager[shape]:.3f} s, compiled {compiled[shape]:.3f} s")
    print(f"compile_speedup_prompt={eager['prompt'] / compiled['prompt']:.2f} "
          f"compile_speedup_decode={eager['decode'] / compiled['decode']:.2f} compile_s={compile_s:.0f} "
          f"max_logit_diff={diff:.2e}")


if __name__ == "__main__":
    main()
