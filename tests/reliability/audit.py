"""Checks of a run directory against what the fake provider billed: every paid reply recorded, none paid
twice, no annotation lost, the budget kept, no half-written file."""

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.openai_server import NO_ANSWER_REPLY, FakeOpenAIServer

HALF_WRITTEN = ("*.partial", "*.tmp", ".*.tmp")


def canonical(messages) -> str:
    return json.dumps(list(messages), sort_keys=True, ensure_ascii=False)


def request_identity(body: dict) -> str:
    """What makes two requests the same ask (the cache key's fields that the server sees)."""
    return json.dumps({"messages": body.get("messages"), "temperature": body.get("temperature"),
                       "max_tokens": body.get("max_tokens"), "n": body.get("n", 1),
                       "response_format": body.get("response_format")}, sort_keys=True)


def read_store(run_dir: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


@dataclass
class Audit:
    paid_rows: int = 0  # teacher_calls rows that were charged (not cache hits), lost ones included
    lost_rows: int = 0  # of those: calls that got no reply, charged at their worst case
    billed: int = 0  # replies the provider charged (usable or not)
    unrecorded: list = field(default_factory=list)  # billed replies with no charged row in the store
    covered: int = 0  # billed replies that never reached the store, charged by a lost row of their ask
    paid_twice: int = 0  # usable replies bought more than once for the same ask
    accounted: int = 0  # of those: the first one was lost (charged at its worst case), then asked again
    lost: list = field(default_factory=list)  # example ids whose paid, parsable answer is not annotated
    deferred: list = field(default_factory=list)  # unfinished items (budget spent mid-item), replies kept in the cache
    overruns: list = field(default_factory=list)  # budget lines the store's totals or the provider's bill exceed
    half_written: list = field(default_factory=list)
    open_reservations: int = 0  # reservations never settled (a process died with the request in flight)
    tokens: int = 0
    dollars: float = 0.0

    def problems(self) -> dict:
        return {k: v for k, v in {
            "unrecorded": self.unrecorded, "paid_twice": self.paid_twice - self.accounted, "lost": self.lost,
            "overruns": self.overruns, "half_written": self.half_written,
        }.items() if v}


def audit(run_dir: Path, server: FakeOpenAIServer, budget: dict | None = None) -> Audit:
    """Every reply the provider billed must be in the store: recorded with its text, or charged at its
    worst case by a `lost` row of the same ask (the client died, or gave up, before the reply reached it;
    it may then be asked, and paid, again). No slack: the provider's bill stays within the budget."""
    db = read_store(run_dir)
    rows = db.execute("SELECT * FROM teacher_calls WHERE cache_hit = 0").fetchall()
    lost_rows = [r for r in rows if r["status"] == "lost"]
    replied = [r for r in rows if r["status"] != "lost"]
    found = Audit(paid_rows=len(rows), lost_rows=len(lost_rows))
    recorded = Counter((canonical(json.loads(r["messages"])), json.loads(r["completions"])[0]) for r in replied)
    example_of = {(canonical(json.loads(r["messages"])), json.loads(r["completions"])[0]): r["example_id"]
                  for r in replied}
    lost_by_ask = Counter(canonical(json.loads(r["messages"])) for r in lost_rows)
    annotations = {r["example_id"]: dict(r) for r in db.execute("SELECT * FROM annotations")}
    handled = set(annotations) | {r["example_id"] for r in db.execute("SELECT example_id FROM rejected")}
    found.open_reservations = db.execute("SELECT COUNT(*) FROM reservations WHERE state = 'open'").fetchone()[0]
    cached = cached_replies(run_dir)

    billed = server.billed_replies()
    found.billed = len(billed)
    usable = [s for s in billed if s.text]
    by_ask: dict[str, list] = {}
    for seen in usable:
        by_ask.setdefault(request_identity(seen.body), []).append(seen)
    covered_by_ask: Counter = Counter()
    for seen in billed:
        key = (canonical(seen.body["messages"]), seen.text)
        if recorded[key] <= 0:
            if lost_by_ask[key[0]] > 0:  # it never reached the store, but its ask was charged at its worst case
                lost_by_ask[key[0]] -= 1
                found.covered += 1
                covered_by_ask[request_identity(seen.body)] += bool(seen.text)
            else:
                found.unrecorded.append(seen.text[:60] or "(a reply without choices)")
            continue
        recorded[key] -= 1
        if not seen.text:
            continue
        example_id = example_of[key]
        # A rejected item is handled: its paid replies are in teacher_calls (checked above) and its last one
        # in `rejected.raw`. An annotated item must keep every usable reply it was paid for.
        if example_id not in handled:
            # The budget ran out between two calls of one item (CLEAR's review, then its CoT fallback): the
            # item waits for more budget, and its paid reply waits in the teacher cache, free on resume.
            (found.deferred if seen.text in cached else found.lost).append(example_id)
        elif example_id in annotations and seen.text != NO_ANSWER_REPLY and seen.text not in kept_replies(
                annotations[example_id]):
            found.lost.append(example_id)
    for ask, replies in by_ask.items():
        found.paid_twice += len(replies) - 1
        found.accounted += min(len(replies) - 1, covered_by_ask[ask])

    totals = db.execute("SELECT COUNT(*) AS calls, COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS tokens,"
                        " COALESCE(SUM(dollars), 0) AS dollars FROM teacher_calls WHERE cache_hit = 0").fetchone()
    found.tokens, found.dollars = totals["tokens"], totals["dollars"]
    for name, limit in (budget or {}).items():
        if limit is not None and totals[name] > limit + 1e-9:
            found.overruns.append(f"store {name}: {totals[name]} > {limit}")
    limits = budget or {}
    if limits.get("calls") is not None and server.billed.calls > limits["calls"]:
        found.overruns.append(f"provider calls: {server.billed.calls} > {limits['calls']}")
    billed_tokens = server.billed.prompt_tokens + server.billed.completion_tokens
    if limits.get("tokens") is not None and billed_tokens > limits["tokens"]:
        found.overruns.append(f"provider tokens: {billed_tokens} > {limits['tokens']}")
    db.close()
    found.half_written = half_written(run_dir)
    return found


def cached_replies(run_dir: Path) -> set[str]:
    """Every reply text in the run's teacher cache."""
    path = run_dir / "teacher_cache.db"
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    texts = {c["text"] for (blob,) in db.execute("SELECT completions FROM responses") for c in json.loads(blob)}
    db.close()
    return texts


def kept_replies(annotation: dict) -> set[str]:
    """The teacher replies an annotation keeps: its raw reply and, for CLEAR, every review reply in its
    details (a review asked again, or one followed by the CoT fallback)."""
    details = json.loads(annotation.get("details") or "{}")
    return {annotation["raw"], *details.get("raw_replies", []), details.get("review_raw", annotation["raw"])}


def half_written(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for pattern in HALF_WRITTEN for p in run_dir.rglob(pattern))


def store_digest(run_dir: Path) -> dict:
    """What two runs of one config must agree on: selections, annotations, rejections, training sizes,
    and the teacher's paid calls, tokens and dollars."""
    db = read_store(run_dir)
    digest = {
        "rounds": [tuple(r) for r in db.execute("SELECT round, state, stop_reason FROM rounds ORDER BY round")],
        "selections": [tuple(r) for r in db.execute(
            "SELECT round, example_id, strategy, rank, chosen FROM selections ORDER BY round, rank")],
        "scores": [round(r[0], 6) for r in db.execute("SELECT score FROM selections ORDER BY round, rank")],
        "annotations": [tuple(r) for r in db.execute(
            "SELECT example_id, round, annotator, rationale, answer, target, raw FROM annotations"
            " ORDER BY example_id")],
        "rejected": [tuple(r) for r in db.execute(
            "SELECT example_id, round, reason FROM rejected ORDER BY example_id")],
        "training": [tuple(r) for r in db.execute(
            "SELECT round, examples, steps, tokens FROM training ORDER BY round")],
        "paid": tuple(db.execute(
            "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), ROUND(SUM(dollars), 9)"
            " FROM teacher_calls WHERE cache_hit = 0").fetchone()),
        # Paid replies with text (an unusable reply is paid too, but brings nothing).
        "paid_usable": tuple(db.execute(
            "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), ROUND(SUM(dollars), 9)"
            " FROM teacher_calls WHERE cache_hit = 0 AND status != 'lost'"
            " AND completions != '[\"\"]'").fetchone()),
        "paid_by_example": sorted(tuple(r) for r in db.execute(
            "SELECT example_id, COUNT(*) FROM teacher_calls WHERE cache_hit = 0 GROUP BY example_id")),
        "pool_explanations": [tuple(r) for r in db.execute(
            "SELECT round, example_id, sample, text FROM explanations WHERE role = 'pool' ORDER BY 1, 2, 3")],
        "test_explanations": [tuple(r) for r in db.execute(
            "SELECT round, example_id, text, answer FROM explanations WHERE role = 'test' ORDER BY 1, 2")],
        "test_metrics": [tuple(r) for r in db.execute(
            "SELECT round, name, value FROM metrics WHERE split = 'test' ORDER BY 1, 2")],
    }
    db.close()
    return digest
