"""Errors a user can act on. The CLI prints them as one paragraph and exits with status 2."""


class EladError(Exception):
    """A problem with the user's input or environment (config, data, model path), not a bug."""


class DataError(EladError):
    """A dataset file or row is missing or malformed; the message names file, line and field."""

    def __init__(self, path, line: int | None, field: str | None, problem: str):
        unit = "row" if str(path).endswith((".parquet", ".arrow")) else "line"  # table formats have no lines
        where = str(path) + (f", {unit} {line}" if line is not None else "")
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{problem}")
        self.path, self.line, self.field = path, line, field
