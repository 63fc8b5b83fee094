"""The student: a Hugging Face causal LM or seq2seq model (full weights or LoRA) that writes explanations,
scores answers after each step prefix, and is trained on teacher rationales.

Prompts given to the methods are user texts (a task's prompt); the student frames them: a causal LM with
its chat template (plain text for base models), a seq2seq model as they are. Under the step-by-step
objective a prompt is prefixed with `predict: ` (answer only) or `explain: ` (rationale), as in
Distilling Step-by-Step (Hsieh et al., 2023).
"""

import functools
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from elad.config import StudentConfig, TrainingConfig
from elad.errors import EladError
from elad.students import scoring
from elad.students.models import resolve_model
from elad.tasks.answers import answer_segment, split_rationale
from elad.tasks.base import ANSWER_CUE

IGNORE_INDEX = -100  # label value the loss skips: prompt tokens and padding

Progress = Callable[[int, int], None]  # (done, total)

STUDENT_META = "elad_student.json"  # written next to saved weights: the objective they were trained with

MODES = {"plain": "", "predict": "predict: ", "explain": "explain: "}


@dataclass(frozen=True)
class TrainRecord:
    """One annotated example. `cot` trains on (prompt -> target); `step_by_step` on (predict: prompt ->
    "So the answer is <answer>.") and (explain: prompt -> rationale, or the whole target when the student
    answers with a rationale at inference)."""

    prompt: str  # the user text: the task's prompt for the question
    target: str  # rationale + answer cue: the CoT target (an annotation's `target`)
    rationale: str | None = None  # step_by_step's explain target; derived from `target` when missing
    answer: str | None = None  # step_by_step's predict answer; derived from `target` when missing

    def explain_text(self) -> str:
        return self.rationale if self.rationale is not None else split_rationale(self.target)

    def answer_text(self) -> str:
        if self.answer is not None:
            return self.answer
        segment = answer_segment(self.target)
        return (segment or "").strip().rstrip(".").strip()


@dataclass
class TrainReport:
    examples: int
    steps: int
    loss: float | None
    seconds: float
    tokens: int  # target + prompt tokens seen, all epochs


def pick_device_and_dtype(requested: str, full_finetune: bool) -> tuple[str, torch.dtype]:
    """`auto`: bf16 on a GPU, and on a CPU that computes bf16 natively (AVX512-BF16 / AMX), where it is
    about twice as fast as fp32 for generation and LoRA training. On a CPU without it (AVX2 only) bf16 is
    emulated: a SmolLM2 LoRA step measured 50x slower than fp32 (backward 235 s against 4.4 s), so fp32.
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


def cpu_computes_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 / AMX); emulated bf16 is far slower than fp32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _unfrozen_for_inference(method):
    """Run a generating or scoring method inside Student._inference_weights()."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._inference_weights():
            return method(self, *args, **kwargs)

    return wrapper


class Student:
    def __init__(self, config: StudentConfig):
        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.path = resolve_model(config.model)
        self.device, self.dtype = pick_device_and_dtype(config.dtype, full_finetune=config.lora is None)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.is_seq2seq = bool(getattr(AutoConfig.from_pretrained(self.path), "is_encoder_decoder", False))
        except (OSError, ValueError) as error:
            raise EladError(f"student model '{config.model}': cannot load it ({error})") from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.objective = "cot"  # what the current weights were trained with (set by train)
        self.inference = "cot"
        # Fold LoRA into the weights while generating: off, because merging into bf16 weights rounds most
        # of a LoRA delta away (outputs then drift back toward the base model's); exact in fp32 only.
        self.merge_for_generation = False
        self._merged = False
        self._weights_version = 0  # counts weight changes, so the vLLM engine knows when to load new ones
        self._vllm, self._vllm_version, self._vllm_scratch = None, -1, None
        if config.generation == "vllm":
            self._check_vllm()
        self.model = self._load_base()

    # --- weights -----------------------------------------------------------------------------------

    def _load_base(self):
        loader = AutoModelForSeq2SeqLM if self.is_seq2seq else AutoModelForCausalLM
        try:
            model = loader.from_pretrained(self.path, dtype=self.dtype)
        except OSError as error:
            raise EladError(f"student model '{self.config.model}': cannot load it ({error})") from None
        self._merged = False
        self._weights_version += 1
        return model.to(self.device).eval()

    def reset(self) -> None:
        """Back to the base weights (retraining from scratch each round)."""
        self.model = self._load_base()
        self.objective, self.inference = "cot", "cot"

    def save_adapter(self, directory: Path) -> None:
        """Write the trained weights (the LoRA adapter, or the whole model) aside, then rename into place."""
        directory = Path(directory)
        staging = directory.with_name(directory.name + ".partial")
        if staging.exists():
            shutil.rmtree(staging)
        self.model.save_pretrained(staging)  # a merged LoRA still saves its unchanged A and B matrices
        if not self._is_peft():
            self.tokenizer.save_pretrained(staging)
        # how these weights expect to be prompted, so that a resumed run loads them as they were trained
        meta = {"objective": self.objective, "inference": self.inference}
        (staging / STUDENT_META).write_text(json.dumps(meta) + "\n", encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)

    def load_adapter(self, directory: Path) -> None:
        """The base model plus a saved adapter (or a saved full model) in place of the current weights."""
        directory = Path(directory)
        if not (directory / "adapter_config.json").exists():  # a full fine-tune: the whole model
            loader = AutoModelForSeq2SeqLM if self.is_seq2seq else AutoModelForCausalLM
            self.model = loader.from_pretrained(directory, dtype=self.dtype).to(self.device).eval()
            self._merged = False
            self._weights_version += 1
        else:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self._load_base(), str(directory), is_trainable=True).eval()
        meta = json.loads((directory / STUDENT_META).read_text()) if (directory / STUDENT_META).exists() else {}
        self.objective, self.inference = meta.get("objective", "cot"), meta.get("inference", "cot")

    def _is_peft(self) -> bool:
        return hasattr(self.model, "peft_config")

    def _merged_for_generation(self) -> None:
        """If `merge_for_generation`: fold LoRA into the weights for inference (no adapter matmuls per
        layer). The adapter matrices stay as they are, so saving still writes the adapter; training first
        restores the exact base weights (see _unmerged_for_training)."""
        if self.merge_for_generation and self._is_peft() and not self._merged:
            self.model.merge_adapter()
            self._merged = True

    @contextmanager
    def _inference_weights(self):
        """Mark every weight as requiring grad while generating or scoring (under inference_mode, so no
        grad is ever computed). Measured here (torch 2.13 CPU, bf16, Qwen2.5-0.5B, batch 16): generation
        with frozen weights, as LoRA leaves the base model, runs 3.5x slower than with the same weights
        unfrozen; see bench/frozen_weights.py. Restored afterwards so training trains only the adapter."""
        frozen = [p for p in self.model.parameters() if not p.requires_grad]
        if self.device != "cpu" or not frozen:
            yield
            return
        for parameter in frozen:
            parameter.requires_grad_(True)
        try:
            yield
        finally:
            for parameter in frozen:
                parameter.requires_grad_(False)

    def _unmerged_for_training(self) -> None:
        """Undo a merge exactly: reload the base weights and put the trained adapter back (subtracting the
        merged delta again would leave bf16 rounding in the base)."""
        if not self._merged:
            return
        trained_with = self.objective, self.inference
        with tempfile.TemporaryDirectory(prefix="elad-adapter-") as scratch:
            self.model.save_pretrained(scratch)
            self.load_adapter(Path(scratch))
        self.objective, self.inference = trained_with
        self._merged = False

    # --- text in, text out -------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _mode(self, mode: str | None, for_explanations: bool) -> str:
        """The prompt prefix in force: `mode` when given, else what the last training implies."""
        if mode is not None:
            if mode not in MODES:
                raise EladError(f"unknown prompt mode '{mode}'; known: {', '.join(MODES)}")
            return mode
        if self.objective != "step_by_step":
            return "plain"
        if for_explanations or self.inference == "cot":
            return "explain"
        return "predict"

    def render_prompt(self, user_text: str, mode: str = "plain") -> str:
        """The student's input: the user turn as the chat template frames it (plain text for base and
        seq2seq models), after the mode's prefix."""
        user_text = MODES[mode] + user_text
        if self.is_seq2seq:
            return user_text
        if self.tokenizer.chat_template:
            messages = [{"role": "user", "content": user_text}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{user_text}\n"

    def render_target(self, user_text: str, target: str) -> str:
        """What follows the prompt in a finished conversation: the target and the turn's end marker."""
        if not self.is_seq2seq and self.tokenizer.chat_template:
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
        mode: str | None = None,
    ) -> list[str]:
        """One continuation per prompt (user texts), batched; longest first so padding stays small.
        `mode` None: plain prompts, or for a step-by-step student its configured inference task."""
        rendered = [self.render_prompt(p, self._mode(mode, for_explanations=False)) for p in prompts]
        texts = self._generate_rendered(rendered, 1, max_new_tokens, sample, temperature, top_p, seed, progress)
        return [t[0] for t in texts]

    @torch.inference_mode()
    def explain(
        self,
        prompts: list[str],
        samples: int = 4,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_new_tokens: int | None = None,
        seed: int = 0,
        progress: Progress | None = None,
        mode: str | None = None,
    ) -> list[list[str]]:
        """Per prompt, the greedy explanation then `samples` sampled ones: [greedy, s1, ..., sK]. Batched
        (several return sequences per prompt), deterministic for a seed with the same prompts and batch size."""
        rendered = [self.render_prompt(p, self._mode(mode, for_explanations=True)) for p in prompts]
        total = len(prompts) * (1 + samples)

        def greedy_progress(done, _):
            if progress:
                progress(done, total)

        def sample_progress(done, _):
            if progress:
                progress(len(prompts) + done * samples, total)

        greedy = self._generate_rendered(rendered, 1, max_new_tokens, False, 1.0, 1.0, seed, greedy_progress)
        if samples <= 0:
            return greedy
        sampled = self._generate_rendered(rendered, samples, max_new_tokens, True, temperature, top_p, seed, sample_progress)
        return [g + s for g, s in zip(greedy, sampled)]

    def _generate_rendered(self, rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed, progress):
        max_new_tokens = max_new_tokens or self.config.max_new_tokens
        if self.config.generation == "vllm":
            outputs = self._vllm_engine().generate(rendered, per_prompt, max_new_tokens, sample, temperature,
                                                   top_p, seed)
            if progress:
                progress(len(rendered), len(rendered))
            return outputs
        return self._generate_with_transformers(rendered, per_prompt, max_new_tokens, sample, temperature, top_p,
                                                seed, progress)

    @_unfrozen_for_inference
    def _generate_with_transformers(self, rendered, per_prompt, max_new_tokens, sample, temperature, top_p, seed,
                                    progress):
        self._merged_for_generation()
        order = sorted(range(len(rendered)), key=lambda i: -len(rendered[i]))
        outputs: list[list[str]] = [[] for _ in rendered]
        prompts_per_batch = max(1, self.config.generation_batch_size // per_prompt)
        self.tokenizer.padding_side = "right" if self.is_seq2seq else "left"
        if sample:
            torch.manual_seed(seed)
        for start in range(0, len(order), prompts_per_batch):
            indices = order[start: start + prompts_per_batch]
            batch = self.tokenizer(
                [rendered[i] for i in indices], return_tensors="pt", padding=True,
                add_special_tokens=self.is_seq2seq,
            ).to(self.device)
            generated = self.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                num_return_sequences=per_prompt,
                temperature=temperature if sample else None,
                top_p=top_p if sample else None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            skip = 1 if self.is_seq2seq else batch["input_ids"].shape[1]  # the decoder start / the prompt
            texts = self.tokenizer.batch_decode(generated[:, skip:], skip_special_tokens=True)
            for n, i in enumerate(indices):
                outputs[i] = [t.strip() for t in texts[n * per_prompt: (n + 1) * per_prompt]]
            if progress:
                progress(min(start + prompts_per_batch, len(order)), len(order))
        return outputs

    # --- vLLM (optional, GPU) ----------------------------------------------------------------------

    def _check_vllm(self) -> None:
        """Refuse at start what the vLLM engine cannot do, rather than after a round of work."""
        from elad.students.vllm_engine import import_vllm, require_cuda

        if self.is_seq2seq:
            raise EladError(f"student.generation: vllm is for decoder-only students; '{self.config.model}' is a "
                            "seq2seq model (use 'transformers')")
        if self.config.lora is None:
            raise EladError("student.generation: vllm needs a LoRA student (student.lora set): it swaps in each "
                            "round's adapter, and cannot swap a fully fine-tuned model's weights in place")
        import_vllm()
        require_cuda()

    def _vllm_engine(self):
        """The engine, started on first use, with the current adapter handed to it (saved to a scratch
        folder once per weight change)."""
        from elad.students.vllm_engine import VllmEngine

        if self._vllm is None:
            dtype = "bfloat16" if self.dtype == torch.bfloat16 else "float32"
            self._vllm = VllmEngine(self.path, dtype, seed=0, lora_rank=self.config.lora.r,
                                    options=self.config.vllm_options)
            self._vllm_scratch = tempfile.TemporaryDirectory(prefix="elad-vllm-")
        if self._vllm_version != self._weights_version:
            adapter = None
            if self._is_peft():
                adapter = Path(self._vllm_scratch.name) / f"v{self._weights_version}"
                self.model.save_pretrained(adapter)
            self._vllm.use_adapter(adapter, self._weights_version)
            self._vllm_version = self._weights_version
        return self._vllm

    # --- answers after step prefixes ---------------------------------------------------------------

    @torch.inference_mode()
    @_unfrozen_for_inference
    def answer_scores(
        self,
        prompts: list[str],
        steps_per_prompt: list[list[str]],
        candidates_per_prompt: list[Sequence[str]],
        cue: str = ANSWER_CUE,
        parse: Callable[[str], str | None] | None = None,
        max_answer_tokens: int = 8,
        mode: str | None = None,
        progress: Progress | None = None,
    ) -> list[list[dict[str, float]]]:
        """For each prompt and i = 0..n, the answer distribution after the first i steps and the cue:
        the text scored is prompt + "\\n".join(steps[:i] + [cue]) + " " + candidate. With candidates: a
        softmax over their summed token log-probabilities (teacher forcing). Without (open answers): the
        greedy short answer after the cue, {parse(answer) or "": 1.0} (the raw answer without `parse`).
        All prefixes of a prompt are scored in one forward pass over the shared prefix."""
        rendered = [self.render_prompt(p, self._mode(mode, for_explanations=True)) for p in prompts]
        items = [self._item(r, steps, cands, cue) for r, steps, cands in zip(rendered, steps_per_prompt, candidates_per_prompt)]
        self._merged_for_generation()
        results: list[list[dict[str, float]]] = [[] for _ in items]
        closed = [i for i, item in enumerate(items) if item.candidate_ids]
        open_ = [i for i, item in enumerate(items) if not item.candidate_ids]
        done, total = 0, len(items)
        for group, scorer in ((closed, self._score_closed), (open_, self._score_open)):
            group = sorted(group, key=lambda i: -self._item_size(items[i]))
            for start in range(0, len(group), self.config.generation_batch_size):
                indices = group[start: start + self.config.generation_batch_size]
                for i, distributions in zip(indices, scorer([items[i] for i in indices], [candidates_per_prompt[i] for i in indices], parse, max_answer_tokens)):
                    results[i] = distributions
                done += len(indices)
                if progress:
                    progress(done, total)
        return results

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _item(self, rendered: str, steps: list[str], candidates: Sequence[str], cue: str) -> scoring.Item:
        prompt_ids = self.tokenizer(rendered, add_special_tokens=self.is_seq2seq)["input_ids"]
        step_ids = [self._ids(("\n" if k else "") + step) for k, step in enumerate(steps)]
        cue_ids = [self._ids(("\n" if i else "") + cue) for i in range(len(steps) + 1)]
        return scoring.Item(prompt_ids, step_ids, cue_ids, [self._ids(" " + c) for c in candidates])

    @staticmethod
    def _item_size(item: scoring.Item) -> int:
        return len(item.prompt_ids) + sum(len(s) for s in item.step_ids)

    def _decoder_start(self) -> int:
        return self.model.config.decoder_start_token_id if self.model.config.decoder_start_token_id is not None \
            else self.tokenizer.pad_token_id

    def _score_closed(self, items, candidates, parse, max_answer_tokens):
        if self.is_seq2seq:
            raw = scoring.seq2seq_candidate_scores(self.model, items, self._decoder_start(), self.tokenizer.pad_token_id, self.device)
        else:
            raw = scoring.causal_candidate_scores(self.model, items, self.device, self.dtype)
        return [[scoring.normalise(lp, cands) for lp in per_boundary] for per_boundary, cands in zip(raw, candidates)]

    def _stop_ids(self) -> set[int]:
        """End of turn, padding, and every token that holds a line break: a short answer ends there."""
        if not hasattr(self, "_stops"):
            stops = {t for t in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id) if t is not None}
            vocab = self.tokenizer.get_vocab()
            texts = self.tokenizer.batch_decode([[i] for i in vocab.values()])
            stops |= {i for i, text in zip(vocab.values(), texts) if "\n" in text}
            self._stops = stops
        return self._stops

    def _score_open(self, items, candidates, parse, max_answer_tokens):
        stops = self._stop_ids()
        if self.is_seq2seq:
            tokens = scoring.seq2seq_greedy_answers(
                self.model, items, self._decoder_start(), self.tokenizer.pad_token_id, self.device, max_answer_tokens, stops)
        else:
            tokens = scoring.causal_greedy_answers(self.model, items, self.device, self.dtype, max_answer_tokens, stops)
        return [[scoring.one_hot(self.tokenizer.decode(t, skip_special_tokens=True), parse) for t in per_boundary]
                for per_boundary in tokens]

    # --- training ----------------------------------------------------------------------------------

    def encode_pair(self, user_text: str, target: str, max_length: int, mode: str = "plain") -> dict:
        """Token ids of prompt + target with labels only on the target (causal LM: prompt labels ignored);
        for a seq2seq model, the encoder input and the target as labels."""
        if self.is_seq2seq:
            input_ids = self.tokenizer(MODES[mode] + user_text, add_special_tokens=True)["input_ids"][:max_length]
            labels = self.tokenizer(target, add_special_tokens=True)["input_ids"]
            eos = self.tokenizer.eos_token_id
            if eos is not None and (not labels or labels[-1] != eos):
                labels = labels + [eos]
            return {"input_ids": input_ids, "labels": labels[:max_length]}
        prompt_ids = self._ids(self.render_prompt(user_text, mode))
        target_ids = self._ids(self.render_target(MODES[mode] + user_text, target))
        input_ids = (prompt_ids + target_ids)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + target_ids)[:max_length]
        return {"input_ids": input_ids, "labels": labels}

    def features(self, records: list[TrainRecord], settings: TrainingConfig) -> list[dict]:
        """Training features for the objective: {input_ids, labels}, or {predict: ..., explain: ...}."""
        if settings.objective == "cot":
            return [self.encode_pair(r.prompt, r.target, settings.max_length) for r in records]
        features = []
        for r in records:
            explain_target = r.target if settings.inference == "cot" else r.explain_text()
            features.append({
                "predict": self.encode_pair(r.prompt, f"{ANSWER_CUE} {r.answer_text()}.", settings.max_length, "predict"),
                "explain": self.encode_pair(r.prompt, explain_target, settings.max_length, "explain"),
            })
        return features

    def train(
        self,
        examples: Sequence[TrainRecord | tuple[str, str]],
        settings: TrainingConfig,
        seed: int,
        warm_start: bool = False,
        progress: Progress | None = None,
        log_dir: Path | None = None,
        run_name: str | None = None,
    ) -> TrainReport:
        """Fine-tune on annotated examples: TrainRecords, or (user text, target) pairs (rationale and answer
        then read from the target). `cot`: loss on the target tokens; `step_by_step`: alpha * predict loss +
        (1 - alpha) * explain loss. Starts from the base weights unless `warm_start`. Trackers named in
        `settings.report_to` log under `log_dir` as `run_name`."""
        from elad.students.training import fit

        if not examples:
            raise EladError("nothing to train on: no annotated examples yet")
        records = [e if isinstance(e, TrainRecord) else TrainRecord(prompt=e[0], target=e[1]) for e in examples]
        if settings.processes > 1:
            from elad.students.launch import train_in_processes

            report = train_in_processes(self, records, settings, seed, warm_start, log_dir, run_name)
            self._weights_version += 1
            return report
        if warm_start:
            self._unmerged_for_training()
        else:
            self.reset()
        self.model = self._with_adapter(self.model)
        features = self.features(records, settings)
        started = time.time()
        steps, loss = fit(self.model, features, settings, seed, self.tokenizer.pad_token_id, progress,
                          seq2seq=self.is_seq2seq,
                          autocast_bf16=not self._is_peft() and self.config.dtype == "auto",
                          log_dir=log_dir, run_name=run_name)
        self.model.eval()
        self.model.config.use_cache = True  # the Trainer turns the KV cache off for training
        self.objective, self.inference = settings.objective, settings.inference
        self._weights_version += 1
        tokens = sum(_feature_tokens(f, self.is_seq2seq) for f in features) * math.ceil(settings.epochs)
        return TrainReport(len(records), steps, loss, time.time() - started, tokens)

    def _with_adapter(self, model):
        if self.config.lora is None or hasattr(model, "peft_config"):
            return model
        from peft import LoraConfig, get_peft_model

        lora = self.config.lora
        peft_config = LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=lora.target_modules, task_type="SEQ_2_SEQ_LM" if self.is_seq2seq else "CAUSAL_LM",
        )
        return get_peft_model(model, peft_config)


def _feature_tokens(feature: dict, seq2seq: bool) -> int:
    """Tokens a feature feeds the model: prompt + target (decoder-only), encoder + decoder (seq2seq)."""
    if "input_ids" not in feature:
        return sum(_feature_tokens(part, seq2seq) for part in feature.values())
    return len(feature["input_ids"]) + (len(feature["labels"]) if seq2seq else 0)
