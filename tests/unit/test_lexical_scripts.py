"""Lexical search in every script (issue 15, kind 6) and queries normalised like ingested text
(kind 2, query side): CJK bigrams, a stemmer per language or none, the sidecar rebuilt when
its tokenizer changes, and queries typed with ligatures or full-width forms."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from app.cli.main import cli
from app.components import build_ingest_pipeline, build_retrievers, build_store
from app.settings import SettingsError
from indexing.bm25_tokens import Bm25Tokenizer
from indexing.lexical import MetadataFilter
from indexing.retrieval import make_retriever
from tests.conftest import REPO

CASES = REPO / "tests/data/cases/ingest"
LIGATURE_FILES = {"ligatures.pdf", "ligatures_control.txt"}


def _ingest(make_settings, embedder, paths, collection="notes", **indexing):
    settings = make_settings(indexing=indexing) if indexing else make_settings()
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    report = pipeline.ingest(paths, collection, show_progress=False)
    assert report.count("failed") == 0, report.to_dict()
    return settings, build_retrievers(settings, pipeline.store, embedder)


@pytest.fixture
def cjk(make_settings, embedder, tmp_path):
    folder = tmp_path / "cjk"
    shutil.copytree(CASES / "cjk", folder)
    (folder / "ko.txt").write_text(
        "서버실의 열쇠는 총무부 금고에 보관되어 있습니다. 대출에는 과장의 승인이 필요합니다.\n"
    )
    (folder / "mixed.md").write_text(
        "# ragtune 설정\n\nragtune的配置文件是settings.yaml。Running servers 需要重启。\n"
    )
    (folder / "th.txt").write_text("ห้องเซิร์ฟเวอร์อยู่ชั้นสาม กุญแจอยู่ที่ฝ่ายธุรการ\n")
    (folder / "en.txt").write_text("The cooling tower filter is replaced every three months.\n")
    return _ingest(make_settings, embedder, [folder], "cjk")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("过滤网", "zh.md"),  # the handed case
        ("访客登记", "zh.md"),
        ("総務部の金庫", "ja.txt"),  # the handed case
        ("サーバー室", "ja.txt"),
        ("서버실 열쇠", "ko.txt"),  # Korean: particles glued to the words
        ("ragtune 配置", "mixed.md"),  # Latin and CJK in one query
        ("run 重启", "mixed.md"),  # Latin words keep stemming next to CJK
        ("กุญแจ", "th.txt"),  # Thai, no spaces either
    ],
)
def test_bm25_matches_text_without_spaces(cjk, query, expected):
    _, retrievers = cjk
    found = retrievers["bm25"].retrieve(query, "cjk", 3)
    assert found and found[0].file_name == expected


def test_hybrid_gets_a_lexical_share_for_cjk(cjk):
    _, retrievers = cjk
    hybrid = retrievers["hybrid"]
    dense_only = make_retriever("hybrid", hybrid.store, hybrid.embedder, alpha=1.0)
    fused = {c.chunk_id: c.score for c in hybrid.retrieve("过滤网", "cjk", 10)}
    dense = {c.chunk_id: c.score for c in dense_only.retrieve("过滤网", "cjk", 10)}
    (hit,) = retrievers["bm25"].retrieve("过滤网", "cjk", 3)
    assert hit.file_name == "zh.md"
    lexical_share = fused[hit.chunk_id] - hybrid.alpha * dense[hit.chunk_id]
    assert lexical_share == pytest.approx(1.0 - hybrid.alpha, abs=1e-4)  # BM25's best, normalised


def test_ask_bm25_retrieve_only_finds_the_chinese_source(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "fake")
    runner = CliRunner()
    ingested = runner.invoke(cli, ["ingest", str(CASES / "cjk"), "--collection", "cjk"])
    assert ingested.exit_code == 0, ingested.output
    result = runner.invoke(
        cli, ["ask", "过滤网", "-c", "cjk", "--retriever", "bm25", "--retrieve-only", "--json"]
    )
    assert result.exit_code == 0, result.output
    sources = json.loads(result.output)["sources"]
    assert [s["source"].rsplit("/", 1)[-1] for s in sources] == ["zh.md"]


def test_english_tokens_are_what_bm25s_gave_before():
    """The retrieval benchmark's English ranking must not move: same terms as bm25s's default."""
    import bm25s
    import Stemmer

    text = (REPO / "docs/evaluation.md").read_text()  # English only (retrieval.md now quotes CJK)
    before = bm25s.tokenize(
        [text],
        stopwords="en",
        stemmer=Stemmer.Stemmer("english").stemWords,
        return_ids=False,
        show_progress=False,
    )[0]
    assert Bm25Tokenizer("english").tokenize(text) == before


def test_tokenizer_bigrams_and_unigrams():
    tokens = Bm25Tokenizer("none").tokenize("过滤网 水 サーバー ﬁnal ＡＢＣ")
    assert tokens == ["final", "abc", "过滤", "滤网", "水", "サー", "ーバ", "バー"]


def test_language_none_keeps_running_and_run_apart(make_settings, embedder, tmp_path):
    (tmp_path / "a.txt").write_text("The servers were running all night.\n")
    (tmp_path / "b.txt").write_text("Each job has one run per day.\n")
    paths = [tmp_path / "a.txt", tmp_path / "b.txt"]
    _, stemmed = _ingest(make_settings, embedder, paths, "stem")
    assert {c.file_name for c in stemmed["bm25"].retrieve("run", "stem", 5)} == {"a.txt", "b.txt"}
    _, plain = _ingest(make_settings, embedder, paths, "plain", bm25_language="none")
    assert [c.file_name for c in plain["bm25"].retrieve("run", "plain", 5)] == ["b.txt"]
    assert [c.file_name for c in plain["bm25"].retrieve("running", "plain", 5)] == ["a.txt"]


def test_german_stemming_and_stop_words(make_settings, embedder, tmp_path):
    (tmp_path / "de.txt").write_text("Die Wartung der Kühltürme erfolgt vierteljährlich.\n")
    (tmp_path / "other.txt").write_text("Die Katze schläft.\n")
    _, retrievers = _ingest(make_settings, embedder, [tmp_path], "german", bm25_language="german")
    assert [c.file_name for c in retrievers["bm25"].retrieve("Kühlturm", "german", 5)] == ["de.txt"]
    assert retrievers["bm25"].retrieve("die der", "german", 5) == []  # stop words only


def test_changing_the_language_rebuilds_the_sidecar(make_settings, embedder, tmp_path):
    (tmp_path / "a.txt").write_text("The servers were running all night.\n")
    (tmp_path / "b.txt").write_text("Each job has one run per day.\n")
    settings, _ = _ingest(make_settings, embedder, [tmp_path], "notes")
    plain = make_settings(indexing={"bm25_language": "none"})
    store = build_store(plain)
    collection = store.collection("notes", embedding_model=embedder.name)
    assert store.lexical_index(collection).tokenizer.signature.endswith("/none")
    found = build_retrievers(plain, store, embedder)["bm25"].retrieve("run", "notes", 5)
    assert [c.file_name for c in found] == ["b.txt"]
    sidecar = settings.data_dir / "indexes" / "notes"
    assert (sidecar / "tokenizer").read_text().endswith("/none")
    (sidecar / "tokenizer").unlink()  # a sidecar from before tokenizers were recorded
    english = build_store(settings)
    assert english.lexical_index(collection).tokenizer.signature.endswith("/english")
    assert (sidecar / "tokenizer").read_text().endswith("/english")


def test_an_unknown_language_is_a_clear_settings_error(make_settings):
    with pytest.raises(SettingsError, match=r"indexing\.bm25_language.*'klingon'.*none.*english"):
        make_settings(indexing={"bm25_language": "klingon"})
    assert make_settings(indexing={"bm25_language": " German "}).indexing.bm25_language == "german"


@pytest.fixture
def ligatures(make_settings, embedder):
    paths = [CASES / "ligatures.pdf", CASES / "ligatures_control.txt"]
    return _ingest(make_settings, embedder, paths, "lig")[1]


@pytest.mark.parametrize(
    "query",
    [
        "efficient reflection final flow",  # the handed case, typed plainly
        "eﬃcient reﬂection ﬁnal ﬂow",  # typed with ligatures
        "ｅｆｆｉｃｉｅｎｔ\u00a0reflection\u200b ﬁnal ﬂow",  # full-width, no-break and zero-width
    ],
)
@pytest.mark.parametrize("kind", ["dense", "bm25", "hybrid"])
def test_both_retrievers_find_the_ligature_pdf(ligatures, query, kind):
    top = ligatures[kind].retrieve(query, "lig", 3)[0]
    # The PDF and the control hold the same text after normalisation: one result, both files.
    assert {top.file_name, *top.also_in_names} == LIGATURE_FILES


def test_dense_scores_the_pdf_like_the_control(ligatures):
    query = "efficient reflection final flow"
    pdf = ligatures["dense"].retrieve(query, "lig", 1, MetadataFilter(file_types=["pdf"]))[0]
    txt = ligatures["dense"].retrieve(query, "lig", 1, MetadataFilter(file_types=["txt"]))[0]
    assert pdf.file_name == "ligatures.pdf" and txt.file_name == "ligatures_control.txt"
    assert pdf.score == pytest.approx(txt.score, abs=0.02) and pdf.score > 0.25


def test_soft_hyphen_and_full_width_queries_match_bm25(ligatures):
    for query in ["zephyr\u00admode", "ＺＥＰＨＹＲＭＯＤＥ"]:
        top = ligatures["bm25"].retrieve(query, "lig", 1)
        assert top and {top[0].file_name, *top[0].also_in_names} == LIGATURE_FILES
