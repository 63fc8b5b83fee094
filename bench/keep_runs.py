"""Keep a benchmark's finished runs in the repository, and put them back where the benchmark resumes.

A run directory holds adapters and caches of hundreds of MB; what a table, a report or a resumed grid needs
is its config and its run database. `keep` copies, for every finished run under SRC (a folder holding
run.db), its `config.yaml` and a consistent, gzipped copy of its store (`run.db.gz`) to the same place
under DEST, with the grid's own files (grid.yaml, grid_results.*, summary.json, efficiency-*.md). Runs
still going are left out, unless `--unfinished`: then a run that started is kept too, apart, under
DEST/unfinished (removed from there once the run is kept finished), so that a machine lost mid-grid
costs only the stage that was running. `restore` does the reverse: every kept run under DEST back under
SRC, where a rerun of the benchmark skips a finished one and resumes an unfinished one (its lost
adapters are trained again from the store, with the same seed and order).

    .venv/bin/python bench/keep_runs.py keep runs/efficiency-v2 bench/results/efficiency-v2 [--unfinished]
    .venv/bin/python bench/keep_runs.py restore runs/efficiency-v2 bench/results/efficiency-v2

Last line: kept=<runs> kept_unfinished=<runs> skipped_unfinished=<runs> (or restored=<runs> present=<runs>)
"""

import argparse
import gzip
import shutil
import sqlite3
import tempfile
from pathlib import Path

GRID_FILES = ("grid.yaml", "grid_results.csv", "grid_results.md", "summary.json")


def finished_run(run_dir: Path) -> bool:
    from elad.loop.grid import _finished_earlier

    return _finished_earlier(run_dir)


def gzipped_backup(store: Path, target: Path) -> None:
    """A consistent copy of a SQLite store (its WAL folded in), gzipped to `target`; a target that already
    holds the same data is left as it is (gzip stamps the time, and SQLite counts every write transaction
    in its header, so a rewrite of the same rows would show as a change)."""
    from elad.store import copy_database

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "run.db"
        copy_database(store, copy)
        if target.exists() and _same_data(copy, target, Path(scratch) / "kept.db"):
            return
        with copy.open("rb") as plain, gzip.open(target, "wb") as packed:
            shutil.copyfileobj(plain, packed)


def _same_data(plain: Path, packed: Path, scratch: Path) -> bool:
    """Whether the gzipped store `packed` holds the same schema, rows and user_version as `plain`."""
    try:
        with gzip.open(packed, "rb") as unpacked, scratch.open("wb") as out:
            shutil.copyfileobj(unpacked, out)
        return _contents(scratch) == _contents(plain)
    except (OSError, EOFError, sqlite3.DatabaseError):  # not a readable gzip or store: rewrite it
        return False


def _contents(path: Path) -> tuple[int, list[str]]:
    db = sqlite3.connect(path)
    try:  # sorted: a row rewritten with the same values (a recount's meta row) moves to the end of its table
        return db.execute("PRAGMA user_version").fetchone()[0], sorted(db.iterdump())
    finally:
        db.close()


UNFINISHED = "unfinished"  # under DEST: runs kept before they finished


def started_run(run_dir: Path) -> bool:
    from elad.errors import EladError
    from elad.store import RunDir

    try:
        store = RunDir(run_dir).open_store(readonly=True)
    except EladError:
        return False
    try:
        return bool(store.rounds())
    finally:
        store.close()


def keep_one(run_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run_dir / "config.yaml", target / "config.yaml")
    gzipped_backup(run_dir / "run.db", target / "run.db.gz")


def keep(src: Path, dest: Path, unfinished: bool = False) -> None:
    kept = kept_unfinished = skipped = 0
    for store in sorted(src.rglob("run.db")):
        run_dir = store.parent
        relative = run_dir.relative_to(src)
        if finished_run(run_dir):
            keep_one(run_dir, dest / relative)
            shutil.rmtree(dest / UNFINISHED / relative, ignore_errors=True)
            kept += 1
        elif unfinished and started_run(run_dir):
            keep_one(run_dir, dest / UNFINISHED / relative)
            kept_unfinished += 1
        else:
            skipped += 1
    for path in sorted(src.rglob("*")):
        if path.is_file() and (path.name in GRID_FILES or path.match("efficiency-*.md")):
            (dest / path.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / path.relative_to(src))
    print(f"kept={kept} kept_unfinished={kept_unfinished} skipped_unfinished={skipped}")


def restore(src: Path, dest: Path) -> None:
    restored = present = 0
    for packed in sorted(dest.rglob("run.db.gz")):
        kept_dir = packed.parent
        relative = kept_dir.relative_to(dest)
        if relative.parts[0] == UNFINISHED:
            relative = relative.relative_to(UNFINISHED)
            if (dest / relative / "run.db.gz").exists():
                continue  # kept finished as well: that one is restored
        run_dir = src / relative
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
    parser.add_argument("--unfinished", action="store_true", help="keep: runs that started but did not finish "
                        "too, under DEST/unfinished")
    args = parser.parse_args()
    if args.action == "keep":
        keep(args.runs, args.kept, args.unfinished)
    else:
        restore(args.runs, args.kept)


if __name__ == "__main__":
    main()
