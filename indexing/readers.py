"""Turn one file into llama-index ``Document`` objects, or say exactly why not.

Every refusal is a ``FileRejected`` with a reason a person can act on (too large, empty,
binary, not UTF-8, encrypted PDF, ...). The ingest pipeline records it against the file
and carries on with the others. A file read only in part (PDF pages without a text layer
or that fail to parse, hidden HTML elements left out) is read with a notice naming what
was left out, which the pipeline reports beside the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llama_index.core import Document

from indexing.html import convert_html
from indexing.markdown import split_front_matter
from indexing.normalize import normalize_text

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
# A page with images and fewer visible characters of text than this is taken for a scan
# whose text layer holds only a page number, stamp or header.
SCAN_TEXT_CHARS = 20


class FileRejected(Exception):
    """A file that cannot be ingested; ``str(exc)`` is the reason."""


@dataclass
class Extraction:
    """What was read from one file: its documents, and a notice for each part left out."""

    documents: list[Document]
    notices: list[str] = field(default_factory=list)


def load_documents(path: Path, *, max_file_mb: float) -> list[Document]:
    """The documents of ``path`` without the notices; see ``extract_file``."""
    return extract_file(path, max_file_mb=max_file_mb).documents


def extract_file(path: Path, *, max_file_mb: float) -> Extraction:
    """Read ``path`` into documents carrying ``file_type`` and ``page`` metadata.

    PDFs give one document per page with text; Markdown and HTML give one document whose
    text is Markdown, so the heading-aware parser can keep each chunk's heading path.
    ``notices`` say in words what was not indexed (e.g. "no extractable text on pages 2-3
    of 3 ..."). Raises ``FileRejected`` when nothing can be indexed.
    """
    check_file(path, max_file_mb=max_file_mb)
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return _read_pdf(path)
    text = normalize_text(_read_text(path))
    file_type = suffix.lstrip(".") or "txt"
    notices: list[str] = []
    title = None
    if suffix in HTML_SUFFIXES:
        converted = convert_html(text)
        text = normalize_text(converted.text)  # again: entities such as &nbsp; decode here
        if converted.hidden_removed:
            n = converted.hidden_removed
            notices.append(f"{n} hidden HTML element{'s were' if n > 1 else ' was'} not indexed")
        file_type = "html"
    elif suffix in MARKDOWN_SUFFIXES:
        file_type = "md"
        front = split_front_matter(text)  # front matter is metadata, not body (issue 15, kind 4)
        text, title, notices = front.body, front.title, [front.notice] if front.notice else []
    if not text.strip():
        raise FileRejected("no text content")
    metadata = {"file_type": file_type, **({"title": title} if title else {})}
    return Extraction([Document(text=text, metadata=metadata)], notices)


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


def _read_pdf(path: Path) -> Extraction:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileRejected("encrypted PDF (password protected)")
        pages = list(reader.pages)
    except FileRejected:
        raise
    except Exception as exc:  # noqa: BLE001 (pypdf raises many kinds on damaged files)
        raise FileRejected(f"corrupt or unreadable PDF ({exc.__class__.__name__}: {exc})") from None
    documents, blank, scanned, broken = [], [], {}, {}
    for number, page in enumerate(pages, 1):
        try:
            text = normalize_text(page.extract_text() or "")
        except Exception as exc:  # noqa: BLE001 (one damaged page must not cost the others)
            broken[number] = f"{exc.__class__.__name__}: {exc}"
            continue
        if not text.strip():
            blank.append(number)
            continue
        documents.append(Document(text=text, metadata={"file_type": "pdf", "page": number}))
        if _looks_scanned(page, text):
            scanned[number] = " ".join(text.split())
    if not documents:
        if broken:
            first = next(iter(broken.values()))
            raise FileRejected(f"corrupt or unreadable PDF ({first})")
        raise FileRejected("PDF has no extractable text (a scanned image?)")
    notices = []
    if blank:
        notices.append(
            f"no extractable text on {page_list(blank)} of {len(pages)} (scanned images? "
            "OCR the PDF, e.g. with ocrmypdf, to index them)"
        )
    if scanned:
        example = next(iter(scanned.values()))
        notices.append(
            f"almost no extractable text on {page_list(list(scanned))} of {len(pages)}: images "
            f"with only a few characters of text (e.g. {example!r}), probably scanned; OCR "
            "the PDF, e.g. with ocrmypdf, to index them"
        )
    if broken:
        notices.append(
            f"{page_list(list(broken))} of {len(pages)} could not be parsed and "
            f"{'was' if len(broken) == 1 else 'were'} not indexed ({next(iter(broken.values()))})"
        )
    return Extraction(documents, notices)


def _looks_scanned(page, text: str) -> bool:
    """Images beside fewer than ``SCAN_TEXT_CHARS`` non-space characters of text."""
    if len("".join(text.split())) >= SCAN_TEXT_CHARS:
        return False
    try:
        return len(page.images) > 0
    except Exception:  # noqa: BLE001 (a damaged image list only costs the hint)
        return False


def page_list(numbers: list[int]) -> str:
    """Page numbers in words with runs folded: [2] -> "page 2", [2, 3, 5] -> "pages 2-3, 5"."""
    runs: list[list[int]] = []
    for number in sorted(numbers):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts = [f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs]
    return ("page " if len(numbers) == 1 else "pages ") + ", ".join(parts)
