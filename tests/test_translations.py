"""Every interface string has a Kazakh and a Russian translation (English may equal the msgid)."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest

LOCALE = Path(__file__).resolve().parents[1] / "locale"
CATALOGUES = sorted(LOCALE.glob("*/LC_MESSAGES/django.po"))


def test_the_three_catalogues_exist():
    assert {path.parts[-3] for path in CATALOGUES} >= {"kk", "ru", "en"}


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-3])
def test_catalogue_is_complete(path):
    language = path.parts[-3]
    catalogue = polib.pofile(str(path))
    fuzzy = [entry.msgid for entry in catalogue if "fuzzy" in entry.flags and not entry.obsolete]
    assert fuzzy == [], f"{language}: fuzzy entries to review: {fuzzy}"
    if language == "en":
        return
    missing = [
        entry.msgid
        for entry in catalogue
        if not entry.obsolete
        and not (entry.msgstr or all(entry.msgstr_plural.values()) and entry.msgstr_plural)
    ]
    assert missing == [], f"{language}: untranslated: {missing}"


@pytest.mark.parametrize("path", [p for p in CATALOGUES if p.parts[-3] == "kk"], ids=["kk"])
def test_kazakh_is_written_in_cyrillic_with_kazakh_letters(path):
    catalogue = polib.pofile(str(path))
    texts = " ".join(entry.msgstr for entry in catalogue if entry.msgstr)
    assert set("әғқңөұүі") <= set(texts)


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-3])
def test_catalogue_compiles_with_matching_placeholders(path):
    """msgfmt refuses a translation whose %-placeholders differ from the English text."""
    import shutil
    import subprocess

    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "gettext's msgfmt is needed to compile the catalogues"
    result = subprocess.run(
        [msgfmt, "--check-format", "-o", "/dev/null", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
