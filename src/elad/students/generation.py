"""Writing text with a student's weights: two engines behind one `Generator` protocol (transformers, and
vLLM from vllm_engine.py on a GPU), and what the student asks of them: one continuation per prompt, or a
greedy explanation then sampled ones.

Prompts arrive rendered (prompting.PromptFormat), so both engines see the same text.
"""

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from elad.config import StudentConfig
from elad.errors import EladError
from elad.students import vllm_engine  # a module, not its names: tests replace vllm_engine.require_cuda
from elad.students.common import Progress
from elad.students.weights import StudentWeights


class Generator(Protocol):
    def generate(self, rendered: Sequence[str], per_prompt: int, max_new_tokens: int, sample: bool,
                 temperature: float, top_p: float, seed: int, progress: Progress | None) -> list[list[str]]:
        """`per_prompt` continuations of each rendered prompt, stripped: greedy (per_prompt 1) or sampled."""


def refuse_unsupported(config: StudentConfig, is_seq2seq: bool) -> None:
    """Refuse at start what the configured engine cannot do, rather than after a round of work."""
    if config.generation != "vllm":
        return
    if is_seq2seq:
        raise EladError(f"student.generation: vllm is for decoder-only students; '{config.model}' is a "
                        "seq2seq model (use 'transformers')")
    if config.lora is None:
        raise EladError("student.generation: vllm needs a LoRA student (student.lora set): it swaps in each "
                        "round's adapter, and cannot swap a fully fine-tuned model's weights in place")
    vllm_engine.import_vllm()
    vllm_engine.require_cuda()


def generator_for(config: StudentConfig, weights: StudentWeights) -> Generator:
    if config.generation == "vllm":
        return VllmGenerator(weights)
    return TransformersGenerator(weights)


@torch.inference_mode()
def continuations(generator: Generator, rendered: list[str], max_new_tokens: int, sample: bool, temperature: float,
                  top_p: float, seed: int, progress: Progress | None) -> list[str]:
    """One continuation per rendered prompt."""
    texts = generator.generate(rendered, 1, max_new_tokens, sample, temperature, top_p, seed, progress)
    return [t[0] for t in texts]


@torch.inference_mode()
def explanations(generator: Generator, rendered: list[str], samples: int, temperature: float, top_p: float,
                 max_new_tokens: int, seed: int, progress: Progress | None) -> list[list[str]]:
    """Per rendered prompt, [greedy, s1, ..., sK]: all greedy ones first, then all samples (several
    return sequences per prompt), with progress counted over both."""
    total = len(rendered) * (1 + samples)

    def greedy_progress(done, _):
        if progress:
            progress(done, total)

    def sample_progress(done, _):
        if progress:
            progress(len(rendered) + done * samples, total)

    greedy = generator.generate(rendered, 1, max_new_tokens, False, 1.0, 1.0, seed, greedy_progress)
    if samples <= 0:
        return greedy
    sampled = generator.generate(rendered, samples, max_new_tokens, True, temperature, top_p, seed, sample_progress)
    return [g + s for g, s in zip(greedy, sampled)]


class TransformersGenerator:
    """`model.generate` on the student's own weights, batched longest first so that padding stays small."""

    def __init__(self, weights: StudentWeights):
        self.weights = weights

    def generate(self, rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed, progress):
        with self.weights.unfrozen():
            self.weights.merge_for_inference()
            return self._generate(rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed, progress)

    def _generate(self, rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed, progress):
        tokenizer, is_seq2seq = self.weights.pretrained.tokenizer, self.weights.pretrained.is_seq2seq
        order = sorted(range(len(rendered)), key=lambda i: -len(rendered[i]))
        outputs: list[list[str]] = [[] for _ in rendered]
        prompts_per_batch = max(1, self.weights.config.generation_batch_size // per_prompt)
        tokenizer.padding_side = "right" if is_seq2seq else "left"
        if sample:
            torch.manual_seed(seed)
        for start in range(0, len(order), prompts_per_batch):
            indices = order[start: start + prompts_per_batch]
            batch = tokenizer([rendered[i] for i in indices], return_tensors="pt", padding=True,
                              add_special_tokens=is_seq2seq).to(self.weights.pretrained.device)
            generated = self.weights.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                num_return_sequences=per_prompt,
                temperature=temperature if sample else None,
                top_p=top_p if sample else None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
            )
            skip = 1 if is_seq2seq else batch["input_ids"].shape[1]  # the decoder start / the prompt
            texts = tokenizer.batch_decode(generated[:, skip:], skip_special_tokens=True)
            for n, i in enumerate(indices):
                outputs[i] = [t.strip() for t in texts[n * per_prompt: (n + 1) * per_prompt]]
            if progress:
                progress(min(start + prompts_per_batch, len(order)), len(order))
        return outputs


class VllmGenerator:
    """vLLM over the student's base model, started on first use. The student's current LoRA adapter is
    saved to a scratch folder once per weight change and handed to the engine (no restart)."""

    def __init__(self, weights: StudentWeights):
        self.weights = weights
        self.engine, self.engine_version, self.scratch = None, -1, None

    def generate(self, rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed, progress):
        outputs = self._current().generate(rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed)
        if progress:  # vLLM batches the whole list itself: done in one go
            progress(len(rendered), len(rendered))
        return outputs

    def _current(self):
        weights = self.weights
        if self.engine is None:
            dtype = "bfloat16" if weights.pretrained.dtype == torch.bfloat16 else "float32"
            self.engine = vllm_engine.VllmEngine(weights.pretrained.path, dtype, seed=0,
                                                 lora_rank=weights.config.lora.r,
                                                 options=weights.config.vllm_options)
            self.scratch = tempfile.TemporaryDirectory(prefix="elad-vllm-")
        if self.engine_version != weights.version:
            adapter = None
            if weights.is_peft():
                adapter = Path(self.scratch.name) / f"v{weights.version}"
                weights.model.save_pretrained(adapter)
            self.engine.use_adapter(adapter, weights.version)
            self.engine_version = weights.version
        return self.engine
