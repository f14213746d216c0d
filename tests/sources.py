"""Files the tests read that come from outside the project.

The real XLSForms (written by others, see ``data/xlsforms/SOURCES.md``) are copied into
the repository, as the region table is into ``surveys/data``, so a clone runs its tests
anywhere; ``SHARED`` is the folder they are copied from, beside the repository when it
is there, and tests check the copies against it.
"""

from __future__ import annotations

from pathlib import Path

XLSFORMS = Path(__file__).resolve().parent / "data" / "xlsforms"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
