"""Document structure is parsed, not guessed (issue 15, kind 4): fences, front matter, paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexing.chunking import ChunkingConfig, chunk_documents
from indexing.markdown import sections, split_front_matter
from indexing.readers import extract_file, load_documents

CASES = Path(__file__).resolve().parent.parent / "data" / "cases" / "ingest" / "markdown"


def _chunks(path: Path, embedder, size: int = 256, overlap: int = 32):
    documents = load_documents(path, max_file_mb=5)
    return chunk_documents(
        documents, ChunkingConfig("structure", size, overlap), tokenizer=embedder.tokenize
    )


def test_handed_fences_never_yield_headings(embedder):
    chunks = _chunks(CASES / "fences.md", embedder)
    rollback = [c for c in chunks if "orchid-bundle" in c.text]
    assert rollback and rollback[0].metadata["heading"] == "Deployment guide > Rollback step"
    assert {c.metadata["heading"] for c in chunks} == {
        "Deployment guide",
        "Deployment guide > Build step",
        "Deployment guide > Rollback step",
    }


def test_handed_long_section_keeps_its_path_in_every_chunk(embedder):
    chunks = _chunks(CASES / "long_code.md", embedder)
    nightly = [c for c in chunks if "rotate-shard" in c.text or "nightly job" in c.text]
    assert len(nightly) > 3
    assert {c.metadata["heading"] for c in nightly} == {"Operations handbook > Nightly script"}
    assert max(len(embedder.tokenize(c.text)) for c in chunks) <= 256
    contacts = [c for c in chunks if "on-call owner" in c.text]
    assert contacts[0].metadata["heading"] == "Operations handbook > Contacts"


FENCES = {
    "backtick fence with # lines": "```sh\n# install\nmake\n## more\n```",
    "tilde fence indented three spaces": "   ~~~\n# not a heading\n   ~~~",
    "four backticks around ```": "````md\n```\n# inner heading\n```\n````",
    "long tilde fence with a shorter close inside": "~~~~~\n~~~\n# still code\n~~~~~",
    "indented code block": "    # a comment in indented code\n    run()",
    "html block": "<div>\n# inside raw html\n</div>",
}


@pytest.mark.parametrize("fence", FENCES.values(), ids=FENCES.keys())
def test_code_and_html_blocks_never_yield_headings(fence):
    text = f"# Guide\n\n## Setup\n\nBefore.\n\n{fence}\n\nAfter the block.\n\n## Next\n\nLast.\n"
    paths = [s.path for s in sections(text)]
    assert paths == [("Guide",), ("Guide", "Setup"), ("Guide", "Next")]
    setup = sections(text)[1].text
    assert "After the block." in setup and fence.splitlines()[1] in setup


def test_setext_headings_and_nesting():
    text = (
        "Manual\n======\n\nIntro.\n\nInstall\n-------\n\nSteps.\n\n### From source\n\nBuild.\n"
        "\n## Use\n\nRun."
    )
    assert [s.path for s in sections(text)] == [
        ("Manual",),
        ("Manual", "Install"),
        ("Manual", "Install", "From source"),
        ("Manual", "Use"),
    ]


def test_heading_markup_is_not_part_of_the_path():
    text = "# The `ragtune` *guide*\n\n## Step [one](https://example.org) ##\n\nText."
    assert sections(text)[-1].path == ("The ragtune guide", "Step one")


def test_headings_in_block_quotes_do_not_cut_the_text():
    text = "# Doc\n\n> # Quoted\n> text\n\nMore."
    assert [s.path for s in sections(text)] == [("Doc",)]


def test_yaml_front_matter_is_metadata_not_text(tmp_path, embedder):
    md = tmp_path / "post.md"
    md.write_text(
        "---\ntitle: Release notes\ntags: [a, b]\n---\n\n## Fixes\n\nThe crash on start is fixed.\n"
    )
    document = load_documents(md, max_file_mb=5)[0]
    assert document.metadata["title"] == "Release notes"
    assert "tags:" not in document.text and not document.text.startswith("---")
    chunks = chunk_documents(
        [document], ChunkingConfig("structure", 64, 8), tokenizer=embedder.tokenize
    )
    assert [c.metadata["heading"] for c in chunks] == ["Release notes > Fixes"]
    assert all("tags" not in c.text for c in chunks)


def test_toml_front_matter_and_a_title_beside_an_h1():
    front = split_front_matter('---\ntitle = "Howto"\ndraft = false\n---\n# Real title\n\nBody.')
    assert front.metadata == {"title": "Howto", "draft": False} and front.title == "Howto"
    assert [s.path for s in sections(front.body, title=front.title)] == [("Real title",)]


def test_bad_front_matter_is_kept_as_text_with_a_notice(tmp_path, embedder):
    md = tmp_path / "broken.md"
    md.write_text("---\ntitle: [unclosed\nowner: ops\n---\n\n# Runbook\n\nRestart the service.\n")
    extraction = extract_file(md, max_file_mb=5)
    assert len(extraction.notices) == 1 and "front matter (lines 1-4)" in extraction.notices[0]
    assert "indexed as text" in extraction.notices[0]
    chunks = chunk_documents(
        extraction.documents, ChunkingConfig("structure", 64, 8), tokenizer=embedder.tokenize
    )
    assert any("owner: ops" in c.text for c in chunks)  # kept, and not a setext heading
    assert [c.metadata.get("heading") for c in chunks if "Restart" in c.text] == ["Runbook"]


def test_thematic_breaks_at_the_top_are_not_front_matter():
    text = "---\nJust a paragraph between rules.\n---\n\n# Doc\n"
    front = split_front_matter(text)
    assert front.body == text and front.metadata == {} and front.notice is None


def test_html_headings_keep_their_full_path_in_every_chunk(tmp_path, embedder):
    sentences = " ".join(
        f"Sentence {i} explains how the backup rotation keeps seven copies." for i in range(60)
    )
    page = tmp_path / "manual.html"
    page.write_text(
        "<html><body><h1>Admin manual</h1><p>Intro.</p><h2>Backups</h2>"
        f"<h3>Rotation</h3><p>{sentences}</p><pre># not a heading\nrotate --keep 7</pre>"
        "<h2>Restore</h2><p>Restore from the newest copy.</p></body></html>"
    )
    chunks = _chunks(page, embedder, size=64, overlap=8)
    rotation = [c for c in chunks if "rotation keeps" in c.text or "rotate --keep" in c.text]
    assert len(rotation) > 3
    assert {c.metadata["heading"] for c in rotation} == {"Admin manual > Backups > Rotation"}
    restore = [c for c in chunks if "newest copy" in c.text]
    assert restore[0].metadata["heading"] == "Admin manual > Restore"
    assert max(len(embedder.tokenize(c.text)) for c in chunks) <= 64


MARKDOWN_PIECES = [
    "---\n",
    "```\n",
    "~~~\n",
    "````\n",
    "   ",
    "    ",
    "# ",
    "## ",
    "word\n",
    "===\n",
    "\n",
    "> ",
    "- ",
    "title: x\n",
    "[a]",
    "<div>\n",
    "\t",
    "\r\n",
    "\r",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(MARKDOWN_PIECES), max_size=40).map("".join))
def test_sections_lose_and_repeat_nothing(text):
    front = split_front_matter(text)
    found = sections(front.body, title="T")
    lines = [line for line in "\n".join(s.text for s in found).splitlines() if line.strip()]
    assert lines == [line for line in front.body.splitlines() if line.strip()]
    assert all(section.path and section.path[0] for section in found if section.path)
