"""Training through the Hugging Face Trainer, with prompt tokens masked out of the loss."""

import tempfile

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from elad.config import TrainingConfig
from elad.students.student import IGNORE_INDEX


class PadCollator:
    """Right-pads a batch of {input_ids, labels}; padding gets no attention and no loss."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict:
        width = max(len(f["input_ids"]) for f in features)
        input_ids, labels, attention = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            input_ids.append(f["input_ids"] + [self.pad_token_id] * pad)
            labels.append(f["labels"] + [IGNORE_INDEX] * pad)
            attention.append([1] * len(f["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(input_ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(attention),
        }


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


def fit(model, features: list[dict], settings: TrainingConfig, seed: int, pad_token_id: int, progress=None):
    """Train `model` in place; returns (optimizer steps, last logged loss)."""
    reporter = _ReportProgress(progress)
    with tempfile.TemporaryDirectory(prefix="elad-train-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=settings.batch_size,
            gradient_accumulation_steps=settings.gradient_accumulation,
            num_train_epochs=settings.epochs,
            learning_rate=settings.learning_rate,
            lr_scheduler_type="linear",
            warmup_steps=0.05,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=seed,
            data_seed=seed,
            use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
            disable_tqdm=True,
            remove_unused_columns=False,
            train_sampling_strategy="group_by_length",  # batches of similar length: less padding
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=_ListDataset(features),
            data_collator=PadCollator(pad_token_id),
            callbacks=[reporter],
        )
        trainer.remove_callback(PrinterCallback)  # elad shows its own progress; no raw log dicts on stdout
        result = trainer.train()
    return result.global_step, reporter.last_loss


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]
