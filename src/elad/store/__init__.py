"""The run store: one SQLite database per run. Knows nothing else in elad but the teachers' `Journal`
protocol, which `StoreJournal` implements for the ledger."""

from elad.store.db import RunStore, Totals
from elad.store.journal import StoreJournal
from elad.store.rundir import RunDir, RunDirLock

__all__ = ["RunDir", "RunDirLock", "RunStore", "StoreJournal", "Totals"]
