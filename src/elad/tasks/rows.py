"""Reading dataset records one at a time, so a malformed record can be named (file, line) or skipped.

`elad.io.read_jsonl` stops at the first broken line; a task that may skip bad rows needs each record's
problem as a value instead. Formats: JSON Lines, a JSON array of objects, CSV with a header, Parquet, and
Arrow (the files `datasets` writes with `save_to_disk` and keeps in its cache). The format is sniffed:
`.csv` is CSV, `.parquet` Parquet, `.arrow` Arrow; otherwise a file whose first character is `[` is an
array, else JSON Lines (AQuA and Distilling Step-by-Step name their JSON Lines files `.json`). Parquet and
Arrow need `pyarrow` (the `data` extra); their records are numbered by row.
"""

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from elad.errors import DataError
from elad.io import open_text


@dataclass(frozen=True)
class Row:
    path: Path
    line: int | None  # 1-based line where the record starts (CSV: where it ends), None if unknown
    index: int  # 0-based position in the split, counted before any row is skipped: ids stay aligned
    data: dict | None = None
    error: DataError | None = None  # set instead of data when the record itself is malformed


def sniff_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith((".parquet", ".arrow")):
        return name.rsplit(".", 1)[1]
    with open_text(path) as handle:
        for chunk in iter(lambda: handle.read(256), ""):
            stripped = chunk.lstrip()
            if stripped:
                return "json" if stripped[0] == "[" else "jsonl"
    return "jsonl"


def read_rows(paths: Path | Iterable[Path], fmt: str | None = None) -> Iterator[Row]:
    """Every record of the files, in order, with one running index across files (e.g. e-SNLI train_1 + train_2)."""
    index = 0
    for path in [paths] if isinstance(paths, Path) else paths:
        if not path.exists():
            raise DataError(path, None, None, "file not found")
        reader = {"jsonl": _jsonl, "json": _json_array, "csv": _csv, "parquet": _parquet,
                  "arrow": _arrow}[fmt or sniff_format(path)]
        for line, data, error in reader(path):
            yield Row(path, line, index, data, error)
            index += 1


def _jsonl(path: Path):
    with open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                yield number, None, DataError(path, number, None, f"not valid JSON ({error.msg})")
                continue
            yield (number, data, None) if isinstance(data, dict) else (
                number, None, DataError(path, number, None, "expected a JSON object"))


def _json_array(path: Path):
    """Decode the array element by element to know each record's line; broken syntax stops the load
    (no resynchronising inside a JSON document), a non-object element is a bad row."""
    with open_text(path) as handle:
        text = handle.read()
    decoder = json.JSONDecoder()
    position, line = _skip_space(text, 0), 1
    if text[position:position + 1] != "[":
        raise DataError(path, 1, None, "expected a JSON array of objects")
    position += 1
    counted = 0  # newlines are counted up to here
    while True:
        position = _skip_space(text, position)
        if text.startswith("]", position):
            return
        line += text.count("\n", counted, position)
        counted = position
        try:
            data, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataError(path, error.lineno, None, f"not valid JSON ({error.msg})") from None
        if isinstance(data, dict):
            yield line, data, None
        else:
            yield line, None, DataError(path, line, None, "expected a JSON object")
        position = _skip_space(text, position)
        if text.startswith(",", position):
            position += 1
        elif not text.startswith("]", position):
            line += text.count("\n", counted, position)
            raise DataError(path, line, None, "not valid JSON (expected ',' or ']')")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _csv(path: Path):
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise DataError(path, 1, None, "expected a CSV header row")
        for data in reader:
            line = reader.line_num
            if None in data:  # more cells than header columns
                yield line, None, DataError(path, line, None, f"{len(reader.fieldnames) + len(data[None])} cells "
                                                              f"for {len(reader.fieldnames)} columns")
            elif any(value is None for value in data.values()):  # fewer cells than columns
                missing = next(key for key, value in data.items() if value is None)
                yield line, None, DataError(path, line, missing, "row has too few cells")
            else:
                yield line, data, None


def _pyarrow(path: Path):
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError:
        raise DataError(path, None, None, "reading Parquet and Arrow files needs pyarrow: pip install 'elad[data]'") from None
    return pyarrow


def _parquet(path: Path):
    pyarrow = _pyarrow(path)
    try:
        batches = pyarrow.parquet.ParquetFile(path).iter_batches()
        yield from _records(batches)
    except pyarrow.ArrowException as error:
        raise DataError(path, None, None, f"not a readable Parquet file ({error})") from None


def _arrow(path: Path):
    """An Arrow IPC stream (what `datasets` writes) or file."""
    pyarrow = _pyarrow(path)
    try:
        with pyarrow.memory_map(str(path)) as source:
            try:
                reader = pyarrow.ipc.open_stream(source)
            except pyarrow.ArrowInvalid:
                reader = pyarrow.ipc.open_file(source)
            batches = reader if hasattr(reader, "__iter__") else (reader.get_batch(i) for i in range(reader.num_record_batches))
            yield from _records(batches)
    except pyarrow.ArrowException as error:
        raise DataError(path, None, None, f"not a readable Arrow file ({error})") from None


def _records(batches):
    """(row number from 1, record, None) for each row of a table's record batches."""
    number = 0
    for batch in batches:
        for data in batch.to_pylist():
            number += 1
            yield number, data, None
