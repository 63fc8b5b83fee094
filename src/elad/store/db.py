"""The run's SQLite database: one file per run, WAL journal, every write in a transaction.

Every stage writes what it produced here before the next stage starts, so a killed run resumes from
the store: selections, teacher calls and annotations are never redone or paid for twice.
"""

import json
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from elad.errors import EladError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    id TEXT NOT NULL, split TEXT NOT NULL, role TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    rationale TEXT, choices TEXT NOT NULL, PRIMARY KEY (role, id));
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY, state TEXT NOT NULL, started_at REAL, finished_at REAL, stop_reason TEXT);
CREATE TABLE IF NOT EXISTS selections (
    round INTEGER NOT NULL, example_id TEXT NOT NULL, strategy TEXT NOT NULL, score REAL NOT NULL,
    rank INTEGER NOT NULL, parts TEXT NOT NULL, chosen INTEGER NOT NULL, PRIMARY KEY (round, example_id));
CREATE TABLE IF NOT EXISTS teacher_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, example_id TEXT, purpose TEXT NOT NULL,
    backend TEXT NOT NULL, model TEXT NOT NULL, messages TEXT NOT NULL, completions TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, dollars REAL NOT NULL,
    cache_hit INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS annotations (
    example_id TEXT PRIMARY KEY, round INTEGER NOT NULL, annotator TEXT NOT NULL, rationale TEXT NOT NULL,
    answer TEXT NOT NULL, target TEXT NOT NULL, raw TEXT NOT NULL, details TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    example_id TEXT NOT NULL, round INTEGER NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL,
    PRIMARY KEY (round, example_id));
CREATE TABLE IF NOT EXISTS explanations (
    round INTEGER NOT NULL, role TEXT NOT NULL, example_id TEXT NOT NULL, sample INTEGER NOT NULL,
    text TEXT NOT NULL, steps TEXT NOT NULL, answer TEXT, correct INTEGER,
    PRIMARY KEY (round, role, example_id, sample));
CREATE TABLE IF NOT EXISTS forced_answers (
    round INTEGER NOT NULL, role TEXT NOT NULL, example_id TEXT NOT NULL, sample INTEGER NOT NULL, answer TEXT,
    distribution TEXT NOT NULL, PRIMARY KEY (round, role, example_id, sample));
CREATE TABLE IF NOT EXISTS answer_scores (
    round INTEGER NOT NULL, example_id TEXT NOT NULL, prefix INTEGER NOT NULL, distribution TEXT NOT NULL,
    PRIMARY KEY (round, example_id, prefix));
CREATE TABLE IF NOT EXISTS training (
    round INTEGER PRIMARY KEY, examples INTEGER NOT NULL, steps INTEGER NOT NULL, loss REAL,
    seconds REAL NOT NULL, tokens INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    round INTEGER NOT NULL, split TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (round, split, name));
"""


@dataclass(frozen=True)
class Totals:
    calls: int
    prompt_tokens: int
    completion_tokens: int
    dollars: float


def _open_readonly(path: Path, need_tables: bool) -> sqlite3.Connection:
    """A read-only connection (`mode=ro`) to the store at `path`, checked whole (PRAGMA quick_check); an
    EladError naming the file if it is missing, empty, not SQLite, damaged (e.g. truncated) or, with
    need_tables, holds no elad tables. Writes nothing to the file (but see the rollback -journal below).

    Side files. SQLite reads a WAL database through its -shm index and, even for a read-only connection,
    creates the -shm (and an empty -wal) when they are absent, and leaves them behind. A store with no -wal
    beside it has no writer connected (a writer keeps its -wal while it is open) and all its committed pages
    in the file itself, so it is opened `immutable=1`: no -shm, no -wal, no locks. Should that read fail
    because a run started meanwhile (a -wal has appeared), it is read again the normal way. A store with a
    -wal (a live run, or one that was killed) is read the normal way: its latest rounds are in the WAL, and
    the -shm that SQLite may create for it is the price of reading them. A rollback -journal left by a
    writer that was killed mid-transaction is never read around either: a read-only connection refuses
    the file until the unfinished transaction is undone, so one read-write connection lets SQLite undo it
    first (the only write, and it restores the last committed content)."""
    if not path.exists():
        raise EladError(f"no run store at {path} (the file does not exist)")
    if path.is_dir() or path.stat().st_size == 0:
        why = "is a directory" if path.is_dir() else "is empty"
        raise EladError(f"no run store at {path} (the path {why}, not a run.db written by elad run)")
    wal, journal = path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")
    uri = "file:" + urllib.parse.quote(str(path.absolute()), safe="/") + "?mode=ro"
    attempts = [True, False] if not wal.exists() and not journal.exists() else [False]
    undone = False
    while attempts:
        immutable, db = attempts.pop(0), None
        try:
            db = sqlite3.connect(uri + ("&immutable=1" if immutable else ""), uri=True, isolation_level=None)
            db.row_factory = sqlite3.Row
            problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("damaged: " + "; ".join(problems))
            if need_tables and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
                raise sqlite3.DatabaseError("it holds no elad tables")
            return db
        except sqlite3.DatabaseError as error:
            if db is not None:
                db.close()
            if immutable and wal.exists():
                continue
            if _left_unfinished(error) and not undone:
                undone = _undo_unfinished_write(path)
                if undone:
                    attempts.append(False)
                    continue
            reason = " ".join(str(error).split())  # one line: quick_check reports span lines
            raise EladError(f"{path}: not a readable elad run store ({reason[:300]})") from None
    raise AssertionError("unreachable")


def _left_unfinished(error: sqlite3.DatabaseError) -> bool:
    """Whether a read-only connection refused the file because a killed writer left work for the next one
    (SQLITE_READONLY_ROLLBACK: a hot journal; _RECOVERY / _CANTINIT: a WAL index to rebuild)."""
    return getattr(error, "sqlite_errorname", "").startswith("SQLITE_READONLY_")


def _undo_unfinished_write(path: Path) -> bool:
    """Let SQLite finish what a killed writer left (it does on a read-write connection's first read).
    False when the file cannot be written here (a read-only copy): the caller reports the refusal."""
    try:
        db = sqlite3.connect(path, timeout=60)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return True


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of the SQLite file at `source` (a run store or a teacher cache), its WAL folded in,
    read as `_open_readonly` reads, so even while another process writes to it."""
    reader = _open_readonly(Path(source), need_tables=False)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        reader.close()
        writer.close()


def _check_version(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a store written by a newer elad: its tables may hold what this one cannot read or would
    damage. (Older stores are brought up to date as they open: columns added since are added.)"""
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row and str(row[0]).isdigit() else SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise EladError(f"{path}: written by a newer elad (run store version {version}; this elad reads up to "
                        f"{SCHEMA_VERSION}): upgrade elad to read it")


class RunStore:
    def __init__(self, path: str | Path, readonly: bool = False):
        """The run's store at `path`, created if need be. readonly: read an existing store and change nothing
        (`elad status`, `why`, `report`, `export`); a missing or empty file is then an error too. Either way a
        file that is not a readable store (not SQLite, truncated, damaged) is an EladError naming it, raised
        before anything is written."""
        self.path = Path(path)
        if readonly:
            self.db = _open_readonly(self.path, need_tables=True)
            _check_version(self.db, self.path)
            return
        if self.path.exists() and (self.path.is_dir() or self.path.stat().st_size > 0):
            _open_readonly(self.path, need_tables=False).close()  # refuse a damaged store before writing to it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # explicit transactions only; a write waits up to a minute for another connection's (the journal's)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        with self.transaction():
            for statement in _statements(SCHEMA):  # not executescript: it would commit on its own
                self.db.execute(statement)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        _check_version(self.db, self.path)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- meta ----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- examples ------------------------------------------------------------------------------

    def add_examples(self, role: str, split: str, examples: Iterable) -> None:
        rows = [(e.id, split, role, e.question, e.answer, e.rationale, json.dumps(list(e.choices))) for e in examples]
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO examples VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def example_ids(self, role: str) -> list[str]:
        return [r["id"] for r in self.db.execute("SELECT id FROM examples WHERE role = ? ORDER BY rowid", (role,))]

    # --- rounds --------------------------------------------------------------------------------

    def start_round(self, round_: int) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO rounds (round, state, started_at) VALUES (?, 'running', ?)", (round_, time.time())
            )

    def finish_round(self, round_: int, stop_reason: str | None = None) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE rounds SET state = 'done', finished_at = ?, stop_reason = ? WHERE round = ?",
                (time.time(), stop_reason, round_),
            )

    def round_done(self, round_: int) -> bool:
        row = self.db.execute("SELECT state FROM rounds WHERE round = ?", (round_,)).fetchone()
        return bool(row) and row["state"] == "done"

    def stop_reason(self, round_: int) -> str | None:
        row = self.db.execute("SELECT stop_reason FROM rounds WHERE round = ?", (round_,)).fetchone()
        return row["stop_reason"] if row else None

    def rounds(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM rounds ORDER BY round")]

    # --- selection -----------------------------------------------------------------------------

    def add_selection(self, round_: int, strategy: str, ranked: list[tuple[str, float, dict]], chosen: set) -> None:
        rows = [
            (round_, example_id, strategy, score, rank, json.dumps(parts), int(example_id in chosen))
            for rank, (example_id, score, parts) in enumerate(ranked)
        ]
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO selections VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def chosen(self, round_: int) -> list[str]:
        query = "SELECT example_id FROM selections WHERE round = ? AND chosen = 1 ORDER BY rank"
        return [r["example_id"] for r in self.db.execute(query, (round_,))]

    def selection_scores(self, round_: int) -> list[tuple[float, dict]]:
        """(score, parts) of every item scored in a round, in the order it was taken: the chosen batch first
        (with stochastic acquisition or diversity not best first; each drawn item's part "rank" is its place
        in the ranking), then the others best first."""
        query = "SELECT score, parts FROM selections WHERE round = ? ORDER BY rank"
        return [(r["score"], json.loads(r["parts"])) for r in self.db.execute(query, (round_,))]

    def chosen_scores(self) -> dict[str, dict]:
        """Every chosen item's selection: round, strategy, score and score parts."""
        query = "SELECT example_id, round, strategy, score, parts FROM selections WHERE chosen = 1"
        return {r["example_id"]: {"round": r["round"], "strategy": r["strategy"], "score": r["score"],
                                  "parts": json.loads(r["parts"])} for r in self.db.execute(query)}

    def ever_chosen(self) -> set[str]:
        return {r["example_id"] for r in self.db.execute("SELECT example_id FROM selections WHERE chosen = 1")}

    # --- teacher calls and annotations ---------------------------------------------------------

    def add_teacher_call(self, round_: int, example_id, purpose, response, messages, dollars: float) -> None:
        row = (
            round_, example_id, purpose, response.backend, response.model, json.dumps(list(messages)),
            json.dumps([c.text for c in response.completions]), response.prompt_tokens,
            response.completion_tokens, dollars, int(response.cache_hit), time.time(),
        )
        with self.transaction():
            self.db.execute(
                "INSERT INTO teacher_calls (round, example_id, purpose, backend, model, messages, completions,"
                " prompt_tokens, completion_tokens, dollars, cache_hit, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def teacher_totals(self, up_to_round: int | None = None) -> Totals:
        where = "WHERE cache_hit = 0" + (" AND round <= ?" if up_to_round is not None else "")
        args = (up_to_round,) if up_to_round is not None else ()
        row = self.db.execute(
            "SELECT COUNT(*) AS calls, COALESCE(SUM(prompt_tokens), 0) AS p, COALESCE(SUM(completion_tokens), 0) AS c,"
            f" COALESCE(SUM(dollars), 0) AS d FROM teacher_calls {where}",
            args,
        ).fetchone()
        return Totals(row["calls"], row["p"], row["c"], row["d"])

    def teacher_spend_by_example(self) -> dict[str, dict]:
        """Per example: the paid calls made for it (cache hits excluded), their tokens and dollars, and the
        teachers (backend/model) that answered."""
        query = ("SELECT example_id, COUNT(*) AS calls, SUM(prompt_tokens) AS p, SUM(completion_tokens) AS c,"
                 " SUM(dollars) AS d, GROUP_CONCAT(DISTINCT backend || '/' || model) AS teachers"
                 " FROM teacher_calls WHERE cache_hit = 0 AND example_id IS NOT NULL GROUP BY example_id")
        return {r["example_id"]: {"calls": r["calls"], "prompt_tokens": r["p"], "completion_tokens": r["c"],
                                  "dollars": r["d"], "teachers": sorted(filter(None, (r["teachers"] or "").split(",")))}
                for r in self.db.execute(query)}

    def add_annotation(self, round_: int, example_id: str, annotation) -> None:
        row = (
            example_id, round_, annotation.annotator, annotation.rationale, annotation.answer, annotation.target,
            annotation.raw, json.dumps(annotation.details),
        )
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO annotations VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def add_rejected(self, round_: int, example_id: str, reason: str, raw: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?)", (example_id, round_, reason, raw))

    def handled(self) -> set[str]:
        """Examples that already have an annotation or were rejected: never sent to the teacher again."""
        query = "SELECT example_id FROM annotations UNION SELECT example_id FROM rejected"
        return {r["example_id"] for r in self.db.execute(query)}

    def annotations(self, up_to_round: int | None = None) -> list[dict]:
        query = "SELECT * FROM annotations" + (" WHERE round <= ?" if up_to_round is not None else "")
        args = (up_to_round,) if up_to_round is not None else ()
        return [dict(r) for r in self.db.execute(query + " ORDER BY round, rowid", args)]

    # --- student outputs, training, metrics ----------------------------------------------------

    def add_explanations(self, round_: int, role: str, rows: Iterable[tuple]) -> None:
        """rows: (example_id, sample, text, steps, answer, correct)."""
        values = [(round_, role, eid, s, text, json.dumps(steps), ans, corr) for eid, s, text, steps, ans, corr in rows]
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO explanations VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)

    def forget_explanations(self, round_: int, roles: Iterable[str]) -> None:
        """Delete the round's explanations for `roles`: they were written by weights that are being replaced."""
        with self.transaction():
            self.db.executemany("DELETE FROM explanations WHERE round = ? AND role = ?", [(round_, r) for r in roles])

    def explanations(self, round_: int, role: str) -> list[dict]:
        query = "SELECT * FROM explanations WHERE round = ? AND role = ? ORDER BY example_id, sample"
        return [dict(r) for r in self.db.execute(query, (round_, role))]

    def explanations_by_id(self, round_: int, role: str) -> dict[str, list[dict]]:
        """id -> [greedy, sample 1, ...], each {"text", "steps", "answer"} (the answer parsed from the text)
        and, once the student was made to answer after it, "forced" (that answer, None when it gave none)
        and "forced_distribution": what strategies read."""
        forced = self.forced_answers(round_, role)
        grouped: dict[str, list[dict]] = {}
        for row in self.explanations(round_, role):
            entry = {"text": row["text"], "steps": json.loads(row["steps"]), "answer": row["answer"]}
            entry.update(forced.get((row["example_id"], row["sample"]), {}))
            grouped.setdefault(row["example_id"], []).append(entry)
        return grouped

    def add_forced_answers(self, round_: int, role: str, rows: Iterable[tuple]) -> None:
        """rows: (example_id, sample, answer, distribution): the answer the student gives when made to
        answer after that explanation, and its distribution over the candidates ({answer: 1.0} if open)."""
        values = [(round_, role, eid, sample, answer, json.dumps(distribution))
                  for eid, sample, answer, distribution in rows]
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO forced_answers VALUES (?, ?, ?, ?, ?, ?)", values)

    def forced_answers(self, round_: int, role: str) -> dict[tuple[str, int], dict]:
        """(example_id, sample) -> {"forced": answer, "forced_distribution": {answer: p}}."""
        query = "SELECT example_id, sample, answer, distribution FROM forced_answers WHERE round = ? AND role = ?"
        return {(r["example_id"], r["sample"]): {"forced": r["answer"],
                                                 "forced_distribution": json.loads(r["distribution"])}
                for r in self.db.execute(query, (round_, role))}

    def add_answer_scores(self, round_: int, scores: dict[str, list[dict[str, float]]]) -> None:
        """id -> the answer distribution after each step prefix (prefix 0 = no steps) of the greedy explanation."""
        values = [
            (round_, example_id, prefix, json.dumps(distribution))
            for example_id, distributions in scores.items()
            for prefix, distribution in enumerate(distributions)
        ]
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO answer_scores VALUES (?, ?, ?, ?)", values)

    def answer_scores(self, round_: int) -> dict[str, list[dict[str, float]]]:
        scores: dict[str, list[dict[str, float]]] = {}
        query = "SELECT example_id, distribution FROM answer_scores WHERE round = ? ORDER BY example_id, prefix"
        for row in self.db.execute(query, (round_,)):
            scores.setdefault(row["example_id"], []).append(json.loads(row["distribution"]))
        return scores

    def add_training(self, round_: int, examples: int, steps: int, loss, seconds: float, tokens: int) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO training VALUES (?, ?, ?, ?, ?, ?)", (round_, examples, steps, loss, seconds, tokens)
            )

    def training(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM training ORDER BY round")]

    def set_metrics(self, round_: int, split: str, values: dict[str, float]) -> None:
        with self.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)",
                [(round_, split, name, float(value)) for name, value in values.items()],
            )

    def metrics(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM metrics ORDER BY round, split, name")]

    # --- what reports read ---------------------------------------------------------------------

    def chosen_rows(self, round_: int, limit: int | None = None) -> list[dict]:
        """The chosen items' selection rows of a round (example_id, strategy, score, rank, parts), best first."""
        query = "SELECT * FROM selections WHERE round = ? AND chosen = 1 ORDER BY rank"
        args: tuple = (round_,)
        if limit is not None:
            query, args = query + " LIMIT ?", (round_, max(0, limit))
        return [dict(r) for r in self.db.execute(query, args)]

    def selection_summary(self, round_: int) -> dict:
        """{"scored", "chosen", "strategy"} of a round's selection."""
        row = self.db.execute(
            "SELECT COUNT(*) AS scored, COALESCE(SUM(chosen), 0) AS chosen, MIN(strategy) AS strategy"
            " FROM selections WHERE round = ?", (round_,)).fetchone()
        return dict(row)

    def selected_rounds(self) -> list[int]:
        """Rounds with a stored choice of items, in order."""
        query = "SELECT DISTINCT round FROM selections WHERE chosen = 1 ORDER BY round"
        return [r["round"] for r in self.db.execute(query)]

    def most_common_strategy(self) -> str | None:
        row = self.db.execute(
            "SELECT strategy, COUNT(*) AS n FROM selections GROUP BY strategy ORDER BY n DESC LIMIT 1").fetchone()
        return row["strategy"] if row else None

    def example(self, example_id: str, prefer_role: str = "pool") -> dict | None:
        row = self.db.execute(
            "SELECT * FROM examples WHERE id = ? ORDER BY role != ? LIMIT 1", (example_id, prefer_role)).fetchone()
        return dict(row) if row else None

    def item_explanations(self, round_: int, example_id: str, prefer_role: str = "pool") -> list[dict]:
        """One item's explanations of a round (greedy = sample 0 first), under `prefer_role` if it has any;
        each with `forced`, the answer the student gave when made to answer after it (NULL where it was not
        asked: `has_forced` 0)."""
        rows = [dict(r) for r in self.db.execute(
            "SELECT e.*, f.answer AS forced, f.sample IS NOT NULL AS has_forced FROM explanations e "
            "LEFT JOIN forced_answers f USING (round, role, example_id, sample) "
            "WHERE round = ? AND example_id = ? ORDER BY role != ?, role, sample",
            (round_, example_id, prefer_role))]
        return [r for r in rows if r["role"] == rows[0]["role"]] if rows else []

    def prefix_distributions(self, round_: int, example_id: str) -> list[dict[str, float]]:
        """The answer distribution after each step prefix of the item's greedy explanation."""
        return [json.loads(r["distribution"]) for r in self.db.execute(
            "SELECT distribution FROM answer_scores WHERE round = ? AND example_id = ? ORDER BY prefix",
            (round_, example_id))]

    def annotation(self, example_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM annotations WHERE example_id = ?", (example_id,)).fetchone()
        return dict(row) if row else None

    def rejection(self, example_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM rejected WHERE example_id = ?", (example_id,)).fetchone()
        return dict(row) if row else None

    def annotator(self) -> str | None:
        row = self.db.execute("SELECT annotator FROM annotations LIMIT 1").fetchone()
        return row["annotator"] if row else None


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
