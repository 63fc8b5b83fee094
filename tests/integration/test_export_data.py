"""`elad export-data`: the annotations a run bought, as a dataset that `datasets` opens."""

import json

import pytest
from typer.testing import CliRunner

from elad.cli import app
from elad.errors import EladError
from elad.export import export_data
from elad.loop import Experiment
from elad.store import RunStore
from tests.integration.test_loop import make_config

pytestmark = pytest.mark.integration


@pytest.fixture
def run_dir(esnli_dir, tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    config = make_config(esnli_dir, tiny_model_dir, rounds=2, per_round=3, evaluate_initial=False)
    Experiment(config, run).run()
    return run


def test_the_rows_carry_what_was_bought_and_datasets_opens_them(run_dir, tmp_path):
    import datasets

    out, rows = export_data(run_dir, tmp_path / "data", parquet=True)
    store = RunStore(run_dir / "run.db")
    annotations = {a["example_id"]: a for a in store.annotations()}
    assert rows == len(annotations) == 6

    table = datasets.load_dataset(str(out), split="train")  # the card's default config: annotations
    assert len(table) == 6 and set(table["id"]) == set(annotations)
    row = next(r for r in table if r["id"] == store.annotations()[0]["example_id"])
    stored = annotations[row["id"]]
    assert (row["rationale"], row["answer"], row["target"]) == (stored["rationale"], stored["answer"], stored["target"])
    example = store.example(row["id"])
    assert row["gold"] == example["answer"] and row["question"] == example["question"]
    assert row["prompt"].startswith(example["question"].split("\n")[0][:20]) or example["question"] in row["prompt"]
    assert row["round"] in (1, 2) and row["method"] == "cot" and row["selection_strategy"] == "random"
    # its cost is what the run store recorded for that item
    calls = [c for c in store.db.execute("SELECT * FROM teacher_calls WHERE example_id = ? AND cache_hit = 0",
                                         (row["id"],))]
    assert row["teacher_calls"] == len(calls) >= 1
    assert row["prompt_tokens"] + row["completion_tokens"] == sum(c["prompt_tokens"] + c["completion_tokens"]
                                                                  for c in calls)
    assert sum(r["prompt_tokens"] + r["completion_tokens"] for r in table) == \
        store.teacher_totals().prompt_tokens + store.teacher_totals().completion_tokens

    chat = datasets.load_dataset(str(out), "messages", split="train")
    assert [m["role"] for m in chat[0]["messages"]] == ["user", "assistant"]
    assert chat[0]["messages"][1]["content"] == annotations[chat[0]["id"]]["target"]
    pairs = datasets.load_dataset(str(out), "prompt_completion", split="train")
    assert set(pairs.column_names) == {"id", "prompt", "completion"}
    assert (out / "annotations.parquet").exists() and (out / "annotations.jsonl").exists()
    first = json.loads((out / "annotations.jsonl").read_text().splitlines()[0])
    assert first["teachers"] == ["replay/palm-540b"]


def test_export_data_refuses_a_used_folder_and_a_missing_run(run_dir, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(EladError, match="not empty"):
        export_data(run_dir, tmp_path / "used")
    with pytest.raises(EladError, match="no run here"):
        export_data(tmp_path / "nothing", tmp_path / "out")
    result = CliRunner().invoke(app, ["export-data", str(run_dir), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0 and "exported 6 annotations" in result.output
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == [
        "README.md", "annotations.jsonl", "messages.jsonl", "prompt_completion.jsonl"]
