"""Dashboard charts, drawn by matplotlib as inline SVG (no JavaScript, works offline).

Each function takes one chart's data from `analytics.dashboard` (values already scaled,
texts already in the page's language) and returns an accessible <svg> string:
role="img", an aria-label and a <title>. A suppressed cell is drawn as the word for
"suppressed", never as a zero; a region's tile is hatched. An estimate flagged for review
is drawn hollow (tiles: an asterisk after the value).
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from analytics.dashboard import ChangeChart, ComparisonChart, TileMap  # noqa: E402
from analytics.summary_content import SummaryChart  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: the browser renders Kazakh letters
        "font.family": "DejaVu Sans",
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.hashsalt": "tanys",  # stable ids, so the same data give the same SVG
    }
)
STYLE = "3"  # part of the cache key of drawn charts: bump when the drawing changes
WAVE_COLOURS = ["#1f5f8b", "#d9822b", "#3b8b4f", "#8b3b6f"]
INCREASE, DECREASE = "#1f5f8b", "#b03a2e"
WIDTH = 7.2  # inches; the page scales the SVG to its column, so labels stay short
NOTE_SIZE = 9
SVG_START = re.compile(r"<svg\b[^>]*>", re.S)


def _svg(figure: Any, label: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    start = text.index("<svg")
    text = text[start:]
    opening = SVG_START.match(text)
    assert opening is not None
    tag = opening.group(0)
    accessible = tag[:-1] + f' role="img" aria-label="{escape(label)}" class="chart">'
    return accessible + f"<title>{escape(label)}</title>" + text[len(tag) :]


def _wrapped(title: str, width: int = 80) -> str:
    """A title on as many lines as it needs within the chart's width: a title wider than
    the chart would widen the SVG, and the page would then draw every label smaller."""
    return "\n".join(textwrap.wrap(title, width=width)) or title


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def comparison_chart(chart: ComparisonChart) -> str:
    """Dots with 95% confidence intervals per region, one series per wave, and every
    wave's national value as a dashed line of the wave's colour."""
    regions = list(chart.regions)
    height = max(2.5, 0.34 * len(regions) + 1.4)
    figure, axes = plt.subplots(figsize=(WIDTH, height))
    positions = {name: k for k, name in enumerate(reversed(regions))}
    step = 0.5 / max(1, len(chart.series))
    any_review = False
    for number, wave in enumerate(chart.series):
        colour = WAVE_COLOURS[number % len(WAVE_COLOURS)]
        offset = (number - (len(chart.series) - 1) / 2) * step
        for point in wave.points:
            y = positions[point.region] + offset
            if point.suppressed or not _finite(point.estimate):
                axes.text(
                    0.0,
                    y,
                    f" {chart.suppressed_label}",
                    transform=axes.get_yaxis_transform(),
                    va="center",
                    fontsize=NOTE_SIZE,
                    color=colour,
                    style="italic",
                )
                continue
            estimate = float(point.estimate)  # type: ignore[arg-type]
            low = point.ci_low if _finite(point.ci_low) else estimate
            high = point.ci_high if _finite(point.ci_high) else estimate
            any_review = any_review or point.review
            drawn = axes.errorbar(
                estimate,
                y,
                xerr=[[estimate - low], [high - estimate]],  # type: ignore[operator]
                fmt="o",
                color=colour,
                markerfacecolor="white" if point.review else colour,
                markersize=5,
                capsize=2,
                linewidth=1,
            )
            kind = "review" if point.review else "estimate"
            drawn.lines[0].set_gid(f"{kind}-{number}-{positions[point.region]}")
        if _finite(wave.national):
            line = axes.axvline(
                wave.national,  # type: ignore[arg-type]
                color=colour,
                linestyle="--",
                linewidth=1,
            )
            line.set_gid(f"national-{number}")
    axes.set_yticks(range(len(regions)), list(reversed(regions)))
    axes.set_ylim(-0.7, len(regions) - 0.3)
    axes.set_xlabel(chart.axis_label)
    axes.grid(axis="x", color="#ddd", linewidth=0.6)
    axes.set_title(_wrapped(chart.title), loc="left", fontsize=11)
    # One filled dot per wave (whatever its first point looks like), its national line,
    # and the hollow dot of an estimate to review.
    handles: list[Any] = []
    labels: list[str] = []
    for number, wave in enumerate(chart.series):
        colour = WAVE_COLOURS[number % len(WAVE_COLOURS)]
        if any(_finite(p.estimate) and not p.suppressed for p in wave.points):
            handles.append(Line2D([], [], marker="o", color=colour, markersize=5, linewidth=1))
            labels.append(wave.name)
        if _finite(wave.national):
            handles.append(Line2D([], [], color=colour, linestyle="--", linewidth=1))
            labels.append(f"{chart.national_label} ({wave.name})")
    if any_review:
        handles.append(
            Line2D([], [], marker="o", linestyle="", color="#555", markerfacecolor="white")
        )
        labels.append(chart.review_label)
    if handles:
        axes.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.1),
            ncol=2,
            frameon=False,
        )
    return _svg(figure, chart.title)


def change_chart(chart: ChangeChart) -> str:
    """Change since the previous wave per region with a 95% interval (change +- 1.96 SE);
    blue an increase, red a decrease (with a legend); a region without a change says why."""
    rows = list(reversed(chart.rows))
    height = max(2.5, 0.34 * len(rows) + 1.4)
    figure, axes = plt.subplots(figsize=(WIDTH, height))
    seen: dict[str, Any] = {}
    for y, row in enumerate(rows):
        if not _finite(row.change):
            reason = f" ({row.reason})" if row.reason else ""
            axes.text(
                0.0,
                y,
                f" {chart.unavailable_label}{reason}",
                transform=axes.get_yaxis_transform(),
                va="center",
                fontsize=NOTE_SIZE,
                color="#555",
                style="italic",
            )
            continue
        change = float(row.change)  # type: ignore[arg-type]
        se = row.change_se if _finite(row.change_se) else 0.0
        decrease = change < 0
        label = chart.decrease_label if decrease else chart.increase_label
        drawn = axes.errorbar(
            change,
            y,
            xerr=1.96 * se,  # type: ignore[operator]
            fmt="s",
            color=DECREASE if decrease else INCREASE,
            markersize=5,
            capsize=2,
            linewidth=1,
            label=None if label in seen else label,
        )
        seen.setdefault(label, drawn)
    axes.axvline(0, color="#333", linewidth=0.8)
    axes.set_yticks(range(len(rows)), [row.short for row in rows])
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_xlabel(chart.axis_label)
    axes.grid(axis="x", color="#ddd", linewidth=0.6)
    axes.set_title(_wrapped(chart.title), loc="left", fontsize=11)
    if seen:
        order = [k for k in (chart.increase_label, chart.decrease_label) if k in seen]
        axes.legend(
            [seen[k] for k in order],
            order,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.1),
            ncol=2,
            frameon=False,
        )
    return _svg(figure, chart.title)


def _tile_label(text: str, width: int = 11) -> str:
    """A region's short name on at most two lines of a tile (hyphenated names break after
    the hyphen)."""
    lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=True)
    if len(lines) > 2:
        lines = [lines[0], " ".join(lines[1:])]
    return "\n".join(lines)


def tile_map(chart: TileMap, *, value_format: str = "{:.0f}") -> str:
    """A tile-grid map: one square per region at its (row, col), coloured by the estimate,
    labelled with the region's short name."""
    tiles = chart.tiles
    rows = max((t.row for t in tiles), default=0) + 1
    cols = max((t.col for t in tiles), default=0) + 1
    values = [float(t.estimate) for t in tiles if _finite(t.estimate) and not t.suppressed]  # type: ignore[arg-type]
    norm = Normalize(vmin=min(values, default=0), vmax=max(values, default=1) or 1)
    cmap = colormaps["YlOrRd"]
    size = 1.25
    figure, axes = plt.subplots(figsize=(size * cols + 1.2, size * rows + 0.8))
    for tile in tiles:
        x, y = tile.col, rows - 1 - tile.row
        if tile.suppressed:
            patch = Rectangle((x, y), 0.95, 0.95, facecolor="white", edgecolor="#555", hatch="///")
            caption = chart.suppressed_label
            text_colour = "#333"
        elif _finite(tile.estimate):
            value = float(tile.estimate)  # type: ignore[arg-type]
            patch = Rectangle((x, y), 0.95, 0.95, facecolor=cmap(norm(value)), edgecolor="white")
            caption = value_format.format(value) + ("*" if tile.review else "")
            text_colour = "white" if norm(value) > 0.6 else "#111"
        else:
            patch = Rectangle((x, y), 0.95, 0.95, facecolor="#eee", edgecolor="#bbb")
            caption = chart.no_data_label
            text_colour = "#555"
        axes.add_patch(patch)
        if tile.suppressed:
            backing = {"facecolor": "white", "edgecolor": "none", "pad": 0.5}
        else:
            backing = None
        axes.text(
            x + 0.475,
            y + 0.62,
            _tile_label(tile.label),
            ha="center",
            va="center",
            fontsize=8.5,
            linespacing=1.0,
            color=text_colour,
            weight="bold",
            bbox=backing,
        )
        axes.text(
            x + 0.475,
            y + 0.24,
            caption,
            ha="center",
            va="center",
            fontsize=9 if caption[:1].isdigit() else 7.5,
            color=text_colour,
            bbox=backing,
        )
    axes.set_xlim(-0.1, cols + 0.1)
    axes.set_ylim(-0.1, rows + 0.1)
    axes.set_aspect("equal")
    axes.axis("off")
    axes.set_title(_wrapped(chart.title), loc="left", fontsize=11)
    if values:
        bar = figure.colorbar(
            plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.6, pad=0.02
        )
        bar.ax.tick_params(labelsize=9)
    return _svg(figure, chart.title)


SPECIAL_COLOUR = "#8a8a8a"


def summary_chart(chart: SummaryChart) -> str:
    """A question's weighted answer shares: one horizontal bar per answer and group (the
    whole population, or a breakdown's few groups, one colour each) with its 95% interval;
    don't know and refused in grey below a dotted rule; a suppressed share is written, not
    drawn; a share to review is hollow.

    Written as SVG directly rather than through matplotlib: the page holds a chart for every
    closed question (about sixty), which matplotlib draws at a few tenths of a second each.
    Same conventions as the other charts: an accessible <svg> (role="img", an aria-label
    and a <title>), text as text, presentation attributes only."""
    label_width, plot_width, right = 250, 400, 40
    width = label_width + plot_width + right
    n_series = max(1, len(chart.series))
    bar, gap = 14, 10
    title_lines = textwrap.wrap(chart.title, width=76) or [chart.title]
    top = 18 * len(title_lines) + 10
    row_height = bar * n_series + gap
    plot_height = row_height * len(chart.answers)
    legend = 22 if n_series > 1 else 0
    height = top + plot_height + 40 + legend

    def x(value: float) -> float:
        return label_width + plot_width * max(0.0, min(value, 100.0)) / 100

    parts = [
        f'<text x="0" y="{16 + 18 * k}" font-size="14" font-weight="bold">{escape(line)}</text>'
        for k, line in enumerate(title_lines)
    ]
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{top + plot_height}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{x(tick):.1f}" y="{top + plot_height + 14}" font-size="11" '
            f'text-anchor="middle">{tick}</text>'
        )
    parts.append(
        f'<text x="{label_width + plot_width / 2:.1f}" y="{top + plot_height + 30}" '
        f'font-size="11" text-anchor="middle">{escape(chart.axis_label)}</text>'
    )
    for k, answer in enumerate(chart.answers):
        y0 = top + k * row_height + gap / 2
        if chart.special[k] and (k == 0 or not chart.special[k - 1]) and k:
            parts.append(
                f'<line x1="0" y1="{y0 - gap / 2:.1f}" x2="{width - right}" '
                f'y2="{y0 - gap / 2:.1f}" stroke="#999" stroke-dasharray="2 3"/>'
            )
        short = textwrap.shorten(answer, 40, placeholder="…")
        parts.append(
            f'<text x="{label_width - 6}" y="{y0 + bar * n_series / 2 + 4:.1f}" font-size="12" '
            f'text-anchor="end"><title>{escape(answer)}</title>{escape(short)}</text>'
        )
        for number, (_group, bars) in enumerate(chart.series):
            colour = WAVE_COLOURS[number % len(WAVE_COLOURS)]
            fill = SPECIAL_COLOUR if chart.special[k] and n_series == 1 else colour
            y = y0 + number * bar
            cell = bars[k]
            if cell.suppressed or not _finite(cell.estimate):
                parts.append(
                    f'<text x="{label_width + 4}" y="{y + bar - 3}" font-size="11" '
                    f'font-style="italic" fill="{colour}">{escape(chart.suppressed_label)}</text>'
                )
                continue
            estimate = float(cell.estimate)  # type: ignore[arg-type]
            low = float(cell.ci_low) if _finite(cell.ci_low) else estimate  # type: ignore[arg-type]
            high = float(cell.ci_high) if _finite(cell.ci_high) else estimate  # type: ignore[arg-type]
            kind = "review" if cell.review else "share"
            parts.append(
                f'<rect id="{kind}-{number}-{k}" x="{label_width}" y="{y + 1}" '
                f'width="{x(estimate) - label_width:.1f}" height="{bar - 2}" '
                f'fill="{"white" if cell.review else fill}" stroke="{fill}"/>'
                f'<line x1="{x(low):.1f}" y1="{y + bar / 2}" x2="{x(high):.1f}" '
                f'y2="{y + bar / 2}" stroke="#333" stroke-width="1"/>'
                f'<line x1="{x(low):.1f}" y1="{y + 3}" x2="{x(low):.1f}" y2="{y + bar - 3}" '
                f'stroke="#333"/><line x1="{x(high):.1f}" y1="{y + 3}" x2="{x(high):.1f}" '
                f'y2="{y + bar - 3}" stroke="#333"/>'
                f'<text x="{x(high) + 4:.1f}" y="{y + bar - 3}" font-size="11">'
                f"{estimate:.0f}</text>"
            )
    if n_series > 1:
        x0 = label_width
        for number, (group, _bars) in enumerate(chart.series):
            colour = WAVE_COLOURS[number % len(WAVE_COLOURS)]
            parts.append(
                f'<rect x="{x0}" y="{height - 16}" width="12" height="12" fill="{colour}"/>'
                f'<text x="{x0 + 16}" y="{height - 6}" font-size="12">{escape(group)}</text>'
            )
            x0 += 24 + 7 * len(group)
    label = escape(chart.title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="DejaVu Sans, sans-serif" '
        f'role="img" aria-label="{label}" class="chart"><title>{label}</title>'
        + "".join(parts)
        + "</svg>"
    )
