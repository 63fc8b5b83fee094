"""Splits given as row indices into one file: Fine-tune-CoT's `split/<task>__default.json`
(`{"train": [i, ...], "test": [j, ...]}`), for datasets that ship as a single file (SVAMP, StrategyQA's
BIG-bench task). The rows of split s are the file's rows at those indices, in the index list's order,
and their ids are `"{s}-{position in the list}"`.
"""

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from elad.errors import DataError, EladError
from elad.io import read_json
from elad.tasks.rows import Row


def read_split_file(path: str | Path) -> dict[str, list[int]]:
    path = Path(path).expanduser()
    if not path.exists():
        raise EladError(f"task.options.split_file: {path} does not exist")
    splits = read_json(path)
    if not isinstance(splits, dict) or not all(
            isinstance(v, list) and all(isinstance(i, int) and i >= 0 for i in v) for v in splits.values()):
        raise DataError(path, None, None, 'expected {"<split>": [row index, ...], ...}')
    return splits


def select_rows(rows: Iterable[Row], indices: list[int], split_path: Path) -> Iterator[Row]:
    """The rows at `indices`, renumbered 0.. in list order; an index past the file's end is an error."""
    by_index = {row.index: row for row in rows}
    for position, index in enumerate(indices):
        if index not in by_index:
            raise DataError(split_path, None, None, f"row index {index} is past the end of the data "
                                                    f"({len(by_index)} rows)")
        yield replace(by_index[index], index=position)
