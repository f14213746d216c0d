"""Owner-only files and folders for what the platform keeps on disk: export files, the
the waves' stores hold interviews' answers, so nobody but the
account that runs the platform may read them (0o600 files in 0o700 folders)."""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    """Create `path` (and its missing parents) and make it owner-only."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(path, FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` if missing, and make it owner-only (writers then open it in place)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    os.chmod(path, FILE_MODE)
    return path
