"""Writing text with a student's weights: two engines behind one `Generator` protocol (transformers, and
vLLM from vllm_engine.py on a GPU), and what the student asks of them: one continuation per prompt, or a
greedy explanation then sampled ones.

Prompts arrive rendered (prompting.PromptFormat), so both engines see the same text.
"""

import copy
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from elad.config import StudentConfig
from elad.errors import EladError
from elad.students import vllm_engine  # a module, not its names: tests replace vllm_engine.require_cuda
from elad.students.common import Progress
from elad.students.decoding import decode_dropping_finished, plain_decoding, rows_can_leave
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


SHARED_PREFIX_MIN = 8  # tokens: a shorter common start is not worth a separate pass


def shared_prefix(token_ids: list[list[int]]) -> int:
    """How many leading tokens every prompt shares (the chat template's system turn, a task's fixed
    opening), leaving each prompt at least two of its own; 0 when that is under SHARED_PREFIX_MIN."""
    if not token_ids:
        return 0
    length = min(len(ids) for ids in token_ids) - 2
    first = token_ids[0]
    for ids in token_ids[1:]:
        length = min(length, next((i for i, (a, b) in enumerate(zip(first, ids)) if a != b), length))
    return length if length >= SHARED_PREFIX_MIN else 0


def prefix_cache(model, prefix: list[int], device):
    """The keys and values of the shared prefix, computed once per generate call."""
    ids = torch.tensor([prefix], device=device)
    return model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values


def prefilled(model, token_ids: list[list[int]], pad_id: int, copies: int, prefix: int, cache, device) -> dict:
    """`generate` inputs for `copies` continuations of each prompt, with their keys and values computed
    once: the shared prefix (`cache`, `prefix` tokens) is copied into every row, each prompt's own
    tokens are padded between it and them (the attention mask hides the padding, and positions count
    only real tokens, as generate numbers them), and all but the last prompt token are run here. Without
    this, generate runs the whole prompt again for every row, and for every one of `copies` samples."""
    width = max(len(ids) for ids in token_ids)
    if width - prefix < 2:  # nothing to run before generate's own first step
        prefix, cache = 0, None
    rows, masks = [], []
    for ids in token_ids:
        padding = width - len(ids)
        rows.append(ids[:prefix] + [pad_id] * padding + ids[prefix:])
        masks.append([1] * prefix + [0] * padding + [1] * (len(ids) - prefix))
    input_ids, mask = torch.tensor(rows, device=device), torch.tensor(masks, device=device)
    if width < 2:
        return {"input_ids": input_ids, "attention_mask": mask, "num_return_sequences": copies}
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    past = None
    if cache is not None:
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(len(token_ids))
    past = model(input_ids=input_ids[:, prefix:-1], attention_mask=mask[:, :-1], position_ids=positions[:, prefix:-1],
                 past_key_values=past, use_cache=True, logits_to_keep=1).past_key_values
    if copies > 1:
        past.batch_repeat_interleave(copies)
    return {"input_ids": input_ids.repeat_interleave(copies, dim=0),
            "attention_mask": mask.repeat_interleave(copies, dim=0), "past_key_values": past}


class TransformersGenerator:
    """The student's own weights, batched longest first so that padding stays small. A decoder-only
    student computes each prompt once (`prefilled`): the prefix all prompts share once per call, and a
    prompt's own tokens once however many samples it gets; then each row leaves the batch when it ends
    (`decoding.decode_dropping_finished`). Encoder-decoders go through `model.generate`."""

    def __init__(self, weights: StudentWeights):
        self.weights = weights

    def generate(self, rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed, progress):
        with self.weights.for_inference():
            return self._generate(rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed, progress)

    def _generate(self, rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed, progress):
        tokenizer, is_seq2seq = self.weights.pretrained.tokenizer, self.weights.pretrained.is_seq2seq
        device, model = self.weights.pretrained.device, self.weights.model
        order = sorted(range(len(rendered)), key=lambda i: -len(rendered[i]))
        outputs: list[list[str]] = [[] for _ in rendered]
        prompts_per_batch = max(1, self.weights.config.generation_batch_size // per_prompt)
        tokenizer.padding_side = "right" if is_seq2seq else "left"
        token_ids = [] if is_seq2seq else tokenizer(rendered, add_special_tokens=False)["input_ids"]
        prefix = shared_prefix(token_ids)
        cache = prefix_cache(model, token_ids[0][:prefix], device) if prefix else None
        if sample:
            torch.manual_seed(seed)
        for start in range(0, len(order), prompts_per_batch):
            indices = order[start: start + prompts_per_batch]
            if is_seq2seq:  # generate encodes each prompt once already
                batch = tokenizer([rendered[i] for i in indices], return_tensors="pt", padding=True,
                                  add_special_tokens=True).to(device)
                inputs = dict(batch, num_return_sequences=per_prompt)
            else:
                inputs = prefilled(model, [token_ids[i] for i in indices], tokenizer.pad_token_id, per_prompt,
                                   prefix, cache, device)
            texts = self._decode(inputs, max_new_tokens, sample, temperature, top_p, is_seq2seq)
            for n, i in enumerate(indices):
                outputs[i] = [t.strip() for t in texts[n * per_prompt: (n + 1) * per_prompt]]
            if progress:
                progress(min(start + prompts_per_batch, len(order)), len(order))
        return outputs

    def _decode(self, inputs, max_new_tokens, sample, temperature, top_p, is_seq2seq) -> list[str]:
        """The texts generated for each row of `inputs`: by `decode_dropping_finished` where the prompts'
        keys and values are already computed in a cache that can drop rows and the model asks nothing more
        of decoding, else by generate."""
        tokenizer, model = self.weights.pretrained.tokenizer, self.weights.model
        if rows_can_leave(inputs.get("past_key_values")) and plain_decoding(model):
            new = decode_dropping_finished(model, inputs, max_new_tokens, sample, temperature, top_p)
            return tokenizer.batch_decode(new, skip_special_tokens=True)
        generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=sample,
                                   temperature=temperature if sample else None, top_p=top_p if sample else None,
                                   top_k=None, pad_token_id=tokenizer.pad_token_id)
        skip = 1 if is_seq2seq else inputs["input_ids"].shape[1]  # the decoder start / the prompt
        return tokenizer.batch_decode(generated[:, skip:], skip_special_tokens=True)


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
