"""A student's weights: the base model loaded the one way (the local teacher loads its model so too), what
training produced saved and loaded back (a LoRA adapter or a whole fine-tuned model), and the LoRA merge
for generation.

Loading is in two steps, `open_pretrained` (tokenizer and architecture) then `Pretrained.load_base`, so
that a setting the model cannot serve is refused before the slow part.
"""

import gc
import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from elad.config import StudentConfig
from elad.errors import EladError
from elad.students.common import cpu_computes_bf16
from elad.students.lora_fused import fused_lora
from elad.students.memory import inference_memory
from elad.students.models import resolve_model
from elad.students.packed_linear import PackedLinears

STUDENT_META = "elad_student.json"  # written next to saved weights: the objective they were trained with


def pick_device_and_dtype(requested: str, full_finetune: bool) -> tuple[str, torch.dtype]:
    """`auto`: bf16 on a GPU, and on a CPU that computes bf16 natively (AVX512-BF16 / AMX), where it is
    about twice as fast as fp32 for generation and LoRA training. On a CPU without it (AVX2 only) bf16 is
    emulated and a LoRA step is dozens of times slower than in fp32 (README, performance), so fp32.
    Full fine-tuning keeps fp32 weights, where bf16 would swallow small AdamW updates (training then runs
    under bf16 autocast where the hardware has it)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "float32":
        return device, torch.float32
    if requested == "bfloat16":
        return device, torch.bfloat16
    if full_finetune or (device == "cpu" and not cpu_computes_bf16()):
        return device, torch.float32
    return device, torch.bfloat16


@dataclass(frozen=True, eq=False)
class Pretrained:
    """A configured model, resolved and opened: its tokenizer and architecture are read, its weights not yet."""

    name: str  # as configured (alias, directory, .gguf, hub id), for messages
    path: str  # where it loads from: a local directory, or a hub id
    device: str
    dtype: torch.dtype
    tokenizer: Any
    is_seq2seq: bool

    def load_base(self):
        """The base weights on the device, in eval mode."""
        try:
            model = self._loader().from_pretrained(self.path, dtype=self.dtype)
        except OSError as error:
            raise EladError(f"student model '{self.name}': cannot load it ({error})") from None
        return model.to(self.device).eval()

    def load_saved(self, directory: Path):
        """A whole fine-tuned model saved by `StudentWeights.save`, on the device, in eval mode."""
        return self._loader().from_pretrained(directory, dtype=self.dtype).to(self.device).eval()

    def _loader(self):
        return AutoModelForSeq2SeqLM if self.is_seq2seq else AutoModelForCausalLM


def open_pretrained(config: StudentConfig) -> Pretrained:
    """Resolve `config.model`, choose device and dtype, read its tokenizer (padding with EOS where it has no
    pad token) and whether it is an encoder-decoder. Sets torch's CPU threads when `config.threads` is set."""
    if config.threads:
        torch.set_num_threads(config.threads)
    path = resolve_model(config.model)
    device, dtype = pick_device_and_dtype(config.dtype, full_finetune=config.lora is None)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        is_seq2seq = bool(getattr(AutoConfig.from_pretrained(path), "is_encoder_decoder", False))
    except (OSError, ValueError) as error:
        raise EladError(f"student model '{config.model}': cannot load it ({error})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Pretrained(config.model, path, device, dtype, tokenizer, is_seq2seq)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model to generate with, and what feeding it takes."""

    model: Any
    tokenizer: Any
    device: str


def load_model(config: StudentConfig) -> LoadedModel:
    """A base model with its tokenizer, loaded exactly as a student's is (same dtype rules, device, pad
    token): how the local teacher gets its model without being a student."""
    pretrained = open_pretrained(config)
    return LoadedModel(pretrained.load_base(), pretrained.tokenizer, pretrained.device)


class StudentWeights:
    """The weights a student holds now (the base model, it with a LoRA adapter, or a whole fine-tuned model)
    and what they were trained for. `version` changes with them, so that an engine holding a copy (vLLM)
    knows when to take the new ones."""

    def __init__(self, config: StudentConfig, pretrained: Pretrained):
        self.config, self.pretrained = config, pretrained
        self.objective, self.inference = "cot", "cot"  # what the current weights were trained with
        # Fold LoRA into the weights while generating: off, because merging into bf16 weights rounds most
        # of a LoRA delta away (outputs then drift back toward the base model's); exact in fp32 only.
        self.merge_for_generation = False
        self.merged = False
        self.version = 0
        self.pristine = False
        self.packed = PackedLinears()  # weights laid out for generation and scoring (packed_linear.py)
        self.model = self._load_base()

    def drop_model(self) -> None:
        """Let the weights held now go before others load, so that two models are never held at once. A load
        that then fails leaves the student without a model: the error ends the run, which reloads on resume."""
        self.model = None
        self.packed.drop()
        gc.collect()  # modules in reference cycles (wrappers, hooks) go with the collector, not the count

    def _load_base(self):
        self.drop_model()
        model = self.pretrained.load_base()
        self.merged = False
        self.version += 1
        self.pristine = True  # the base weights as loaded, nothing trained or merged into them yet
        return model

    def is_peft(self) -> bool:
        return hasattr(self.model, "peft_config")

    def reset(self) -> None:
        """Back to the base weights (retraining from scratch each round); kept when they are still as loaded
        (a training process's first training)."""
        if not (self.model is not None and self.pristine):
            self.model = self._load_base()
        self.objective, self.inference = "cot", "cot"

    # --- saved weights -----------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the trained weights (the LoRA adapter, or the whole model) aside, then rename into place."""
        directory = Path(directory)
        staging = directory.with_name(directory.name + ".partial")
        if staging.exists():
            shutil.rmtree(staging)
        self.model.save_pretrained(staging)  # a merged LoRA still saves its unchanged A and B matrices
        if not self.is_peft():
            self.pretrained.tokenizer.save_pretrained(staging)
        # how these weights expect to be prompted, so that a resumed run loads them as they were trained
        meta = {"objective": self.objective, "inference": self.inference}
        (staging / STUDENT_META).write_text(json.dumps(meta) + "\n", encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)

    def load(self, directory: Path) -> None:
        """The base model plus a saved adapter (or a saved full model) in place of the current weights."""
        directory = Path(directory)
        if not (directory / "adapter_config.json").exists():  # a full fine-tune: the whole model
            self.drop_model()
            self.model = self.pretrained.load_saved(directory)
            self.merged = False
            self.version += 1
        else:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self._load_base(), str(directory), is_trainable=True).eval()
        self.pristine = False  # trained weights
        meta = json.loads((directory / STUDENT_META).read_text()) if (directory / STUDENT_META).exists() else {}
        self.objective, self.inference = meta.get("objective", "cot"), meta.get("inference", "cot")

    # --- generating and scoring --------------------------------------------------------------------

    def merge_for_inference(self) -> None:
        """If `merge_for_generation`: fold LoRA into the weights for inference (no adapter matmuls per
        layer). The adapter matrices stay as they are, so saving still writes the adapter; training first
        restores the exact base weights (see unmerge_for_training)."""
        if self.merge_for_generation and self.is_peft() and not self.merged:
            self.model.merge_adapter()
            self.merged = True

    @contextmanager
    def for_inference(self):
        """The weights as generation and scoring use them: unfrozen on a CPU (`unfrozen`), LoRA merged where
        asked (`merge_for_inference`), and an unmerged adapter in the base's dtype (`adapter_in_base_dtype`),
        its layers each one accumulating product (lora_fused.py), and bf16 linear layers multiplying by weights
        laid out in advance (packed_linear.py)."""
        with inference_memory(), self.unfrozen():  # memory.py: large blocks stay on the heap
            self.merge_for_inference()
            weights_now = (id(self.model), self.version, self.merged)
            with self.adapter_in_base_dtype(), fused_lora(self.model), self.packed.applied(self.model, weights_now):
                yield

    @contextmanager
    def adapter_in_base_dtype(self):
        """A LoRA adapter trains in fp32 over bf16 base weights; run as it is, every adapted layer casts its
        input to fp32, multiplies in fp32 and casts back, a large share of generation on a CPU with native
        bf16 (bench/adapter_inference.py measures it). Here the adapter's weights are cast to the base's dtype for the
        block and its fp32 weights put back after. The adapter's output is then rounded to bf16 relative to
        its own size, not to the base weight's, as merging into bf16 weights would."""
        base = self.pretrained.dtype
        if base == torch.float32 or not self.is_peft() or self.merged:
            yield
            return
        kept = {}
        with torch.inference_mode(False):  # plain tensors, that training may take up again
            for name, parameter in self.model.named_parameters():
                if parameter.is_floating_point() and parameter.dtype != base:
                    kept[name] = parameter.data
                    parameter.data = parameter.data.to(base)
        try:
            yield
        finally:
            parameters = dict(self.model.named_parameters())
            for name, data in kept.items():
                parameters[name].data = data

    @contextmanager
    def unfrozen(self):
        """Mark every weight as requiring grad while generating or scoring (under inference_mode, so no
        grad is ever computed): on a CPU, generation with frozen weights, as LoRA leaves the base model, runs
        several times slower than with the same weights unfrozen (bench/frozen_weights.py measures it).
        The cause is torch.matmul: it multiplies a 3-d input by a 2-d weight as one matrix product when the
        weight requires grad or the input's rows lie evenly in memory; a slice such as each prompt's last
        position, against a frozen weight, becomes a batched product over a copy of the weight per row.
        Restored afterwards so training trains only the adapter."""
        frozen = [p for p in self.model.parameters() if not p.requires_grad]
        if self.pretrained.device != "cpu" or not frozen:
            yield
            return
        for parameter in frozen:
            parameter.requires_grad_(True)
        try:
            yield
        finally:
            for parameter in frozen:
                parameter.requires_grad_(False)

    # --- training ----------------------------------------------------------------------------------

    def start_training(self, warm_start: bool) -> None:
        """The weights training starts from: these (a warm start) or the base ones, with a LoRA adapter
        added when the student is a LoRA one and has none yet."""
        self.packed.drop()  # the weights change: their laid-out copies would be stale, and take memory
        if warm_start:
            self.unmerge_for_training()
        else:
            self.reset()
        self.model = self._with_adapter(self.model)
        self.pristine = False  # about to be trained

    def finish_training(self, objective: str, inference: str) -> None:
        """Trained weights, ready to generate: they now expect prompts as `objective` and `inference` say."""
        self.model.eval()
        self.model.config.use_cache = True  # the Trainer turns the KV cache off for training
        self.objective, self.inference = objective, inference
        self.version += 1

    def unmerge_for_training(self) -> None:
        """Undo a merge exactly: reload the base weights and put the trained adapter back (subtracting the
        merged delta again would leave bf16 rounding in the base)."""
        if not self.merged:
            return
        trained_with = self.objective, self.inference
        with tempfile.TemporaryDirectory(prefix="elad-adapter-") as scratch:
            self.model.save_pretrained(scratch)
            self.load(Path(scratch))
        self.objective, self.inference = trained_with
        self.merged = False

    def _with_adapter(self, model):
        if self.config.lora is None or hasattr(model, "peft_config"):
            return model
        from peft import LoraConfig, get_peft_model

        lora = self.config.lora
        peft_config = LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
            task_type="SEQ_2_SEQ_LM" if self.pretrained.is_seq2seq else "CAUSAL_LM",
        )
        return get_peft_model(model, peft_config)
