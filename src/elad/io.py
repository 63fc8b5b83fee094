"""Reading dataset files with errors that name the file, the line and the field."""

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from elad.errors import DataError


def open_text(path: Path):
    """UTF-8 text; a byte-order mark that some editors write first is read past ("utf-8-sig"), not taken
    for part of the first line's JSON or the first CSV column's name."""
    return gzip.open(path, "rt", encoding="utf-8-sig") if path.suffix == ".gz" else open(path, encoding="utf-8-sig")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each non-empty line; a malformed line stops with its number."""
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(path, number, None, f"not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DataError(path, number, None, "expected a JSON object")
            yield number, row


def read_json(path: Path):
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    with open_text(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:
            raise DataError(path, error.lineno, None, f"not valid JSON ({error.msg})") from None


def require(row: dict, field: str, path: Path, line: int, kind: type | tuple = str):
    """row[field], or a DataError naming file, line and field when it is missing, empty or mistyped."""
    if field not in row or row[field] is None or row[field] == "":
        raise DataError(path, line, field, "missing or empty")
    value = row[field]
    if not isinstance(value, kind):
        raise DataError(path, line, field, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value
