"""Small static SVG charts for the widgets' HTML fallbacks (no plotting library)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .base import esc, fmt

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def ema(values: Sequence[float | None], smoothing: float) -> list[float | None]:
    """Exponential moving average, debiased (TensorBoard's smoothing); ``None`` passes."""
    if smoothing <= 0:
        return list(values)
    out: list[float | None] = []
    last, weight = 0.0, 0.0
    for value in values:
        if value is None or not math.isfinite(value):
            out.append(None)
            continue
        last = last * smoothing + (1 - smoothing) * value
        weight = weight * smoothing + (1 - smoothing)
        out.append(last / weight)
    return out


def line_chart(
    series: Mapping[str, tuple[Sequence[float], Sequence[float | None]]],
    *,
    width: int = 560,
    height: int = 220,
    title: str = "",
) -> str:
    """An SVG line chart of ``{label: (xs, ys)}`` with a legend and the axes' ranges."""
    points = [
        (x, y)
        for xs, ys in series.values()
        for x, y in zip(xs, ys, strict=False)
        if y is not None and math.isfinite(y)
    ]
    if not points:
        return f"<p>{esc(title)}: no points yet</p>" if title else "<p>no points yet</p>"
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    left, right, top, bottom = 56, 12, 18, 24
    w, h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(title or "chart")}">',
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{fmt(y1)}</text>',
        f'<text x="{left - 4}" y="{top + h}" font-size="10" text-anchor="end">{fmt(y0)}</text>',
        f'<text x="{left}" y="{height - 8}" font-size="10">{fmt(x0)}</text>',
        f'<text x="{left + w}" y="{height - 8}" font-size="10" text-anchor="end">{fmt(x1)}</text>',
    ]
    for i, (label, (xs, ys)) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(
            f"{sx(x):.1f},{sy(y):.1f}"
            for x, y in zip(xs, ys, strict=False)
            if y is not None and math.isfinite(y)
        )
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>'
        )
        parts.append(
            f'<text x="{left + 6}" y="{top + 14 + 12 * i}" font-size="11" fill="{color}">'
            f"{esc(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
