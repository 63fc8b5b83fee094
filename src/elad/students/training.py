"""Training through the Hugging Face Trainer: the loss on target tokens only, one task or two.

- `cot`: a batch of {input_ids, labels}; the loss is the mean over target tokens.
- `step_by_step`: a batch of {predict: ..., explain: ...}; loss = alpha * predict loss + (1 - alpha) *
  explain loss, each the mean over its target tokens (Distilling Step-by-Step's multi-task loss).

For a decoder-only model the vocabulary projection is computed only where a target token is predicted
(`logits_to_keep` with a boolean mask): prompt positions cost no logits, which matters with 150k-token
vocabularies. Batches are drawn grouped by length, so there is little padding.

`train` is how a student trains: here, or with `training.processes` > 1 in several processes started by
`accelerate launch` (launch.py starts them, train_worker.py is what each runs, this module again). Given a
folder, it checkpoints as it goes and resumes an interrupted training of the same set (checkpoints.py).
"""

import dataclasses
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from elad.config import TrainingConfig
from elad.errors import EladError
from elad.students import checkpoints
from elad.students.chunked_loss import chunked_cross_entropy, hidden_states_out, plain_head
from elad.students.common import IGNORE_INDEX, Progress, TrainRecord, TrainReport, cpu_computes_bf16
from elad.students.launch import train_in_processes
from elad.students.lora_fused import lean_lora_training
from elad.students.memory import training_memory
from elad.students.prompting import PromptFormat
from elad.students.scoring import _accepts_logits_to_keep
from elad.students.weights import StudentWeights


def train(
    weights: StudentWeights,
    prompts: PromptFormat,
    examples: Sequence[TrainRecord | tuple[str, str]],
    settings: TrainingConfig,
    seed: int,
    warm_start: bool = False,
    progress: Progress | None = None,
    log_dir: Path | None = None,
    run_name: str | None = None,
) -> TrainReport:
    """Fine-tune `weights` in place on annotated examples (see Student.train), in this process or in
    `settings.processes` launched ones. With `log_dir`, checkpoints go there every
    `settings.checkpoint_minutes` while it trains, and a training of the same set stopped before its end
    resumes from the last one."""
    if not examples:
        raise EladError("nothing to train on: no annotated examples yet")
    records = [e if isinstance(e, TrainRecord) else TrainRecord(prompt=e[0], target=e[1]) for e in examples]
    checkpointed = log_dir is not None and settings.checkpoint_minutes > 0
    if checkpointed:
        checkpoints.claim(log_dir, checkpoints.training_key(
            weights.config.model_dump(mode="json"), records, settings.model_dump(mode="json"), seed, warm_start))
        checkpoints.prune(log_dir)
    if settings.processes > 1 or settings.own_process:
        report = train_in_processes(weights, records, settings, seed, warm_start, log_dir, run_name, progress)
        weights.version += 1  # as after training here (loading the trained weights counted one change already)
    else:
        report = train_here(weights, prompts, records, settings, seed, warm_start, progress, log_dir, run_name)
    if checkpointed:
        checkpoints.drop(log_dir)  # trained: the loop saves the round's adapter
    return report


def train_here(weights, prompts, records, settings, seed, warm_start, progress=None, log_dir=None,
               run_name=None) -> TrainReport:
    """Train in this process (or as one of several launched ones: train_worker.py), resuming from a
    checkpoint in `log_dir` that `train` left there for this training."""
    # A new adapter's initial weights come from the seed alone, not from whatever ran before in this process
    # (a resumed run trains its next round as an unstopped one would)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        weights.start_training(warm_start)
    features = prompts.features(records, settings)
    started = time.time()
    seq2seq = weights.pretrained.is_seq2seq
    with training_memory(lean=settings.gradient_checkpointing):  # memory.py: a low peak, or speed
        with lean_lora_training(weights.model):  # LoRA layers in fewer passes (lora_fused.py)
            steps, loss = fit(weights.model, features, settings, seed, weights.pretrained.tokenizer.pad_token_id,
                              progress, seq2seq=seq2seq, log_dir=log_dir, run_name=run_name,
                              autocast_bf16=weights.config.dtype == "auto")
        weights.finish_training(settings.objective, settings.inference)
    tokens = sum(_feature_tokens(f, seq2seq) for f in features) * math.ceil(settings.epochs)
    return TrainReport(len(records), steps, loss, time.time() - started, tokens)


def _feature_tokens(feature: dict, seq2seq: bool) -> int:
    """Tokens a feature feeds the model: prompt + target (decoder-only), encoder + decoder (seq2seq)."""
    if "input_ids" not in feature:
        return sum(_feature_tokens(part, seq2seq) for part in feature.values())
    return len(feature["input_ids"]) + (len(feature["labels"]) if seq2seq else 0)


class PadCollator:
    """Right-pads {input_ids, labels} features; padding gets no attention and no loss. Multi-task features
    ({task: {input_ids, labels}}) are padded per task."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict:
        if "input_ids" not in features[0]:
            return {task: self(list(f[task] for f in features)) for task in features[0]}
        width = max(len(f["input_ids"]) for f in features)
        label_width = max(len(f["labels"]) for f in features)
        input_ids, labels, attention = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            input_ids.append(f["input_ids"] + [self.pad_token_id] * pad)
            labels.append(f["labels"] + [IGNORE_INDEX] * (label_width - len(f["labels"])))
            attention.append([1] * len(f["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(input_ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(attention),
        }


def target_loss(model, batch: dict, seq2seq: bool) -> torch.Tensor:
    """Mean cross-entropy over the labelled tokens of a padded batch."""
    if seq2seq:
        return model(**batch).loss  # labels are the decoder's targets; -100 padding is skipped
    labels = batch["labels"]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX  # position t predicts token t + 1
    targets = labels[:, 1:][keep[:, :-1]]
    if not _accepts_logits_to_keep(model):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[keep]
        return F.cross_entropy(logits.float(), targets)
    start = _shared_prompt_start(batch, keep, model)
    head = plain_head(model)
    if head is None:
        return F.cross_entropy(_kept_logits(model, batch, keep, start).float(), targets)
    with hidden_states_out(head):  # chunked_loss.py: no whole logits, a steady memory use
        hidden = _kept_logits(model, batch, keep, start)
    return chunked_cross_entropy(hidden, head.weight, targets)


SHARED_START_MIN = 8  # tokens: a shorter common start is not worth a separate pass


def _shared_prompt_start(batch: dict, keep: torch.Tensor, model) -> int:
    """How many leading tokens every row of the batch shares before its first kept position (the chat
    template's opening, an instruction placed first): computed once per batch instead of once per row.
    0 when under SHARED_START_MIN, for a single row, in a DistributedDataParallel model (two forward calls
    per step are not what its gradient hooks expect), or under gradient checkpointing (whose layers keep
    no cache to pass the shared keys and values on)."""
    ids = batch["input_ids"]
    if ids.shape[0] < 2 or isinstance(model, torch.nn.parallel.DistributedDataParallel) or _recomputes(model):
        return 0
    same = (ids == ids[:1]).all(dim=0).long().cumprod(0).sum().item()
    first_kept = int(keep.float().argmax(dim=1).min().item())  # every row has a target: keep is never all False
    length = min(same, first_kept)
    return length if length >= SHARED_START_MIN else 0


def _recomputes(model) -> bool:
    """Whether the model's layers recompute their activations in the backward pass (gradient checkpointing)."""
    return any(getattr(module, "gradient_checkpointing", False) for module in model.modules())


def _kept_logits(model, batch: dict, keep: torch.Tensor, start: int) -> torch.Tensor:
    """Logits at the kept positions. With a shared start, its keys and values come from one row's pass,
    repeated for the batch (gradients flow back through the repeat); LoRA dropout then draws one mask for
    that start instead of one per row."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if not start:
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
        return logits[keep] if logits.dim() == 3 else logits
    # no logits for the shared start (an empty mask): one position's, sliced from the hidden states, would
    # cost a copy of the vocabulary projection's weight (matmul multiplies a sliced 3-d input by a frozen
    # weight as a batched product over an expanded copy of it; weights.unfrozen says more)
    none = torch.zeros(1, start, dtype=torch.bool, device=ids.device)
    past = model(input_ids=ids[:1, :start], use_cache=True, logits_to_keep=none).past_key_values
    past.batch_repeat_interleave(ids.shape[0])
    positions = torch.arange(start, ids.shape[1], device=ids.device).expand(ids.shape[0], -1)
    logits = model(input_ids=ids[:, start:], attention_mask=mask, position_ids=positions, past_key_values=past,
                   use_cache=True, logits_to_keep=keep[:, start:]).logits
    return logits[keep[:, start:]] if logits.dim() == 3 else logits


def multitask_loss(model, batch: dict, alpha: float, seq2seq: bool) -> torch.Tensor:
    """alpha * predict loss + (1 - alpha) * explain loss (a task with weight 0 is not run)."""
    loss = 0.0
    if alpha > 0:
        loss = loss + alpha * target_loss(model, batch["predict"], seq2seq)
    if alpha < 1:
        loss = loss + (1 - alpha) * target_loss(model, batch["explain"], seq2seq)
    return loss


class SeededLengthSampler(LengthGroupedSampler):
    """Batches of similar length, in an order drawn from the seed and the epoch alone (not from the global
    random state, which dropout moves): a training resumed from a checkpoint meets the same batches as one
    that was never stopped, and every process of a launched training the same order."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.epoch = 0

    def __iter__(self):
        self.generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        return super().__iter__()


class _EpochToSampler(TrainerCallback):
    """Tells the sampler which epoch begins: after a resume the Trainer starts mid-training, and its own
    set_epoch does not reach a sampler behind a skipping, sharded batch sampler."""

    def __init__(self, trainer: "DistilTrainer"):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.trainer.sampler.epoch = int(state.epoch + 1e-6)  # a float, exactly n when epoch n ends


class DistilTrainer(Trainer):
    """The Trainer with elad's losses and a seeded length-grouped sampler over precomputed lengths."""

    def __init__(self, *args, alpha: float, seq2seq: bool, lengths: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.seq2seq = seq2seq
        self.lengths = lengths
        self.sampler: SeededLengthSampler | None = None  # made with the train dataloader
        self.add_callback(_EpochToSampler(self))
        self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it for accumulation

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "predict" in inputs:
            loss = multitask_loss(model, inputs, self.alpha, self.seq2seq)
        else:
            loss = target_loss(model, inputs, self.seq2seq)
        return (loss, None) if return_outputs else loss

    def _get_train_sampler(self, train_dataset=None):
        # batches of similar length: less padding (lengths of both tasks together for step_by_step)
        self.sampler = SeededLengthSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                           self.lengths, self.args.seed)
        return self.sampler


class _ReportProgress(TrainerCallback):
    def __init__(self, progress):
        self.progress = progress
        self.last_loss = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress:
            self.progress(state.global_step, state.max_steps)


def feature_length(feature: dict) -> int:
    if "input_ids" in feature:
        return len(feature["input_ids"]) + len(feature["labels"])
    return sum(feature_length(part) for part in feature.values())


def training_arguments(output_dir: str, settings: TrainingConfig, seed: int, mixed_bf16: bool,
                       run_name: str | None = None) -> TrainingArguments:
    return TrainingArguments(
        **_checkpointing_arguments(settings.gradient_checkpointing),
        output_dir=output_dir,
        run_name=run_name,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0.05,
        logging_steps=1,
        save_strategy="no",  # checkpoints.SaveEvery asks for saves by the clock
        save_total_limit=1,
        report_to=list(settings.report_to),
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=mixed_bf16,
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # LoRA and full fine-tuning use every trainable weight each step
    )


def fit(model, features: list[dict], settings: TrainingConfig, seed: int, pad_token_id: int, progress=None,
        seq2seq: bool = False, autocast_bf16: bool = False, log_dir: Path | None = None, run_name: str | None = None):
    """Train `model` in place; returns (optimizer steps, last logged loss).

    Mixed precision (bf16 autocast over fp32 trainable weights): on a GPU with bf16 always; on a CPU when
    asked (`autocast_bf16`: the student's dtype is auto) and the CPU computes bf16 natively. A full
    fine-tune keeps fp32 weights; a LoRA adapter trains in fp32 over the base weights (bf16 where that is
    fast, see `pick_device_and_dtype`), and under autocast its products run in bf16 like the base's
    instead of casting every layer's input to fp32 (faster, the same loss to rounding: BENCHMARKS.md,
    speed). With `settings.report_to`, the trackers log under `log_dir` (else a scratch
    folder) as `run_name`. With `log_dir` and `settings.checkpoint_minutes`, checkpoints are saved there and
    the last complete one is resumed from (`train` has removed those of any other training, and those
    that do not read back)."""
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    mixed_bf16 = gpu_bf16 or (not torch.cuda.is_available() and autocast_bf16 and cpu_computes_bf16())
    reporter = _ReportProgress(progress)
    checkpointed = log_dir is not None and settings.checkpoint_minutes > 0
    callbacks = [reporter, checkpoints.SaveEvery(settings.checkpoint_minutes)] if checkpointed else [reporter]
    with tempfile.TemporaryDirectory(prefix="elad-train-") as scratch:
        output_dir = str(log_dir) if log_dir is not None and (settings.report_to or checkpointed) else scratch
        trainer = _trainer(
            model=model,
            args=training_arguments(output_dir, settings, seed, mixed_bf16, run_name),
            train_dataset=_ListDataset(features),
            data_collator=PadCollator(pad_token_id),
            callbacks=callbacks,
            alpha=settings.alpha,
            seq2seq=seq2seq,
            lengths=[feature_length(f) for f in features],
        )
        trainer.remove_callback(PrinterCallback)  # elad shows its own progress; no raw log dicts on stdout
        resume = checkpoints.last_complete(log_dir) if checkpointed else None
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return result.global_step, reporter.last_loss


def _checkpointing_arguments(on: bool) -> dict:
    """Gradient checkpointing, non-reentrant (it needs no gradient on the inputs, which a LoRA model's frozen
    embeddings do not give), under the name the installed transformers reads (activation_* from 5.2x on)."""
    if not on:
        return {}
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    prefix = "activation" if "activation_checkpointing" in names else "gradient"
    return {f"{prefix}_checkpointing": True, f"{prefix}_checkpointing_kwargs": {"use_reentrant": False}}


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]


def _trainer(**kwargs) -> "DistilTrainer":
    """The Trainer; a tracker in training.report_to that cannot start (its package missing, an unknown
    name) is the user's to fix: said in one line."""
    try:
        return DistilTrainer(**kwargs)
    except (ImportError, RuntimeError, ValueError) as error:
        trackers = kwargs["args"].report_to
        if not trackers:
            raise
        raise EladError(f"training.report_to {', '.join(trackers)}: {error}") from None
