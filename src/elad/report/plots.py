"""Plots of a run: accuracy against teacher spend."""

import io

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402


def accuracy_vs_tokens_png(rows: list[dict], title: str) -> bytes:
    points = [r for r in rows if r.get("accuracy") is not None]
    figure, axis = plt.subplots(figsize=(6, 4), dpi=120)
    if points:
        tokens = [r["teacher_tokens"] for r in points]
        accuracy = [100 * r["accuracy"] for r in points]
        axis.plot(tokens, accuracy, marker="o")
        for r, x, y in zip(points, tokens, accuracy):
            axis.annotate(f"r{int(r['round'])}: {int(r['annotations'])} ex.", (x, y), textcoords="offset points",
                          xytext=(4, -12), fontsize=8)
    axis.set_xlabel("teacher tokens spent (prompt + completion)")
    axis.set_ylabel("student test accuracy (%)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png_bytes(figure)


# --- comparing runs: accuracy against teacher cost, one line per strategy, seed bands ----------------

STRATEGY_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                    "tab:gray", "tab:olive", "tab:cyan")


def accuracy_vs_cost_png(
    series: dict[tuple[str, str], list[dict]], title: str, cost_label: str, strategies: list[str] | None = None,
    chance: float | None = None,
) -> bytes:
    """The figure of accuracy_vs_cost_figure as PNG bytes."""
    figure = accuracy_vs_cost_figure(series, title, cost_label, strategies, chance)
    return _png_bytes(figure)


def accuracy_vs_cost_figure(
    series: dict[tuple[str, str], list[dict]], title: str, cost_label: str, strategies: list[str] | None = None,
    chance: float | None = None,
):
    """One panel per annotator, one line per strategy: mean accuracy against mean cost at each round, a
    band of the mean's 95% interval over seeds, each seed's own points, faint, and where given a dashed
    line at the chance accuracy.

    series: (strategy, annotator) -> one dict per round, sorted by round, with keys cost, mean, band (the
    interval's half-width; None for a single seed), values (each seed's accuracy) and costs (each seed's
    cost); accuracies and chance in 0-1."""
    annotators = list(dict.fromkeys(a for _, a in series))
    strategies = strategies or list(dict.fromkeys(s for s, _ in series))
    colour = {s: STRATEGY_COLOURS[i % len(STRATEGY_COLOURS)] for i, s in enumerate(strategies)}
    width = 6.4 if len(annotators) <= 1 else 5.0 * len(annotators)
    figure, axes = plt.subplots(1, max(1, len(annotators)), figsize=(width, 4.6), dpi=120, sharex=True, sharey=True,
                                squeeze=False)
    for axis, annotator in zip(axes[0], annotators or [""]):
        for strategy in strategies:
            points = series.get((strategy, annotator))
            if not points:
                continue
            x = [p["cost"] for p in points]
            y = [100 * p["mean"] for p in points]
            spread = [100 * (p["band"] or 0.0) for p in points]
            c = colour[strategy]
            axis.fill_between(x, [a - s for a, s in zip(y, spread)], [a + s for a, s in zip(y, spread)], color=c,
                              alpha=0.15, linewidth=0)
            seeds = max(len(p["values"]) for p in points)
            axis.plot(x, y, marker="o", markersize=4, color=c, label=f"{strategy} (n={seeds})")
            for p in points:
                if len(p["values"]) > 1:
                    axis.scatter(p["costs"], [100 * v for v in p["values"]], s=8, color=c, alpha=0.35, linewidths=0)
        if chance is not None:
            axis.axhline(100 * chance, color="0.45", linestyle="--", linewidth=1, label="chance")
        axis.set_title(f"annotator: {annotator}" if annotator else title, fontsize=10)
        axis.set_xlabel(cost_label)
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_formatter(FuncFormatter(_short_number))
    # Only now that every panel holds its data: setting a limit stops autoscaling, and the panels share their
    # x axis, so a limit set after the first panel would cut off a costlier annotator's points (CLEAR's).
    for axis in axes[0]:
        axis.set_xlim(left=0)
    axes[0][0].set_ylabel("student test accuracy (%)")
    extent = [100 * (p["mean"] + sign * (p["band"] or 0.0)) for points in series.values() for p in points
              for sign in (-1, 1)] + [100 * v for points in series.values() for p in points for v in p["values"]]
    extent += [100 * chance] if chance is not None and extent else []
    if extent:  # accuracy lives in [0, 100]: never show negative accuracies, and leave room around the lines
        low, high = min(extent), max(extent)
        pad = max(2.0, 0.08 * (high - low))
        low, high = max(0.0, low - pad), min(100.0, high + pad)
        if high - low < 10:
            middle = (high + low) / 2
            low, high = max(0.0, middle - 5), min(100.0, max(middle + 5, 10.0))
        # a line at 0 % (or 100 %) would hide under the axis: leave it half a point of room
        axes[0][0].set_ylim(low - 0.5 if low <= 0 else low, high + 0.5 if high >= 100 else high)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for axis in axes[0][1:]:
        more_handles, more_labels = axis.get_legend_handles_labels()
        for handle, label in zip(more_handles, more_labels):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if len(annotators) > 1:
        figure.suptitle(title, fontsize=11)
    if handles:  # below the panels, where it hides no line
        columns = min(len(labels), max(2, int(width // 1.6)))  # about 1.6 inches a label: none cut off
        figure.legend(handles, labels, fontsize=8, loc="lower center", ncol=columns, frameon=False)
        rows = -(-len(labels) // columns)
        figure.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    else:
        figure.tight_layout()
    return figure


# --- paired differences from a baseline: one interval per strategy -----------------------------------

def paired_differences_png(rows: list[dict], title: str, unit: str) -> bytes:
    """The figure of paired_differences_figure as PNG bytes."""
    return _png_bytes(paired_differences_figure(rows, title, unit))


def paired_differences_figure(rows: list[dict], title: str, unit: str):
    """One line per strategy x annotator: its AULC minus the baseline's, paired by seed (aulc_rows' rows;
    the baseline's own row is left out): a dot at the mean, a bar over the mean's 95% interval (none with
    one pair), each seed's difference faint, and a line at zero. A bar that crosses zero shows no
    difference. Values in 0-1, drawn in points."""
    rows = [r for r in rows if r.get("paired_diff_mean") is not None]
    labels = [r["strategy"] if r["annotator"] in ("", None) else f"{r['strategy']} ({r['annotator']})" for r in rows]
    height = max(2.6, 1.2 + 0.45 * len(rows))
    figure, axis = plt.subplots(figsize=(6.4, height), dpi=120)
    for y, row in enumerate(rows):
        colour = STRATEGY_COLOURS[y % len(STRATEGY_COLOURS)]
        mean, half = 100 * row["paired_diff_mean"], row["paired_diff_ci95"]
        if half is not None:
            axis.plot([mean - 100 * half, mean + 100 * half], [y, y], color=colour, linewidth=2.5, alpha=0.7)
        axis.plot([mean], [y], marker="o", color=colour)
        seeds = [100 * v for v in (row.get("paired_diffs") or {}).values()]
        axis.scatter(seeds, [y] * len(seeds), s=10, color=colour, alpha=0.35, linewidths=0)
    axis.axvline(0, color="0.3", linewidth=1)
    axis.set_yticks(range(len(rows)), [f"{label} (n={r['pairs']})" for label, r in zip(labels, rows)], fontsize=8)
    axis.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top, as in the table
    baseline = rows[0]["baseline"] if rows else "baseline"
    axis.set_xlabel(f"AULC minus {baseline}'s, same seed (points; mean, 95% CI, single seeds faint)", fontsize=8)
    budget = _short_number(float(f"{rows[0]['budget']:.3g}")) if rows else "?"  # 16.4k, not 16.388k
    axis.set_title(f"{title} (up to {budget} {unit})", fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def _png_bytes(figure) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps every open one alive)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _short_number(value: float, _position=None) -> str:
    """Axis labels: 0, 500, 1.5k, 20k, 1.2M (dollars and small values as they are)."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"
