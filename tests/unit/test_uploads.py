"""Uploads never lose or merge files: every distinct name stays its own file (issue 15, kind 1)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from app.ui.documents_tab import ingest_files
from app.uploads import display_name, safe_name, upload_path
from tests.conftest import REPO
from tests.unit.test_api import make_client

CASES = REPO / "tests" / "data" / "cases" / "ingest" / "upload_names"


def upload(client, name: str, body: bytes, collection: str = "names") -> dict:
    response = client.post(
        "/v1/ingest",
        files=[("files", (name, body, "text/markdown"))],
        data={"collection": collection},
    )
    assert response.status_code == 200, response.text
    return response.json()["files"][0]


def sources(client, collection: str = "names") -> dict:
    data = {c["name"]: c for c in client.get("/v1/collections").json()["data"]}
    return data[collection]


@pytest.fixture
def client(make_settings, embedder, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.md").write_text("# Seed\n\nA seed document.\n")
    return make_client(make_settings, embedder, corpus)


def test_non_latin_names_stay_two_files_and_citations_show_them(client):
    """The handed case: 報告.md then 議事.md were both saved as __.md, the second
    replacing the first."""
    first = upload(client, "報告.md", (CASES / "報告.md").read_bytes())
    second = upload(client, "議事.md", (CASES / "議事.md").read_bytes())
    assert first["status"] == second["status"] == "added"
    assert Path(first["path"]).name == "報告.md" and Path(second["path"]).name == "議事.md"
    assert first["path"] != second["path"]
    assert sources(client)["files"] == 2
    reply = client.post(
        "/v1/chat/completions",
        json={
            "model": "rag:names",
            "messages": [{"role": "user", "content": "What is the 2024 travel budget?"}],
        },
    )
    assert reply.status_code == 200, reply.text
    cited = {Path(s["source"]).name for s in reply.json()["sources"]}
    assert "報告.md" in cited, cited


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Report.md", "report.md"),  # case only
        ("a?b.md", "a*b.md"),  # punctuation a cleaner would drop or replace alike
        ("my notes.md", "my_notes.md"),  # space against underscore
        ("résumé.md", "resume.md"),  # accents
    ],
)
def test_names_that_would_clean_alike_stay_distinct(client, a, b):
    upload(client, a, b"# A\n\nThe first file talks about kites.\n")
    upload(client, b, b"# B\n\nThe second file talks about gliders.\n")
    assert sources(client)["files"] == 2
    assert upload_path(Path("/x"), "names", a) != upload_path(Path("/x"), "names", b)


def test_same_name_again_replaces_that_file_only(client):
    upload(client, "報告.md", b"# Budget\n\nThe budget is 48,000 euros.\n")
    upload(client, "議事.md", b"# Minutes\n\nLisbon in May.\n")
    again = upload(client, "報告.md", b"# Budget\n\nThe budget is 50,000 euros.\n")
    assert again["status"] == "updated"
    assert sources(client)["files"] == 2
    # the same name typed in decomposed form (as macOS sends it) is the same name
    nfd = unicodedata.normalize("NFD", "résumé.md")
    upload(client, "résumé.md", b"# CV\n\nOne page.\n")
    assert upload(client, nfd, b"# CV\n\nTwo pages.\n")["status"] == "updated"
    assert sources(client)["files"] == 3


def test_safe_names_keep_what_the_user_typed():
    assert safe_name("../../報告 (final).md") == "報告 (final).md"
    assert safe_name("C:\\Users\\me\\notes.md") == "notes.md"
    assert safe_name(".hidden.md") == "hidden.md"
    assert safe_name("bad\x00name\n.md") == "bad_name_.md"
    long = safe_name("長" * 300 + ".md")
    assert long.endswith(".md") and len(long.encode()) <= 200
    assert display_name(unicodedata.normalize("NFD", "é.md")) == "é.md"


def test_documents_tab_keeps_uploaded_names_gradio_would_merge(make_settings, embedder, tmp_path):
    """Gradio drops ``?`` and ``*`` from its temporary names; the tab uses the uploaded names."""
    from app.components import build_ingest_pipeline

    settings = make_settings()
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    temp = []
    for index, text in enumerate(["Kites need wind.", "Gliders need thermals."]):
        folder = tmp_path / f"gradio{index}"
        folder.mkdir()
        path = folder / "ab.md"  # what Gradio kept of both names
        path.write_text(f"# Doc\n\n{text}\n")
        temp.append(str(path))
    summary, rows = ingest_files(
        pipeline, settings, [(temp[0], "a?b.md"), (temp[1], "a*b.md")], "", "tab", "structure"
    )
    assert "added 2" in summary, summary
    assert sorted(Path(r[0]).name for r in rows) == ["a*b.md", "a?b.md"]
