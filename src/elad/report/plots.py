"""Plots of a run: accuracy against teacher spend."""

import io

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
