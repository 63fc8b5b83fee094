"""Small statistics shared by the report, the trackers and the model card."""

import math


def wilson(correct: float, total: float, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound at 0 and 1, unlike the normal one)."""
    if not total:
        return 0.0, 1.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; beyond, t_975 expands it.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_975(degrees: int) -> float:
    """The two-sided 95% quantile of Student's t: the table up to 30 degrees of freedom, then the normal
    quantile's expansion in 1/degrees (Abramowitz and Stegun 26.7.5; off by under 0.001 there), which
    stays above 1.96 as t does."""
    if degrees <= len(T_975):
        return T_975[degrees - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * degrees) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * degrees**2)


def mean_interval(values: list[float]) -> tuple[float | None, float | None]:
    """The mean and the half-width of its 95% t-interval (None with fewer than two values)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, t_975(len(values) - 1) * math.sqrt(variance / len(values))


def seeds_for_half_width(values: list[float], half_width: float) -> int | None:
    """How many values (paired seeds) would bring the 95% t-interval of their mean down to `half_width`,
    if their spread stayed what it is in `values` (sample standard deviation): for planning a grid, not a
    promise, as a spread from a few seeds is itself uncertain. None with fewer than two values; two
    when they do not vary."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    if half_width <= 0:
        return None
    n = max(2, math.ceil((1.959964 * std / half_width) ** 2))  # t's quantile is above z's: never fewer
    while t_975(n - 1) * std / math.sqrt(n) > half_width:
        n += 1
    return n


def area_under_curve(points: list[tuple[float, float]], budget: float) -> float | None:
    """The area under a learning curve (accuracy against teacher spend), from its first point to
    `budget`, divided by that width: the curve's mean accuracy over the spend, in the accuracy's units.
    Points (cost, accuracy) are joined by straight lines (the trapezoid rule), and the curve is cut at
    `budget` by interpolation. None when the curve does not reach past its first point before `budget`.
    Points of equal cost (a round that spent nothing) keep their given order, the rounds'."""
    points = sorted(points, key=lambda point: point[0])
    if len(points) < 2 or points[0][0] >= budget:
        return None
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 >= budget:
            break
        if x1 > budget:  # cut the segment at the budget
            y1 = y0 + (y1 - y0) * (budget - x0) / (x1 - x0)
            x1 = budget
        area += (y0 + y1) / 2 * (x1 - x0)
    width = min(points[-1][0], budget) - points[0][0]
    return area / width if width > 0 else None
