"""The HTML report: it parses, every image it references is a real PNG beside it, its tables say what
the stores hold, and text from the stores is escaped."""

import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest

from elad.errors import EladError
from elad.report.compare import load_run
from elad.report.html import write_html_report
from tests.unit.test_report_compare import make_run

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NASTY = "<script>alert('x')</script> & Tom's \"quote\""

# (task, strategy, annotator, seed) -> accuracy per round, tokens per round
RUNS = {
    ("esnli", "random", "cot", 0): ([0.30, 0.40, 0.45], [0, 1000, 2000]),
    ("esnli", "random", "cot", 1): ([0.32, 0.36, 0.47], [0, 1100, 2100]),
    ("esnli", "egss", "cot", 0): ([0.30, 0.50, 0.60], [0, 1200, 2400]),
    ("esnli", "egss", "cot", 1): ([0.32, 0.46, 0.58], [0, 1300, 2500]),
    ("esnli", "egss", "clear", 0): ([0.30, 0.52, 0.62], [0, 1900, 3900]),
    ("anli", "random", "cot", 0): ([0.33, 0.35], [0, 900]),
    ("anli", "egss", "cot", 0): ([0.33, 0.41], [0, 950]),
}


class Page(HTMLParser):
    """Checks that every element is closed in order; collects <img src>, and each table's cell texts by id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.images, self.tables, self.text = [], [], [], {}, []
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src"))
        if tag == "br" and self._cell is not None:
            self._cell.append(" ")
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id") or f"table-{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    for (task, strategy, annotator, seed), (accuracy, tokens) in RUNS.items():
        make_run(root / f"grid-{task}", strategy, annotator, seed, accuracy, tokens, task=task, question=NASTY)
    path = write_html_report([root / "grid-esnli", root / "grid-anli"], root / "out", title="test <report>")
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return root, path, page


def test_the_page_parses_with_every_element_closed(report):
    _, path, page = report
    assert path.name == "report.html"
    assert page.errors == [] and page.stack == []
    assert path.read_text().startswith("<!DOCTYPE html>")


def test_every_image_exists_beside_the_page_and_is_a_valid_png(report):
    from PIL import Image

    _, path, page = report
    assert sorted(page.images) == ["accuracy_vs_tokens_anli.png", "accuracy_vs_tokens_esnli.png",
                                   "aulc_minus_random_anli.png", "aulc_minus_random_esnli.png"]
    for src in page.images:
        image = path.parent / src
        assert not Path(src).is_absolute() and image.exists()
        assert image.read_bytes()[:8] == PNG_MAGIC
        with Image.open(image) as png:
            png.load()
            assert png.format == "PNG" and png.size[0] > 400 and png.size[1] > 300


def test_text_from_the_store_is_escaped(report):
    _, path, page = report
    raw = path.read_text()
    assert "<script>" not in raw and "&lt;script&gt;" in raw
    assert "<b>says</b>" not in raw and "&lt;b&gt;says&lt;/b&gt;" in raw
    assert "<title>test &lt;report&gt;</title>" in raw
    assert any(NASTY in chunk for chunk in page.text)  # and reads back as the original text


def _pct(mean, half=None):
    return f"{100 * mean:.1f}" + (f" ± {100 * half:.1f}" if half is not None else "")


def _ci(values):
    """The half-width of the 95% t-interval of the mean of two values: t(0.975, 1 df) = 12.706."""
    assert len(values) == 2
    return 12.706 * statistics.stdev(values) / 2 ** 0.5


def test_paper_table_has_strategy_annotator_rows_and_task_columns_matching_the_stores(report):
    root, _, page = report
    table = page.tables["paper"]
    assert table[0] == ["strategy", "annotator", "esnli", "anli"]
    assert table[1] == ["final", "≤ 2.0k", "final", "≤ 900"]  # equal budget: the smallest final spend
    rows = {(r[0], r[1]): r[2:] for r in table[2:]}
    assert set(rows) == {("random", "cot"), ("egss", "cot"), ("egss", "clear")}

    finals = [load_run(root / "grid-esnli" / f"egss-cot-s{s}").final for s in (0, 1)]
    accuracy = [f["accuracy"] for f in finals]
    tokens = statistics.fmean(f["teacher_tokens"] for f in finals)
    expected = f"{_pct(statistics.fmean(accuracy), _ci(accuracy))} {tokens / 1000:.1f}k"
    assert rows[("egss", "cot")][0] == expected
    # at <= 2000 tokens egss/cot holds its round-1 students (it spent 2400 / 2500 by round 2)
    assert rows[("egss", "cot")][1] == _pct(0.48, _ci([0.50, 0.46]))
    # random/cot seed 0 spent exactly 2000 by round 2; seed 1 spent 2100, 5% over: it counts with its round-2
    # student too
    assert rows[("random", "cot")][1] == _pct(0.46, _ci([0.45, 0.47]))
    assert rows[("egss", "clear")][0].startswith(_pct(0.62) + " (n=1)")
    assert rows[("egss", "cot")][2] == "41.0 (n=1) 950" and rows[("egss", "clear")][2] == "–"


def test_budget_and_round_tables_and_the_leader(report):
    _, _, page = report
    budget = page.tables["budget-esnli"]
    assert budget[0][:3] == ["strategy", "annotator", "≤ 0"]
    leader = budget[-1]
    assert leader[0].startswith("leader")
    rounds = {(r[0], r[1]): r[2:] for r in page.tables["rounds-esnli"][1:]}
    assert rounds[("random", "cot")] == [f"{_pct(0.31, _ci([0.30, 0.32]))} 0",
                                          f"{_pct(0.38, _ci([0.40, 0.36]))} 1.1k",
                                          f"{_pct(0.46, _ci([0.45, 0.47]))} 2.0k"]
    aulc = page.tables["aulc-esnli"]
    assert aulc[0][5] == "seeds for ±3"
    # the baseline has nothing to plan; a paired strategy names a seed count
    assert {row[0]: row[5] == "–" for row in aulc[1:]}["random"] and any(row[5].isdigit() for row in aulc[1:])


def test_each_run_has_its_rounds_as_stored(report):
    root, _, page = report
    overview = page.tables["runs-overview"]
    assert len(overview) == 1 + len(RUNS)
    labels = [row[0] for row in overview[1:]]
    index = labels.index("egss-clear-s0") + 1
    table = page.tables[f"rounds-of-run-{index}-egss-clear-s0"]
    run = load_run(root / "grid-esnli" / "egss-clear-s0")
    assert [row[0] for row in table[1:]] == [str(r["round"]) for r in run.rows]
    for row, stored in zip(table[1:], run.rows):
        assert row[4] == f"{int(stored['teacher_tokens']):,}"
        assert row[6] == _pct(stored["accuracy"])
        assert row[7] == f"{int(stored['correct'])} / {int(stored['total'])}"
    assert table[-1][-1] == "all rounds done"


def test_selected_items_show_steps_samples_scores_and_the_teacher(report):
    _, path, page = report
    text = " ".join(" ".join(page.text).split())
    assert "Selected items and their explanations" in text
    assert "round 2 · strategy egss · 2 chosen of 2 scored" in text
    assert "Playing is not sleeping." in text and "contradiction (0.60) ↺" in text
    assert "sampled answers (K=2):" in text and "intra 0.5" in text
    assert "Teacher <b>says</b>" in text


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(EladError):
        write_html_report([tmp_path], tmp_path / "out")


def test_dollar_costs_name_the_plot_and_columns(tmp_path):
    make_run(tmp_path / "paid", "random", "cot", 0, [0.3, 0.4], [0, 500], dollars=[0.0, 0.25])
    path = write_html_report([tmp_path / "paid"], tmp_path / "out")
    page = Page()
    page.feed(path.read_text())
    assert page.images == ["accuracy_vs_dollars_esnli.png"]  # one strategy: no pairs, no paired plot
    assert page.tables["paper"][1] == ["final", "≤ $0.2500"]


def test_a_run_without_an_evaluated_round_is_listed_but_not_compared(tmp_path):
    from elad.store import RunStore

    make_run(tmp_path / "g", "random", "cot", 0, [0.3, 0.4], [0, 500])
    RunStore(tmp_path / "g" / "just-started" / "run.db").close()
    path = write_html_report([tmp_path / "g"], tmp_path / "out")
    page = Page()
    page.feed(path.read_text())
    assert page.errors == []
    assert [row[0] for row in page.tables["runs-overview"][1:]] == ["just-started", "random-cot-s0"]
    assert [row[:2] for row in page.tables["paper"][2:]] == [["random", "cot"]]
    assert "1 run(s) have no evaluated round yet" in " ".join(" ".join(page.text).split())


def test_every_panel_of_the_cost_plot_shows_its_points_however_costly():
    """2026-12-02: CLEAR's only point (24.7k tokens) fell outside the panels, whose shared x axis had been
    fixed by the CoT panel (9.3k)."""
    import matplotlib.pyplot as plt

    from elad.report.plots import accuracy_vs_cost_figure

    def point(cost, accuracy):
        return {"cost": cost, "mean": accuracy, "band": None, "values": [accuracy], "costs": [cost]}

    series = {("random", "cot"): [point(9325, 0.312)], ("random", "clear"): [point(24700, 0.344)]}
    figure = accuracy_vs_cost_figure(series, "esnli", "teacher tokens")
    try:
        for axis in figure.axes:
            left, right = axis.get_xlim()
            low, high = axis.get_ylim()
            assert left == 0 and right >= 24700 and low <= 31.2 and high >= 34.4
    finally:
        plt.close(figure)



def test_the_chance_line_is_drawn_and_kept_in_view():
    """A chance below every accuracy still shows: the y range stretches down to it."""
    import matplotlib.pyplot as plt

    from elad.report.plots import accuracy_vs_cost_figure

    series = {("random", "cot"): [{"cost": c, "mean": a, "band": None, "values": [a], "costs": [c]}
                                  for c, a in ((1000, 0.60), (2000, 0.70))]}
    figure = accuracy_vs_cost_figure(series, "esnli", "teacher tokens", chance=1 / 3)
    try:
        axis = figure.axes[0]
        chance = [line for line in axis.get_lines() if line.get_label() == "chance"]
        assert len(chance) == 1 and list(chance[0].get_ydata()) == pytest.approx([100 / 3, 100 / 3])
        assert axis.get_ylim()[0] < 100 / 3
    finally:
        plt.close(figure)
    figure = accuracy_vs_cost_figure(series, "gsm8k", "teacher tokens")  # open answers: no chance line
    try:
        assert not [line for line in figure.axes[0].get_lines() if line.get_label() == "chance"]
    finally:
        plt.close(figure)

def test_the_paired_plot_draws_each_strategys_interval_and_seeds_against_zero(tmp_path):
    """Its bars are the table's intervals: mean ± half-width in points, one row per compared strategy, the
    baseline itself left out, and each seed's own difference."""
    import matplotlib.pyplot as plt

    from elad.report.compare import aulc_rows, load_runs
    from elad.report.plots import paired_differences_figure

    for (task, strategy, annotator, seed), (accuracy, tokens) in RUNS.items():
        if task == "esnli" and annotator == "cot":
            make_run(tmp_path / "g", strategy, annotator, seed, accuracy, tokens, task=task)
    rows = aulc_rows(load_runs([tmp_path / "g"]))
    egss = next(r for r in rows if r["strategy"] == "egss")
    assert sorted(egss["paired_diffs"]) == [0, 1] and egss["pairs"] == 2
    assert statistics.mean(egss["paired_diffs"].values()) == pytest.approx(egss["paired_diff_mean"])
    figure = paired_differences_figure(rows, "esnli", "tokens")
    try:
        axis = figure.axes[0]
        assert [t.get_text() for t in axis.get_yticklabels()] == ["egss (cot) (n=2)"]
        bar = next(line for line in axis.get_lines() if len(line.get_xdata()) == 2 and line.get_ydata()[0] == 0)
        low, high = 100 * (egss["paired_diff_mean"] - egss["paired_diff_ci95"]), \
            100 * (egss["paired_diff_mean"] + egss["paired_diff_ci95"])
        assert list(bar.get_xdata()) == pytest.approx([low, high])
        seeds = axis.collections[0].get_offsets()[:, 0]
        assert sorted(seeds) == pytest.approx(sorted(100 * v for v in egss["paired_diffs"].values()))
        assert any(list(line.get_xdata()) == [0, 0] for line in axis.get_lines())  # the zero line
    finally:
        plt.close(figure)


def test_the_error_aurocs_have_their_table(tmp_path):
    for seed, score in enumerate((0.6, 0.8)):
        make_run(tmp_path / "g", "egss", "cot", seed, [0.3, 0.4], [0, 500],
                 extra={"auroc_score": score, "errors_known": 64.0, "errors_wrong": 32.0})
    path = write_html_report([tmp_path / "g"], tmp_path / "out")
    page = Page()
    page.feed(path.read_text())
    table = page.tables["auroc-esnli"]
    assert table[0] == ["strategy", "annotator", "part", "round 0", "round 1"]
    assert table[1] == ["egss", "cot", "score", "0.70 (32/64 wrong)", "0.70 (32/64 wrong)"]
