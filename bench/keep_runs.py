"""Keep a benchmark's finished runs in the repository, and put them back where the benchmark resumes.

A run directory holds adapters and caches of hundreds of MB; what a table, a report or a resumed grid needs
is its config and its run database. `keep` copies, for every finished run under SRC (a folder holding
run.db), its `config.yaml` and a consistent, gzipped copy of its store (`run.db.gz`) to the same place
under DEST, with the grid's own files (grid.yaml, grid_results.*, summary.json, efficiency-*.md). Runs
still going are left out. `restore` does the reverse: every kept run under DEST back under SRC, where
a rerun of the benchmark skips it.

    .venv/bin/python bench/keep_runs.py keep runs/efficiency-v2 bench/results/efficiency-v2
    .venv/bin/python bench/keep_runs.py restore runs/efficiency-v2 bench/results/efficiency-v2

Last line: kept=<runs> skipped_unfinished=<runs> (or restored=<runs> present=<runs>)
"""

import argparse
import gzip
import shutil
import tempfile
from pathlib import Path

GRID_FILES = ("grid.yaml", "grid_results.csv", "grid_results.md", "summary.json")


def finished_run(run_dir: Path) -> bool:
    from elad.loop.grid import _finished_earlier

    return _finished_earlier(run_dir)


def gzipped_backup(store: Path, target: Path) -> None:
    """A consistent copy of a SQLite store (its WAL folded in), gzipped to `target`."""
    from elad.store import copy_database

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "run.db"
        copy_database(store, copy)
        with copy.open("rb") as plain, gzip.open(target, "wb") as packed:
            shutil.copyfileobj(plain, packed)


def keep(src: Path, dest: Path) -> None:
    kept = skipped = 0
    for store in sorted(src.rglob("run.db")):
        run_dir = store.parent
        if not finished_run(run_dir):
            skipped += 1
            continue
        target = dest / run_dir.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run_dir / "config.yaml", target / "config.yaml")
        gzipped_backup(store, target / "run.db.gz")
        kept += 1
    for path in sorted(src.rglob("*")):
        if path.is_file() and (path.name in GRID_FILES or path.match("efficiency-*.md")):
            (dest / path.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / path.relative_to(src))
    print(f"kept={kept} skipped_unfinished={skipped}")


def restore(src: Path, dest: Path) -> None:
    restored = present = 0
    for packed in sorted(dest.rglob("run.db.gz")):
        kept_dir = packed.parent
        run_dir = src / kept_dir.relative_to(dest)
        if (run_dir / "run.db").exists():
            present += 1
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kept_dir / "config.yaml", run_dir / "config.yaml")
        with gzip.open(packed, "rb") as zipped, (run_dir / "run.db").open("wb") as plain:
            shutil.copyfileobj(zipped, plain)
        restored += 1
    print(f"restored={restored} present={present}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("keep", "restore"))
    parser.add_argument("runs", type=Path, help="the benchmark's output folder (SRC)")
    parser.add_argument("kept", type=Path, help="the folder under bench/results (DEST)")
    args = parser.parse_args()
    (keep if args.action == "keep" else restore)(args.runs, args.kept)


if __name__ == "__main__":
    main()
