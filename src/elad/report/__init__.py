"""Reports of a run: CSV tables and PNG plots. Knows only the store."""

from pathlib import Path

from elad.report.plots import accuracy_vs_tokens_png
from elad.report.tables import metrics_csv, round_summaries, write_atomic
from elad.store import RunStore


def write_report(store: RunStore, out_dir: Path, title: str | None = None) -> list[Path]:
    """metrics.csv and accuracy_vs_tokens.png of the rounds so far."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = round_summaries(store)
    csv_path, png_path = out_dir / "metrics.csv", out_dir / "accuracy_vs_tokens.png"
    write_atomic(csv_path, metrics_csv(rows))
    write_atomic(png_path, accuracy_vs_tokens_png(rows, title or store.get_meta("name") or "elad run"))
    return [csv_path, png_path]


__all__ = ["round_summaries", "write_report"]
