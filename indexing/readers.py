"""Turn one file into llama-index ``Document`` objects, or say exactly why not.

Every refusal is a ``FileRejected`` with a reason a person can act on (too large, empty,
binary, not UTF-8, encrypted PDF, ...). The ingest pipeline records it against the file
and carries on with the others.
"""

from __future__ import annotations

from pathlib import Path

from llama_index.core import Document

from indexing.html import html_to_markdown
from indexing.normalize import normalize_text

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}


class FileRejected(Exception):
    """A file that cannot be ingested; ``str(exc)`` is the reason."""


def load_documents(path: Path, *, max_file_mb: float) -> list[Document]:
    """Read ``path`` into documents carrying ``source``, ``file_type`` and ``page`` metadata.

    PDFs give one document per page; Markdown and HTML give one document whose text is
    Markdown, so the heading-aware parser can keep each chunk's heading path.
    """
    check_file(path, max_file_mb=max_file_mb)
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return _read_pdf(path)
    text = normalize_text(_read_text(path))
    file_type = suffix.lstrip(".") or "txt"
    if suffix in HTML_SUFFIXES:
        text = html_to_markdown(text)
        file_type = "html"
    elif suffix in MARKDOWN_SUFFIXES:
        file_type = "md"
    if not text.strip():
        raise FileRejected("no text content")
    return [Document(text=text, metadata={"file_type": file_type})]


def check_file(path: Path, *, max_file_mb: float) -> None:
    """Refuse a missing, empty or oversized file before anything reads it."""
    if not path.exists():
        raise FileRejected("no such file")
    if not path.is_file():
        raise FileRejected("not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise FileRejected("empty file")
    if size > max_file_mb * 1024 * 1024:
        raise FileRejected(
            f"{size / 1024 / 1024:.1f} MB is over the {max_file_mb:g} MB limit "
            "(setting indexing.max_file_mb)"
        )


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise FileRejected("binary content (NUL bytes), not a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileRejected(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}); "
            "convert it to UTF-8 and ingest again"
        ) from None


def _read_pdf(path: Path) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileRejected("encrypted PDF (password protected)")
        pages = [
            (number, normalize_text(page.extract_text() or "")) for number, page in enumerate(reader.pages, 1)
        ]
    except FileRejected:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FileRejected(f"corrupt or unreadable PDF ({exc.__class__.__name__}: {exc})") from None
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise FileRejected(f"corrupt or unreadable PDF ({exc.__class__.__name__}: {exc})") from None
    documents = [
        Document(text=text, metadata={"file_type": "pdf", "page": number})
        for number, text in pages
        if text.strip()
    ]
    if not documents:
        raise FileRejected("PDF has no extractable text (a scanned image?)")
    return documents
