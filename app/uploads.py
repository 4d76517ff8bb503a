"""Uploaded files (API and web app): checked, renamed safely, stored under the data folder.

Only configured types are accepted (415 otherwise), each file is cut off at the size limit
while it is written (413), and names lose any path or odd characters, so an upload can
never write outside ``<data_dir>/uploads/<collection>/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

from indexing.store import validate_collection_name

CHUNK = 1 << 20


class UploadError(ValueError):
    """An upload that is refused; ``status`` is the HTTP code (413 or 415)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def safe_name(name: str) -> str:
    """The file name without folders or characters that are unsafe on disk."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")
    return cleaned[:120] or "upload"


def check_type(name: str, allowed: list[str]) -> None:
    """Refuse a file type that is not in ``allowed`` (415)."""
    suffix = Path(name).suffix.lower()
    if suffix not in {a.lower() for a in allowed}:
        raise UploadError(f"{name}: file type {suffix or '(none)'} is not accepted; allowed: {', '.join(allowed)}", 415)


def store_upload(source: BinaryIO, name: str, collection: str, root: Path, *, allowed: list[str],
                 max_mb: float) -> Path:  # fmt: skip
    """Copy one upload to ``root/<collection>/<safe name>``; refuse it by type or size."""
    check_type(name, allowed)
    folder = root / validate_collection_name(collection)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_name(name)
    partial = target.with_name(target.name + ".part")
    limit, written = int(max_mb * 1024 * 1024), 0
    try:
        with partial.open("wb") as out:
            while block := source.read(CHUNK):
                written += len(block)
                if written > limit:
                    raise UploadError(f"{name}: larger than the {max_mb:g} MB upload limit", 413)
                out.write(block)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def copy_local(path: Path, collection: str, root: Path, *, allowed: list[str], max_mb: float) -> Path:
    """``store_upload`` for a file the web app already holds in a temporary folder."""
    with path.open("rb") as handle:
        return store_upload(handle, path.name, collection, root, allowed=allowed, max_mb=max_mb)


__all__ = ["UploadError", "copy_local", "safe_name", "store_upload"]
