"""Writing the files the TUI saves (screenshots, exports): one function, never overwriting.

Every file goes through ``write_new``, which writes by the rules of the shared
``smart_suggest.outfile`` and never replaces an existing file: the name gets ``-2``, ``-3``,
... instead. The folder is
``export_dir`` from the settings when set, else the Downloads folder when it exists, else
the current folder, and the app always says where a file went.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


def export_folder(configured: str | None) -> Path:
    """Where files go: the configured folder, else Downloads (if it exists), else here."""
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    downloads = platformdirs.user_downloads_path()
    return downloads if downloads.is_dir() else Path.cwd()


def safe_stem(name: str, limit: int = 60) -> str:
    """A file-name stem from user data (an experiment name): letters, digits, . _ - only."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:limit]
    return stem or "export"


def write_new(folder: Path, name: str, content: str, protect: Iterable[Path | str] = ()) -> Path:
    """Write ``content`` to a new file ``name`` in ``folder``; never replaces a file.

    Written through the shared ``smart_suggest.outfile`` rules (atomic, never the database
    in ``protect``). Raises ``OSError`` or ``SmartSuggestError`` with nothing written.
    """
    from smart_suggest.outfile import open_output

    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    for n in range(1, 1000):
        candidate = folder / (name if n == 1 else f"{stem}-{n}{dot}{ext}")
        if candidate.exists() or candidate.is_symlink():
            continue
        with open_output(candidate, force=False, protect=protect) as fh:
            fh.write(content)
        return candidate
    raise FileExistsError(f"too many files named like {name} in {folder}")
