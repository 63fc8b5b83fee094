"""Per-round tables read from the run store."""

import csv
import io
import os
from pathlib import Path

from elad.store import RunStore

STAGES = ("select", "annotate", "train", "evaluate")  # a round's stages, each timed (metrics seconds_<stage>)
SELECT_PARTS = ("explain", "force", "score")  # inside select: the pool's explanations, their forced answers,
# the answer after each step of the greedy one (and the forced answers too, where one pass reads both)
COLUMNS = ("round", "annotations", "teacher_calls", "teacher_tokens", "teacher_dollars", "teacher_agrees",
           "accuracy", "correct", "total", "unparsed", "chance", "seconds", *(f"seconds_{stage}" for stage in STAGES + SELECT_PARTS), "stop_reason")


def round_summaries(store: RunStore) -> list[dict]:
    """One row per round: accuracy, correct/total and the teacher spend up to that round."""
    rows: dict[int, dict] = {}
    for metric in store.metrics():
        rows.setdefault(metric["round"], {"round": metric["round"]})[metric["name"]] = metric["value"]
    stop = {r["round"]: r["stop_reason"] for r in store.rounds()}
    for round_, row in rows.items():
        for name in ("annotations", "teacher_calls", "teacher_tokens", "teacher_dollars", "seconds"):
            row.setdefault(name, 0)
        row["stop_reason"] = stop.get(round_)
    return [rows[r] for r in sorted(rows)]


def metrics_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _plain(row.get(k)) for k in COLUMNS})
    return buffer.getvalue()


def _plain(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, float):
        return round(value, 6)
    return "" if value is None else value


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write beside, then rename: a reader never sees half a file. The scratch name is the process's own, so
    that two processes writing one file (the shards of a grid, its grid.yaml) do not rename each other's."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)
