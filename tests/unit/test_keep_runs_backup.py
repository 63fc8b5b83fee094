"""bench/keep_runs.py's backup of a store: kept runs change in git only when their data does."""

import gzip
import sqlite3
import time

from tests.conftest import load_bench


def make_store(path, rows):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        db.executemany("INSERT INTO t VALUES (?)", [(r,) for r in rows])
    return path


def test_a_backup_of_the_same_data_leaves_the_kept_file_untouched(tmp_path, monkeypatch):
    keep_runs = load_bench("keep_runs")
    store, target = make_store(tmp_path / "run.db", [1, 2]), tmp_path / "run.db.gz"
    keep_runs.gzipped_backup(store, target)
    first = target.read_bytes()
    later = time.time() + 100
    monkeypatch.setattr(time, "time", lambda: later)  # a rewrite would stamp another time in the gzip header
    keep_runs.gzipped_backup(store, target)
    assert target.read_bytes() == first
    # a write that leaves the rows as they were still changes the file's bytes (SQLite's change counter)
    before = store.read_bytes()
    with sqlite3.connect(store) as db:
        db.execute("INSERT INTO t VALUES (9)")
        db.execute("DELETE FROM t WHERE x = 9")
    assert store.read_bytes() != before
    keep_runs.gzipped_backup(store, target)
    assert target.read_bytes() == first

    make_store(store, [3])
    keep_runs.gzipped_backup(store, target)
    assert target.read_bytes() != first
    restored = tmp_path / "restored.db"
    restored.write_bytes(gzip.decompress(target.read_bytes()))
    with sqlite3.connect(restored) as db:
        assert [r for (r,) in db.execute("SELECT x FROM t ORDER BY x")] == [1, 2, 3]


def test_a_row_rewritten_with_the_same_values_leaves_the_kept_file_untouched(tmp_path):
    """A recount rewrites its meta row as it was (INSERT OR REPLACE): the row moves, the data does not."""
    keep_runs = load_bench("keep_runs")
    store, target = tmp_path / "run.db", tmp_path / "run.db.gz"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("a", "1"), ("b", "2")])
    keep_runs.gzipped_backup(store, target)
    first = target.read_bytes()
    with sqlite3.connect(store) as db:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('a', '1')")
        assert [k for (k,) in db.execute("SELECT key FROM meta ORDER BY rowid")] == ["b", "a"]  # moved to the end
    keep_runs.gzipped_backup(store, target)
    assert target.read_bytes() == first
    with sqlite3.connect(store) as db:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('a', '3')")
    keep_runs.gzipped_backup(store, target)
    assert target.read_bytes() != first
