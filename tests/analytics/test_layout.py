"""The analytics app stays a set of modules of one role each, none over 800 lines."""

from __future__ import annotations

from pathlib import Path

ANALYTICS = Path(__file__).resolve().parents[2] / "analytics"
# Declarations, not logic: the indicator table.
DECLARATIONS = {"indicators.py"}


def test_no_analytics_module_is_over_800_lines():
    long = {
        str(path.relative_to(ANALYTICS)): lines
        for path in ANALYTICS.rglob("*.py")
        if "migrations" not in path.parts and path.name not in DECLARATIONS
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert long == {}
