"""The student: a Hugging Face causal LM (with LoRA) that writes explanations and is trained on them."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from elad.config import StudentConfig, TrainingConfig
from elad.errors import EladError
from elad.students.models import resolve_model

IGNORE_INDEX = -100  # label value the loss skips: prompt tokens and padding

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class TrainReport:
    examples: int
    steps: int
    loss: float | None
    seconds: float
    tokens: int  # target + prompt tokens seen, all epochs


def pick_device_and_dtype(requested: str, full_finetune: bool) -> tuple[str, torch.dtype]:
    """bf16 on GPU; on CPU bf16 too (about twice as fast as fp32 here), except full fine-tuning, where
    bf16 weights would swallow small AdamW updates."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "float32":
        return device, torch.float32
    if requested == "bfloat16":
        return device, torch.bfloat16
    if device == "cpu" and full_finetune:
        return device, torch.float32
    return device, torch.bfloat16


class Student:
    def __init__(self, config: StudentConfig):
        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.path = resolve_model(config.model)
        self.device, self.dtype = pick_device_and_dtype(config.dtype, full_finetune=config.lora is None)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        except OSError as error:
            raise EladError(f"student model '{config.model}': cannot load its tokenizer ({error})") from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = self._load_base()

    # --- weights -----------------------------------------------------------------------------------

    def _load_base(self):
        try:
            model = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype)
        except OSError as error:
            raise EladError(f"student model '{self.config.model}': cannot load it ({error})") from None
        return model.to(self.device).eval()

    def reset(self) -> None:
        """Back to the base weights (retraining from scratch each round)."""
        self.model = self._load_base()

    def save_adapter(self, directory: Path) -> None:
        """Write the trained weights (the LoRA adapter, or the whole model) aside, then rename into place."""
        directory = Path(directory)
        staging = directory.with_name(directory.name + ".partial")
        self.model.save_pretrained(staging)
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        staging.rename(directory)

    def load_adapter(self, directory: Path) -> None:
        from peft import PeftModel

        self.model = PeftModel.from_pretrained(self._load_base(), str(directory), is_trainable=True).eval()

    # --- text in, text out -------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render_prompt(self, user_text: str) -> str:
        """The student's input as its chat template frames a user turn (plain text for base models)."""
        if self.tokenizer.chat_template:
            messages = [{"role": "user", "content": user_text}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{user_text}\n"

    def render_target(self, user_text: str, target: str) -> str:
        """What follows the prompt in a finished conversation: the target and the turn's end marker."""
        if self.tokenizer.chat_template:
            messages = [{"role": "user", "content": user_text}, {"role": "assistant", "content": target}]
            full = self.tokenizer.apply_chat_template(messages, tokenize=False)
            prompt = self.render_prompt(user_text)
            if full.startswith(prompt):
                return full[len(prompt):]
        return target + (self.tokenizer.eos_token or "")

    @torch.inference_mode()
    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int | None = None,
        sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> list[str]:
        """Continuations of `prompts` (user texts), batched; longest first so padding stays small."""
        max_new_tokens = max_new_tokens or self.config.max_new_tokens
        rendered = [self.render_prompt(p) for p in prompts]
        order = sorted(range(len(rendered)), key=lambda i: -len(rendered[i]))
        outputs: list[str] = [""] * len(prompts)
        batch_size = self.config.generation_batch_size
        self.tokenizer.padding_side = "left"
        if sample:
            torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            indices = order[start: start + batch_size]
            batch = self.tokenizer(
                [rendered[i] for i in indices], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.device)
            generated = self.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                temperature=temperature if sample else None,
                top_p=top_p if sample else None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new_tokens = generated[:, batch["input_ids"].shape[1]:]
            for i, text in zip(indices, self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                outputs[i] = text.strip()
            if progress:
                progress(min(start + batch_size, len(order)), len(order))
        return outputs

    # --- training ----------------------------------------------------------------------------------

    def encode_pair(self, user_text: str, target: str, max_length: int) -> dict:
        """Token ids of prompt + target, with labels only on the target (prompt tokens are ignored)."""
        prompt_ids = self.tokenizer(self.render_prompt(user_text), add_special_tokens=False)["input_ids"]
        target_ids = self.tokenizer(self.render_target(user_text, target), add_special_tokens=False)["input_ids"]
        input_ids = (prompt_ids + target_ids)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + target_ids)[:max_length]
        return {"input_ids": input_ids, "labels": labels}

    def train(
        self,
        pairs: list[tuple[str, str]],
        settings: TrainingConfig,
        seed: int,
        warm_start: bool = False,
        progress: Progress | None = None,
    ) -> TrainReport:
        """Fine-tune on (user text, target) pairs with the loss on target tokens only."""
        from elad.students.training import fit

        if not pairs:
            raise EladError("nothing to train on: no annotated examples yet")
        if not warm_start:
            self.reset()
        self.model = self._with_adapter(self.model)
        features = [self.encode_pair(u, t, settings.max_length) for u, t in pairs]
        started = time.time()
        steps, loss = fit(self.model, features, settings, seed, self.tokenizer.pad_token_id, progress)
        self.model.eval()
        tokens = sum(len(f["input_ids"]) for f in features) * math.ceil(settings.epochs)
        return TrainReport(len(pairs), steps, loss, time.time() - started, tokens)

    def _with_adapter(self, model):
        if self.config.lora is None or hasattr(model, "peft_config"):
            return model
        from peft import LoraConfig, get_peft_model

        lora = self.config.lora
        peft_config = LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=lora.target_modules, task_type="CAUSAL_LM",
        )
        return get_peft_model(model, peft_config)
