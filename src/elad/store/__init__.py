"""The run store: one SQLite database per run. Knows nothing else in elad but the teachers' `Journal`
protocol, which `StoreJournal` implements for the ledger, and the teachers' request and reply types, which the
response cache's storage (`ResponseCache`) keeps."""

from elad.store.db import RunStore, Totals, copy_database
from elad.store.journal import StoreJournal
from elad.store.response_cache import ResponseCache
from elad.store.rundir import RunDir, RunDirLock, RunLabels

__all__ = ["ResponseCache", "RunDir", "RunDirLock", "RunLabels", "RunStore", "StoreJournal", "Totals", "copy_database"]
