"""Round metrics to experiment trackers: after each round, its test accuracy with a 95% interval, the
teacher's spend so far, the stage times and (where gold is known) the AUROC of the selection scores
against the student's errors, at step = round, to the trackers `training.report_to` names
(the same list that logs the training losses through transformers).

tensorboard writes under the run directory (`trackers/`); wandb and mlflow log to their own stores, set
up as usual through their environment variables (WANDB_PROJECT, MLFLOW_TRACKING_URI, ...). Other names
in report_to reach only the training losses.
"""

import hashlib
from pathlib import Path

from elad.errors import EladError
from elad.stats import wilson

ROUND_TRACKERS = ("tensorboard", "wandb", "mlflow")
LOGGED = ("accuracy", "accuracy_low", "accuracy_high", "correct", "total", "unparsed", "annotations",
          "teacher_calls", "teacher_tokens", "teacher_dollars", "seconds")


def round_metrics(row: dict) -> dict[str, float]:
    """What a round logs: its summary row's numbers, the accuracy's interval, and `seconds_<stage>`."""
    metrics = dict(row)
    if row.get("accuracy") is not None and row.get("total"):
        metrics["accuracy_low"], metrics["accuracy_high"] = wilson(row["correct"], row["total"])
    names = [*LOGGED, *(k for k in row if k.startswith(("seconds_", "auroc_")))]
    return {name: float(metrics[name]) for name in names if isinstance(metrics.get(name), (int, float))}


class RoundTrackers:
    def __init__(self, names: list[str], log_dir: Path, run_name: str, config: dict):
        self.writers = []
        for name in names:
            if name in ROUND_TRACKERS:
                self.writers.append(_open(name, Path(log_dir), run_name, config))

    def log(self, round_: int, row: dict) -> None:
        metrics = round_metrics(row)
        for writer in self.writers:
            writer(round_, metrics)

    def close(self) -> None:
        for writer in self.writers:
            getattr(writer, "close", lambda: None)()


class _Tensorboard:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))

    def __call__(self, round_: int, metrics: dict) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"round/{name}", value, round_)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _open(name: str, log_dir: Path, run_name: str, config: dict):
    try:
        if name == "tensorboard":
            return _Tensorboard(log_dir / "tensorboard")
        if name == "wandb":
            import wandb

            # one wandb run per run directory, resumed by a rerun
            run_id = "elad-" + hashlib.sha1(str(log_dir.resolve()).encode()).hexdigest()[:12]
            run = wandb.init(name=run_name, config=config, dir=str(log_dir), resume="allow", id=run_id)
            return lambda round_, metrics: run.log({f"round/{k}": v for k, v in metrics.items()}, step=round_)
        import mlflow

        mlflow.start_run(run_name=run_name)
        return lambda round_, metrics: mlflow.log_metrics({f"round.{k}": v for k, v in metrics.items()}, step=round_)
    except ImportError as error:
        raise EladError(f"training.report_to {name}: its package is not installed ({error}); "
                        "`pip install tensorboard` (or wandb, mlflow)") from None
