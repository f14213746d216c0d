"""The statistics package imports no Django: checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from analytics.computation import REVIEW_FLAGS, SUPPRESSION_REASONS
from analytics.stats.publication import REVIEW_CODES, SUPPRESSION_CODES

ROOT = Path(__file__).resolve().parents[2]
MODULES = [
    "analytics.stats",
    "analytics.stats.estimation",
    "analytics.stats.weighting",
    "analytics.stats.cells",
    "analytics.stats.publication",
    "analytics.stats.disclosure",
    "analytics.stats.indirect",
    "analytics.stats.summaries",
]


def loaded_after_importing(modules: list[str]) -> list[str]:
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}  # no DJANGO_SETTINGS_MODULE
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_statistics_load_without_any_django_module():
    loaded = loaded_after_importing(MODULES)
    assert set(MODULES) <= set(loaded)
    assert django_modules(loaded) == []


def django_modules(loaded: list[str]) -> list[str]:
    return [name for name in loaded if name == "django" or name.startswith("django.")]


def test_the_check_sees_a_django_module_loaded_beside_them():
    loaded = loaded_after_importing([*MODULES, "django.utils.functional"])
    assert "django.utils.functional" in django_modules(loaded)


def test_every_publication_code_has_its_text():
    assert set(SUPPRESSION_REASONS) == set(SUPPRESSION_CODES)
    assert set(REVIEW_FLAGS) == set(REVIEW_CODES)
