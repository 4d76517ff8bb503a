"""Partial extraction is reported (issue 15, kind 5).

A file read only in part is ingested with a notice naming what was left out, in the
pipeline report, the CLI summary and ``--json``, ``POST /v1/ingest`` and the Documents
tab; paths a folder walk passes over are listed, never dropped silently.
"""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from app.cli.main import cli
from app.components import build_ingest_pipeline
from app.ui.documents_tab import ingest_files
from indexing.discovery import discover
from indexing.readers import extract_file, page_list
from tests.conftest import REPO
from tests.helpers import make_pdf, pdf_bytes

CASES = REPO / "tests" / "data" / "cases" / "ingest"
MIXED = CASES / "mixed_scanned.pdf"  # page 1 has text, pages 2-3 are images only
EXTENSIONS = [".txt", ".md", ".pdf", ".html", ".htm"]
runner = CliRunner()


@pytest.fixture
def pipeline(make_settings, embedder):
    return build_ingest_pipeline(make_settings(), embedder=embedder)


@pytest.fixture
def walk_tree(tmp_path):
    """A folder with one real file and every kind of entry a walk passes over."""
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "real.md").write_text("# Real\n\nGrommets are inspected weekly.\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "linked.md").write_text("# Linked\n\nLinked text.\n")
    (root / "linked_folder").symlink_to(outside, target_is_directory=True)
    (root / "gone.md").symlink_to(tmp_path / "no-such-target.md")
    (root / "loop.md").symlink_to(root / "loop.md")
    os.mkfifo(root / "pipe.txt")
    (root / "alias.md").symlink_to(outside / "linked.md")  # symlinked files are followed
    (root / ".hidden").mkdir()  # hidden and unsupported: silent by design
    (root / ".hidden" / "dangling.md").symlink_to(tmp_path / "missing.md")
    (root / ".secret.md").write_text("hidden file\n")
    (root / "picture.png").write_bytes(b"\x89PNG")
    (root / "dangling.png").symlink_to(tmp_path / "missing.png")
    return root


def scan_pdf(path, pages: list[tuple[str, bool]]):
    """A PDF whose pages have one line of text each, and a full-page image where asked."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")  # 3
    objects.append(
        b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length 1 >>\nstream\n\x80\nendstream"
    )  # 4
    kids = []
    for text, image in pages:
        draw = "q 500 0 0 700 50 50 cm /Im1 Do Q " if image else ""
        content = f"{draw}BT /F1 9 Tf 72 20 Td ({text}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
            f"/Resources << /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> >>".encode()
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    path.write_bytes(pdf_bytes(objects))
    return path


def _reasons(notes) -> dict[str, str]:
    return {os.path.basename(n.path): n.reason for n in notes}


# --- readers ---------------------------------------------------------------------------


def test_handed_mixed_scanned_pdf_names_the_pages_without_text():
    extraction = extract_file(MIXED, max_file_mb=5)
    assert [d.metadata["page"] for d in extraction.documents] == [1]
    assert len(extraction.notices) == 1
    assert "no extractable text on pages 2-3 of 3" in extraction.notices[0]


def test_an_empty_middle_page_is_named(tmp_path):
    pdf = make_pdf(tmp_path / "gap.pdf", ["Alpacas graze.", "", "Llamas carry loads.", "", ""])
    extraction = extract_file(pdf, max_file_mb=5)
    assert [d.metadata["page"] for d in extraction.documents] == [1, 3]
    hint = "(scanned images? OCR the PDF, e.g. with ocrmypdf, to index them)"
    assert extraction.notices == [f"no extractable text on pages 2, 4-5 of 5 {hint}"]


def test_scanned_pages_whose_text_layer_is_only_a_page_number_are_named(tmp_path):
    pdf = scan_pdf(
        tmp_path / "stamped.pdf",
        [
            ("A typed page about the grommet line and its weekly checks.", False),
            ("- 2 -", True),
            ("Figure 3: the grommet press after its weekly cleaning", True),  # a figure, captioned
            ("Page 4", True),
        ],
    )
    extraction = extract_file(pdf, max_file_mb=5)
    assert [d.metadata["page"] for d in extraction.documents] == [1, 2, 3, 4]  # nothing dropped
    (notice,) = extraction.notices
    assert (
        notice.startswith("almost no extractable text on pages 2, 4 of 4") and "'- 2 -'" in notice
    )


def test_a_page_that_fails_to_parse_is_skipped_with_a_notice(tmp_path, monkeypatch):
    from pypdf import PageObject

    original = PageObject.extract_text

    def damaged(self, *args, **kwargs):
        text = original(self, *args, **kwargs)
        if "broken" in text:
            raise KeyError("/Font")
        return text

    monkeypatch.setattr(PageObject, "extract_text", damaged)
    pdf = make_pdf(tmp_path / "damaged.pdf", ["Good page.", "A broken page.", "Good again."])
    extraction = extract_file(pdf, max_file_mb=5)
    assert [d.metadata["page"] for d in extraction.documents] == [1, 3]
    assert extraction.notices == [
        "page 2 of 3 could not be parsed and was not indexed (KeyError: '/Font')"
    ]


def test_a_whole_text_file_has_no_notices(tmp_path):
    note = tmp_path / "note.md"
    note.write_text("# Note\n\nAll of it is text.\n")
    assert extract_file(note, max_file_mb=5).notices == []


def test_handed_hidden_html_reports_what_was_left_out():
    extraction = extract_file(CASES / "hidden.html", max_file_mb=5)
    assert extraction.notices == ["6 hidden HTML elements were not indexed"]


@pytest.mark.parametrize(
    ("html", "notices"),
    [
        (
            (
                '<p>Shown.</p><p hidden>a</p><div style="display:none">b</div><i '
                'aria-hidden="true">c</i>'
            ),
            ["3 hidden HTML elements were not indexed"],
        ),
        (
            (
                "<style>.x{display:none}</style><p>Shown.</p><p class=x>gone</p><script>"
                "s</script><!--c-->"
            ),
            ["1 hidden HTML element was not indexed"],
        ),
        ("<p>All visible.</p><script>var a</script><template>t</template>", []),
    ],
)
def test_hidden_html_elements_are_counted_in_a_notice(tmp_path, html, notices):
    page = tmp_path / "page.html"
    page.write_text(html)
    assert extract_file(page, max_file_mb=5).notices == notices


def test_page_lists_fold_runs():
    assert page_list([2]) == "page 2"
    assert page_list([3, 2]) == "pages 2-3"
    assert page_list([1, 2, 3, 5, 7, 8]) == "pages 1-3, 5, 7-8"


# --- folder walk -----------------------------------------------------------------------


def test_the_walk_lists_every_path_it_passes_over(walk_tree, tmp_path):
    found = discover([walk_tree], EXTENSIONS)
    assert found.files == [
        (tmp_path / "elsewhere" / "linked.md").resolve(),
        (walk_tree / "sub" / "real.md").resolve(),
    ]
    reasons = _reasons(found.passed_over)
    assert set(reasons) == {"linked_folder", "gone.md", "loop.md", "pipe.txt"}
    assert reasons["linked_folder"].startswith("symlinked folder not followed")
    assert str(tmp_path / "elsewhere") in reasons["linked_folder"]
    assert (
        reasons["gone.md"].startswith("dangling symlink")
        and "no-such-target.md" in reasons["gone.md"]
    )
    assert reasons["loop.md"] == "symlink loop"
    assert reasons["pipe.txt"].startswith("not a regular file")
    assert found.failed == []


def test_given_paths_that_cannot_be_ingested_fail_with_the_reason(tmp_path):
    (tmp_path / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    os.mkfifo(tmp_path / "fifo.md")
    found = discover(
        [tmp_path / "dangling.md", tmp_path / "fifo.md", tmp_path / "absent"], EXTENSIONS
    )
    reasons = _reasons(found.failed)
    assert reasons["dangling.md"].startswith("dangling symlink")
    assert reasons["fifo.md"] == "not a regular file or folder"
    assert reasons["absent"] == "no such file or folder"


def test_a_symlinked_folder_given_by_its_path_is_walked(walk_tree):
    found = discover([walk_tree / "linked_folder"], EXTENSIONS)
    assert [p.name for p in found.files] == ["linked.md"]


# --- pipeline, API, CLI, Documents tab -------------------------------------------------


def test_pipeline_adds_the_handed_pdf_with_a_notice(pipeline):
    report = pipeline.ingest([MIXED], "scans", show_progress=False)
    (result,) = report.files
    assert (result.status, result.chunks) == ("added", 1)
    assert "no extractable text on pages 2-3 of 3" in result.notices[0]
    assert report.to_dict()["files"][0]["notices"] == result.notices
    again = pipeline.ingest([MIXED], "scans", show_progress=False)
    assert again.files[0].status == "skipped" and again.files[0].notices == []


def test_pipeline_reports_passed_over_paths(pipeline, walk_tree):
    report = pipeline.ingest([walk_tree], "walk", show_progress=False)
    assert report.count("added") == 2 and report.count("failed") == 0
    listed = report.to_dict()["passed_over"]
    assert {os.path.basename(p["path"]) for p in listed} == {
        "linked_folder",
        "gone.md",
        "loop.md",
        "pipe.txt",
    }
    assert all(p["reason"] for p in listed)


def test_an_unlistable_folder_fails_and_prune_keeps_its_files(pipeline, tmp_path, monkeypatch):
    root = tmp_path / "docs"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "kept.md").write_text("# Kept\n\nThis file must survive a prune.\n")
    (root / "open.md").write_text("# Open\n\nReadable.\n")
    pipeline.ingest([root], "locked", show_progress=False)
    real_scandir = os.scandir

    def scandir(path="."):  # the tests run as root, which chmod 000 cannot stop
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = pipeline.ingest([root], "locked", prune=True, show_progress=False)
    failed = {os.path.basename(r.path): r.reason for r in report.files if r.status == "failed"}
    assert failed == {"locked": "cannot read folder: Permission denied"}
    assert report.count("pruned") == 0
    collection = pipeline.store.collection("locked", embedding_model=pipeline.embedder.name)
    assert str((root / "locked" / "kept.md").resolve()) in collection.sources()


def test_api_ingest_returns_the_notices(make_settings, embedder, tmp_path):
    from tests.unit.test_api import make_client

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea.\n")
    client = make_client(make_settings, embedder, corpus)
    files = [("files", ("mixed_scanned.pdf", MIXED.read_bytes(), "application/pdf"))]
    response = client.post("/v1/ingest", files=files, data={"collection": "scans"})
    assert response.status_code == 200, response.text
    stored = response.json()["files"][0]
    assert stored["status"] == "added" and "pages 2-3 of 3" in stored["notices"][0]
    assert response.json()["passed_over"] == []


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "fake")
    return tmp_path


def test_cli_prints_the_notice_and_json_carries_it(cli_env):
    result = runner.invoke(cli, ["ingest", str(MIXED), "--collection", "scans"])
    assert result.exit_code == 0, result.output
    assert f"notice: {MIXED.resolve()}: no extractable text on pages 2-3 of 3" in result.output
    assert "added 1" in result.output and "1 file(s) read in part" in result.output
    (cli_env / "copy.pdf").write_bytes(MIXED.read_bytes())
    report = json.loads(
        runner.invoke(cli, ["ingest", str(cli_env / "copy.pdf"), "-c", "scans", "--json"]).output
    )
    (entry,) = report["files"]
    assert entry["status"] == "added" and "pages 2-3 of 3" in entry["notices"][0]


def test_cli_lists_passed_over_paths(cli_env, walk_tree):
    result = runner.invoke(cli, ["ingest", str(walk_tree), "--collection", "walk"])
    assert result.exit_code == 0, result.output
    assert f"passed over: {walk_tree / 'gone.md'}: dangling symlink" in result.output
    assert (
        f"passed over: {walk_tree / 'linked_folder'}: symlinked folder not followed"
        in result.output
    )
    assert "4 path(s) passed over" in result.output


def test_documents_tab_shows_notices_and_passed_over_paths(make_settings, embedder, walk_tree):
    settings = make_settings()
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    summary, rows = ingest_files(
        pipeline, settings, [str(MIXED)], str(walk_tree), "tab", "structure"
    )
    by_file = {r[0]: r for r in rows}
    assert by_file["mixed_scanned.pdf"][1] == "added"
    assert "no extractable text on pages 2-3 of 3" in by_file["mixed_scanned.pdf"][4]
    assert "mixed_scanned.pdf: no extractable text on pages 2-3 of 3" in summary
    passed = {os.path.basename(r[0]): r[3] for r in rows if r[1] == "passed over"}
    assert set(passed) == {"linked_folder", "gone.md", "loop.md", "pipe.txt"}
    assert "4 path(s) passed over" in summary
    assert all(len(r) == 5 for r in rows)
