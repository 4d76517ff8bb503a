"""Identical text takes one place in the top-k (issue 15, kind 7), with every file that holds
it listed; shown in the prompt, the JSON answer and the chat's source list."""

from __future__ import annotations

import pytest

from app.chat import Answer
from app.components import build_ingest_pipeline, build_retrievers
from app.prompting import format_sources
from app.ui.chat_tab import format_sources_markdown
from indexing.lexical import MetadataFilter, text_key
from indexing.retrieval import RetrievedChunk
from tests.helpers import make_pdf

KINDS = ["dense", "bm25", "hybrid"]
COPIES = ["notice.txt", "notice-copy.txt", "old/notice.txt", "notice (1).txt"] + [
    f"mirror/notice-{i}.txt" for i in range(4)
]
NOTICE = "The grommet service restarts every night at 02:00 and drops open sessions."
OTHERS = {
    "tea.txt": "Green tea is steeped at 80 degrees for two minutes.",
    "kites.txt": "Kites fly best in steady wind on open beaches.",
    "errors.txt": "Error E4711 means the grommet flux capacitor is misaligned.",
}


def _retrievers(make_settings, embedder, folder, store_mode=None):
    settings = make_settings(vector_store=store_mode) if store_mode else make_settings()
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    report = pipeline.ingest([folder], "notes", show_progress=False)
    assert report.count("failed") == 0, report.to_dict()
    return build_retrievers(settings, pipeline.store, embedder)


def _assert_distinct(found: list[RetrievedChunk]) -> None:
    keys = [text_key(c.text) for c in found]
    assert len(keys) == len(set(keys)), [c.text for c in found]


@pytest.fixture
def copies(make_settings, embedder, tmp_path, store_mode):
    """One file under eight names (more than k: over-fetching is needed), plus three others."""
    folder = tmp_path / "copies"
    folder.mkdir()
    for name in COPIES:
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(NOTICE + "\n")
    for name, text in OTHERS.items():
        (folder / name).write_text(text + "\n")
    return _retrievers(make_settings, embedder, folder, store_mode)


@pytest.mark.parametrize("kind", KINDS)
def test_copies_of_a_file_take_one_slot_and_are_all_listed(copies, kind):
    found = copies[kind].retrieve("when does the grommet service restart", "notes", 4)
    _assert_distinct(found)
    assert found[0].text == NOTICE
    holders = [found[0].source, *found[0].also_in]
    assert sorted(h.split("/copies/", 1)[1] for h in holders) == sorted(COPIES)
    assert all(not c.also_in for c in found[1:])
    if kind != "bm25":  # BM25 returns only chunks sharing a term
        assert len(found) == 4  # over-fetched: k different texts although 4 copies rank first


@pytest.mark.parametrize("kind", KINDS)
def test_also_in_respects_the_filter(copies, kind):
    only = MetadataFilter(source_glob="*/copies/notice*.txt")
    found = copies[kind].retrieve("grommet service restart", "notes", 3, only)
    assert len(found) == 1 and found[0].text == NOTICE
    assert sorted(found[0].also_in_names + [found[0].file_name]) == [
        "notice (1).txt",
        "notice-copy.txt",
        "notice.txt",
    ]  # not the copies under old/ and mirror/


@pytest.mark.parametrize("kind", KINDS)
def test_one_paragraph_on_three_pages_takes_one_slot(make_settings, embedder, tmp_path, kind):
    folder = tmp_path / "pdf"
    folder.mkdir()
    make_pdf(folder / "handbook.pdf", [NOTICE, "Lava cools into basalt.", NOTICE, NOTICE])
    for name, text in OTHERS.items():
        (folder / name).write_text(text + "\n")
    found = _retrievers(make_settings, embedder, folder)[kind].retrieve(
        "grommet service restarts at night", "notes", 3
    )
    _assert_distinct(found)
    assert found[0].text == NOTICE and found[0].file_name == "handbook.pdf"
    assert found[0].also_in == []  # the same file: nothing else to list
    if kind != "bm25":
        assert len(found) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_section_repeated_in_markdown_takes_one_slot(make_settings, embedder, tmp_path, kind):
    folder = tmp_path / "md"
    folder.mkdir()
    section = f"## Maintenance\n\n{NOTICE}\n\n"
    (folder / "runbook.md").write_text(
        "# Runbook\n\n" + section * 3 + "## Tea\n\nGreen tea, 80 degrees.\n"
    )
    (folder / "errors.txt").write_text(OTHERS["errors.txt"] + "\n")
    found = _retrievers(make_settings, embedder, folder)[kind].retrieve(
        "grommet restarts", "notes", 3
    )
    _assert_distinct(found)
    assert NOTICE in found[0].text


@pytest.mark.parametrize("kind", KINDS)
def test_text_differing_only_in_whitespace_or_width_is_one_text(
    make_settings, embedder, tmp_path, kind
):
    folder = tmp_path / "near"
    folder.mkdir()
    (folder / "a.txt").write_text(NOTICE + "\n")
    (folder / "b.txt").write_text(NOTICE.replace(" ", "  ").replace("night at", "night\nat") + "\n")
    (folder / "c.txt").write_text(
        NOTICE.replace("02:00", "０２:００").replace(" ", "\u00a0") + "\n"
    )
    for name, text in OTHERS.items():
        (folder / name).write_text(text + "\n")
    found = _retrievers(make_settings, embedder, folder)[kind].retrieve(
        "grommet restart", "notes", 3
    )
    _assert_distinct(found)
    assert sorted([found[0].file_name, *found[0].also_in_names]) == ["a.txt", "b.txt", "c.txt"]


def test_text_key_folds_whitespace_and_compatibility_forms_only():
    assert text_key("a  b\nc") == text_key("a b c") == text_key("ａ\u00a0b c\u200b")
    assert text_key("a b c") != text_key("a b d") and text_key("A b c") != text_key("a b c")


def test_sources_show_the_other_files():
    chunk = RetrievedChunk(
        "/d/notice.txt", NOTICE, 0.8, chunk_id="x", also_in=["/d/copy.txt", "/d/old/notice.txt"]
    )
    assert chunk.to_dict()["also_in"] == ["/d/copy.txt", "/d/old/notice.txt"]
    prompt = format_sources([chunk], 500)
    assert "[1] (notice.txt)\nalso in: copy.txt, notice.txt\n<<<" in prompt
    record = Answer("q", "a", [chunk]).to_dict()
    assert record["sources"][0]["also_in"] == ["/d/copy.txt", "/d/old/notice.txt"]
    assert "also in `copy.txt`, `notice.txt`" in format_sources_markdown([chunk])
    plain = RetrievedChunk("/d/tea.txt", "Tea.", 0.5)
    assert "also in" not in format_sources([plain], 500) + format_sources_markdown([plain])
