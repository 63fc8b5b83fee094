"""The run store: one SQLite database per run. Knows nothing else in elad."""

from elad.store.db import RunStore, Totals

__all__ = ["RunStore", "Totals"]
