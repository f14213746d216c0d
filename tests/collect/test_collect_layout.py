"""The field channels' apps (collect, odk) stay modules of one role each, none over 800 lines."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("app", ["collect", "odk"])
def test_no_field_module_is_over_800_lines(app):
    folder = ROOT / app
    long = {
        str(path.relative_to(folder)): lines
        for path in folder.rglob("*.py")
        if "migrations" not in path.parts
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert long == {}
