"""A/B votes: storage rules, Bradley-Terry leaderboard, preference export."""

from __future__ import annotations

import json

import pytest

from evals.votes import VoteError, VoteStore, bradley_terry


def test_bradley_terry_orders_by_wins_and_is_symmetric():
    games = [("x", "y", "a")] * 3 + [("x", "y", "b")]
    ratings = bradley_terry(games, ["x", "y"])
    assert ratings["x"] > 1000 > ratings["y"]
    even = bradley_terry([("x", "y", "a"), ("x", "y", "b")], ["x", "y"])
    assert even["x"] == pytest.approx(even["y"])
    assert bradley_terry([("x", "y", "tie")], ["x", "y"])["x"] == pytest.approx(1000)


def test_votes_leaderboard_and_export(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3")
    for outcome in ("a", "a", "b", "tie"):
        cid = store.add_comparison("q?", "rag", "zero-shot", "grounded [1]", "guess")
        store.vote(cid, outcome, "note")
    board = {row["variant"]: row for row in store.leaderboard()}
    assert board["rag"]["wins"] == 2 and board["rag"]["losses"] == 1 and board["rag"]["ties"] == 1
    assert board["rag"]["votes"] == 4 and board["rag"]["rating"] > board["zero-shot"]["rating"]
    low, high = board["rag"]["ci"]
    assert low < board["rag"]["rating"] < high  # a 95% interval with width, around the rating
    out = tmp_path / "prefs.jsonl"
    assert store.export_preferences(out) == 3
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {
        "prompt": "q?",
        "chosen": "grounded [1]",
        "rejected": "guess",
        "chosen_variant": "rag",
        "rejected_variant": "zero-shot",
        "comment": "note",
    }


def test_failed_or_repeated_votes_are_refused(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3")
    failed = store.add_comparison("q", "a", "b", "⚠️ server down", "ok", failed=True)
    with pytest.raises(VoteError, match="failed to generate"):
        store.vote(failed, "b")
    ok = store.add_comparison("q", "a", "b", "x", "y")
    store.vote(ok, "a")
    with pytest.raises(VoteError, match="already has a vote"):
        store.vote(ok, "b")
    with pytest.raises(VoteError, match="unknown outcome"):
        store.vote(store.add_comparison("q", "a", "b", "x", "y"), "maybe")
    assert len(store.voted()) == 1
