"""Turn one file into llama-index ``Document`` objects, or say exactly why not.

Every refusal is a ``FileRejected`` with a reason a person can act on (too large, empty,
binary, not UTF-8, encrypted PDF, ...). The ingest pipeline records it against the file
and carries on with the others.
"""

from __future__ import annotations

import re
from pathlib import Path

from llama_index.core import Document

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
    text = _read_text(path)
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
        pages = [(number, page.extract_text() or "") for number, page in enumerate(reader.pages, 1)]
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


_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def html_to_markdown(html: str) -> str:
    """Visible text of an HTML page as Markdown-ish text with ``#`` headings.

    Scripts, styles, templates and hidden elements are dropped: text a reader of the page
    never sees must not reach the model (a common prompt-injection carrier).
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head", "iframe", "svg"]):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.decomposed:
            continue
        attrs = tag.attrs or {}
        if (
            "hidden" in attrs
            or attrs.get("aria-hidden") == "true"
            or _HIDDEN_STYLE.search(str(attrs.get("style", "")))
        ):
            tag.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for block in soup.find_all(["p", "li", "pre", "tr", "div", "br", "section", "article"]):
        block.insert_after("\n")
    text = soup.get_text()
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()
