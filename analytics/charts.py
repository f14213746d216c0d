"""Dashboard charts, drawn by matplotlib as inline SVG (no JavaScript, works offline).

Each function takes plain rows (dicts) and texts already in the page's language and
returns an accessible <svg> string: role="img", an aria-label and a <title>. A suppressed
cell is drawn as the word for "suppressed", never as a zero; a region's tile is hatched.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from html import escape
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: the browser renders Kazakh letters
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.hashsalt": "tanys",  # stable ids, so the same data give the same SVG
    }
)
WAVE_COLOURS = ["#1f5f8b", "#d9822b", "#3b8b4f", "#8b3b6f"]
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


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def comparison_chart(
    series: Sequence[dict[str, Any]],
    *,
    regions: Sequence[str],
    title: str,
    axis_label: str,
    national_label: str,
    suppressed_label: str,
    scale: float = 1.0,
) -> str:
    """Dots with 95% confidence intervals per region, one series per wave, national lines.

    series: [{"name": wave label, "national": float | None,
              "cells": {region label: {"estimate", "ci_low", "ci_high", "suppressed"}}}]
    """
    height = max(2.5, 0.32 * len(regions) + 1.2)
    figure, axes = plt.subplots(figsize=(7.2, height))
    positions = {name: k for k, name in enumerate(reversed(regions))}
    step = 0.5 / max(1, len(series))
    for number, wave in enumerate(series):
        colour = WAVE_COLOURS[number % len(WAVE_COLOURS)]
        offset = (number - (len(series) - 1) / 2) * step
        labelled = False
        for region, cell in wave["cells"].items():
            y = positions[region] + offset
            if cell.get("suppressed") or not _finite(cell.get("estimate")):
                axes.text(
                    0.0,
                    y,
                    f" {suppressed_label}",
                    transform=axes.get_yaxis_transform(),
                    va="center",
                    fontsize=7.5,
                    color=colour,
                    style="italic",
                )
                continue
            estimate = cell["estimate"] * scale
            low = cell["ci_low"] * scale if _finite(cell.get("ci_low")) else estimate
            high = cell["ci_high"] * scale if _finite(cell.get("ci_high")) else estimate
            drawn = axes.errorbar(
                estimate,
                y,
                xerr=[[estimate - low], [high - estimate]],
                fmt="o",
                color=colour,
                markersize=4,
                capsize=2,
                linewidth=1,
                label=None if labelled else wave["name"],
            )
            drawn.lines[0].set_gid(f"estimate-{number}-{positions[region]}")
            labelled = True
        if _finite(wave.get("national")):
            axes.axvline(
                wave["national"] * scale,
                color=colour,
                linestyle="--",
                linewidth=0.9,
                label=f"{national_label} ({wave['name']})",
            )
    axes.set_yticks(range(len(regions)), list(reversed(regions)))
    axes.set_ylim(-0.7, len(regions) - 0.3)
    axes.set_xlabel(axis_label)
    axes.grid(axis="x", color="#ddd", linewidth=0.6)
    axes.set_title(title, loc="left", fontsize=10)
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        axes.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False, fontsize=8
        )
    return _svg(figure, title)


def change_chart(
    cells: Sequence[dict[str, Any]],
    *,
    title: str,
    axis_label: str,
    unavailable_label: str,
    scale: float = 1.0,
) -> str:
    """Change since the previous wave per region with a 95% interval (change +- 1.96 SE).

    cells: [{"region": label, "change": float | None, "change_se": float | None}]
    """
    height = max(2.5, 0.32 * len(cells) + 1.0)
    figure, axes = plt.subplots(figsize=(7.2, height))
    for y, cell in enumerate(reversed(list(cells))):
        change = cell.get("change")
        if not _finite(change):
            axes.text(
                0.0,
                y,
                f" {unavailable_label}",
                transform=axes.get_yaxis_transform(),
                va="center",
                fontsize=7.5,
                color="#666",
                style="italic",
            )
            continue
        se = cell.get("change_se") if _finite(cell.get("change_se")) else 0.0
        colour = "#b03a2e" if change < 0 else "#1f5f8b"
        axes.errorbar(
            change * scale,
            y,
            xerr=1.96 * se * scale,
            fmt="s",
            color=colour,
            markersize=4,
            capsize=2,
            linewidth=1,
        )
    axes.axvline(0, color="#333", linewidth=0.8)
    axes.set_yticks(range(len(cells)), [c["region"] for c in reversed(list(cells))])
    axes.set_ylim(-0.7, len(cells) - 0.3)
    axes.set_xlabel(axis_label)
    axes.grid(axis="x", color="#ddd", linewidth=0.6)
    axes.set_title(title, loc="left", fontsize=10)
    return _svg(figure, title)


def tile_map(
    tiles: Sequence[dict[str, Any]],
    *,
    title: str,
    suppressed_label: str,
    no_data_label: str,
    scale: float = 1.0,
    value_format: str = "{:.0f}",
) -> str:
    """A tile-grid map: one square per region at its (row, col), coloured by the estimate.

    tiles: [{"row", "col", "short": code, "estimate": float | None, "suppressed": bool}]
    """
    rows = max((t["row"] for t in tiles), default=0) + 1
    cols = max((t["col"] for t in tiles), default=0) + 1
    values = [
        t["estimate"] * scale
        for t in tiles
        if _finite(t.get("estimate")) and not t.get("suppressed")
    ]
    norm = Normalize(vmin=min(values, default=0), vmax=max(values, default=1) or 1)
    cmap = colormaps["YlOrRd"]
    figure, axes = plt.subplots(figsize=(1.0 * cols + 1.2, 1.0 * rows + 0.8))
    for tile in tiles:
        x, y = tile["col"], rows - 1 - tile["row"]
        estimate = tile.get("estimate")
        if tile.get("suppressed"):
            patch = Rectangle((x, y), 0.94, 0.94, facecolor="white", edgecolor="#555", hatch="///")
            caption = suppressed_label
            text_colour = "#333"
        elif _finite(estimate):
            value = float(cast(float, estimate)) * scale
            patch = Rectangle((x, y), 0.94, 0.94, facecolor=cmap(norm(value)), edgecolor="white")
            caption = value_format.format(value)
            text_colour = "white" if norm(value) > 0.6 else "#111"
        else:
            patch = Rectangle((x, y), 0.94, 0.94, facecolor="#eee", edgecolor="#bbb")
            caption = no_data_label
            text_colour = "#555"
        axes.add_patch(patch)
        axes.text(
            x + 0.47,
            y + 0.62,
            tile["short"],
            ha="center",
            va="center",
            fontsize=7.5,
            color=text_colour,
            weight="bold",
        )
        axes.text(
            x + 0.47, y + 0.3, caption, ha="center", va="center", fontsize=7, color=text_colour
        )
    axes.set_xlim(-0.1, cols + 0.1)
    axes.set_ylim(-0.1, rows + 0.1)
    axes.set_aspect("equal")
    axes.axis("off")
    axes.set_title(title, loc="left", fontsize=10)
    if values:
        bar = figure.colorbar(
            plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.6, pad=0.02
        )
        bar.ax.tick_params(labelsize=7)
    return _svg(figure, title)
