"""Text reaches the index as a reader sees it (issue 15, kind 2): NFKC, line endings, invisibles."""

from __future__ import annotations

import pytest

from indexing.chunking import ChunkingConfig, chunk_documents
from indexing.normalize import normalize_text
from indexing.readers import load_documents


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        (
            "e\ufb03cient re\ufb02ection \ufb01nal \ufb02ow",
            "efficient reflection final flow",
        ),  # ligatures
        ("\uff32\uff21\uff27 \uff11\uff12\uff13", "RAG 123"),  # full-width forms
        ("48\u00a0000\u202feuros", "48 000 euros"),  # non-breaking spaces
        (
            "retrie\u00advable zero\u200bwidth join\u2060ed \ufeffbom",
            "retrievable zerowidth joined bom",
        ),
        ("line one\r\nline two\rline three\n", "line one\nline two\nline three\n"),  # CRLF, lone CR
    ],
)
def test_normalize_text(raw, seen):
    assert normalize_text(raw) == seen
    assert normalize_text(seen) == seen  # idempotent


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_markdown_with_crlf_or_cr_keeps_its_heading_path(tmp_path, embedder, newline):
    md = tmp_path / "notes.md"
    md.write_bytes(
        newline.join(["# Guide", "", "Intro.", "", "## Install", "", "Run make run.", ""]).encode()
    )
    chunks = chunk_documents(
        load_documents(md, max_file_mb=5),
        ChunkingConfig("structure", 64, 8),
        tokenizer=embedder.tokenize,
    )
    install = [c for c in chunks if "make run" in c.text]
    assert install and install[0].metadata["heading"] == "Guide > Install"
    assert all("\r" not in c.text for c in chunks)


def test_headings_are_normalised_too(tmp_path, embedder):
    md = tmp_path / "conf.md"
    md.write_text(
        "# Con\ufb01guration\n\n## \uff33\uff45\uff54\uff55\uff50\n\nSet the port.\n",
        encoding="utf-8",
    )
    chunks = chunk_documents(
        load_documents(md, max_file_mb=5),
        ChunkingConfig("structure", 64, 8),
        tokenizer=embedder.tokenize,
    )
    assert [c.metadata["heading"] for c in chunks if "port" in c.text] == ["Configuration > Setup"]


def test_html_text_is_normalised(tmp_path):
    page = tmp_path / "page.html"
    page.write_bytes(
        "<html><body><h1>O\ufb00ice</h1>\r\n<p>soft\u00adware&nbsp;tools</p></body></html>".encode()
    )
    text = load_documents(page, max_file_mb=5)[0].text
    assert "# Office" in text and "software tools" in text
