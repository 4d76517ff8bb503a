"""Uploaded files (API and web app): checked, named safely, stored under the data folder.

Only configured types are accepted (415 otherwise) and each file is cut off at the size
limit while it is written (413). An upload can never write outside
``<uploads_dir>/<collection>/`` (``Settings.uploads_dir``, ``<data_dir>/uploads``), and two
different names never share a file:

- the stored name is the name the user gave (Unicode NFC), less only what cannot be part
  of one file name (folders, control characters, leading dots), so citations show it;
- each name gets a folder of its own, keyed by a hash of the whole name as given, so
  names that would clean to the same string (``報告.md`` and ``議事.md`` on an ASCII-only
  cleaner, ``Report.md`` and ``report.md`` on a case-insensitive disk, ``a?b.md`` and
  ``a*b.md``) stay distinct files, while uploading the same name again replaces that one
  file only.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from typing import BinaryIO

from indexing.errors import RagtuneError
from indexing.store import validate_collection_name

CHUNK = 1 << 20
MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/]")


class UploadError(RagtuneError, ValueError):
    """An upload that is refused; ``status`` is the HTTP code (413 or 415)."""

    error_type = "invalid_upload"
    label = "upload"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def display_name(name: str) -> str:
    """The file name as the user gave it: without folders, in Unicode NFC."""
    return unicodedata.normalize("NFC", name.replace("\\", "/")).rsplit("/", 1)[-1]


def safe_name(name: str) -> str:
    """``display_name`` less control characters and leading dots, at most 200 UTF-8 bytes.

    The suffix is kept when the name is shortened; an empty result becomes ``upload``.
    """
    cleaned = _UNSAFE.sub("_", display_name(name)).strip().lstrip(".").strip()
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot:
        stem, suffix = cleaned, ""
    ending = f".{suffix}" if dot else ""
    budget = MAX_NAME_BYTES - len(ending.encode())
    stem = stem.encode()[:budget].decode(errors="ignore").strip()
    return f"{stem}{ending}" if stem else f"upload{ending}"


def upload_path(root: Path, collection: str, name: str) -> Path:
    """Where the upload named ``name`` is stored: ``root/<collection>/<key>/<safe name>``.

    ``key`` is the first 12 hex digits of the SHA-256 of ``display_name(name)``.
    Raises ``StoreError`` for an invalid collection name.
    """
    key = hashlib.sha256(display_name(name).encode()).hexdigest()[:12]
    return root / validate_collection_name(collection) / key / safe_name(name)


def check_type(name: str, allowed: list[str]) -> None:
    """Refuse a file type that is not in ``allowed`` (415)."""
    suffix = Path(display_name(name)).suffix.lower()
    if suffix not in {a.lower() for a in allowed}:
        raise UploadError(
            f"{name}: file type {suffix or '(none)'} is not accepted; "
            f"allowed: {', '.join(allowed)}",
            415,
        )


def store_upload(
    source: BinaryIO, name: str, collection: str, root: Path, *, allowed: list[str], max_mb: float
) -> Path:
    """Copy one upload to ``upload_path(root, collection, name)``; refuse it by type or size.

    Raises ``UploadError`` (415 wrong type, 413 over ``max_mb`` megabytes); a refused or
    interrupted upload leaves any earlier file of the same name as it was.
    """
    check_type(name, allowed)
    target = upload_path(root, collection, name)
    target.parent.mkdir(parents=True, exist_ok=True)
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


def copy_local(
    path: Path,
    collection: str,
    root: Path,
    *,
    allowed: list[str],
    max_mb: float,
    name: str | None = None,
) -> Path:
    """``store_upload`` for a file the web app already holds in a temporary folder.

    ``name`` is the name the user uploaded (the temporary file's name when None).
    """
    with path.open("rb") as handle:
        return store_upload(
            handle, name or path.name, collection, root, allowed=allowed, max_mb=max_mb
        )


__all__ = ["UploadError", "copy_local", "display_name", "safe_name", "store_upload", "upload_path"]
