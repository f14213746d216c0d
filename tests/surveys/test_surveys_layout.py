"""The surveys app stays a set of modules of one role each, none over 800 lines."""

from __future__ import annotations

from pathlib import Path

SURVEYS = Path(__file__).resolve().parents[2] / "surveys"


def test_no_surveys_module_is_over_800_lines():
    long = {
        str(path.relative_to(SURVEYS)): lines
        for path in SURVEYS.rglob("*.py")
        if "migrations" not in path.parts
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert long == {}
