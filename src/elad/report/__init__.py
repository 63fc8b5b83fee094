"""Reports: a run's CSV table and PNG plot (after every round), and the comparison of many runs (the
grid's results table, the HTML report). Knows only the store (and each run's config.yaml)."""

from pathlib import Path

from elad.report.compare import find_runs, load_runs, results_csv, results_markdown, results_rows
from elad.report.html import write_html_report
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


__all__ = [
    "find_runs", "load_runs", "results_csv", "results_markdown", "results_rows", "round_summaries",
    "write_html_report", "write_report",
]
