"""A/B votes: stored in SQLite, turned into a leaderboard and into preference pairs.

Each comparison (one question, two variants, their answers) is stored when both answers
are done; a vote refers to it. A comparison where either answer failed cannot be voted
on. Ratings are Bradley-Terry strengths fitted by the MM algorithm (Hunter, 2004), shown
on the Elo scale, with 95% intervals from a bootstrap over votes.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from indexing.errors import RagtuneError

OUTCOMES = ("a", "b", "tie", "both_bad")
# Older files also have comparisons.sources_a/sources_b (always "[]"): left there, never read.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS comparisons (
    id INTEGER PRIMARY KEY, created REAL, question TEXT, variant_a TEXT, variant_b TEXT,
    answer_a TEXT, answer_b TEXT, failed INTEGER, blind INTEGER);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY, comparison_id INTEGER UNIQUE REFERENCES comparisons(id),
    outcome TEXT, comment TEXT, created REAL);
"""


class VoteError(RagtuneError, ValueError):
    """A vote that cannot be recorded; the message says why."""


class VoteStore:
    """Comparisons and votes in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def add_comparison(
        self,
        question: str,
        variant_a: str,
        variant_b: str,
        answer_a: str,
        answer_b: str,
        *,
        failed: bool = False,
        blind: bool = True,
    ) -> int:
        """Store a finished comparison; return its id."""
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "INSERT INTO comparisons (created, question, variant_a, variant_b, answer_a, "
                "answer_b, failed, blind) VALUES (?,?,?,?,?,?,?,?)",
                (
                    time.time(),
                    question,
                    variant_a,
                    variant_b,
                    answer_a,
                    answer_b,
                    int(failed),
                    int(blind),
                ),
            )
            return int(cursor.lastrowid)

    def vote(self, comparison_id: int, outcome: str, comment: str = "") -> None:
        """Record the vote on a comparison (once)."""
        if outcome not in OUTCOMES:
            raise VoteError(f"unknown outcome {outcome!r}; use one of {', '.join(OUTCOMES)}")
        with closing(self._connect()) as db, db:
            row = db.execute(
                "SELECT failed FROM comparisons WHERE id = ?", (comparison_id,)
            ).fetchone()
            if row is None:
                raise VoteError(f"no comparison {comparison_id}")
            if row["failed"]:
                raise VoteError(
                    "an answer of this comparison failed to generate; the vote is not recorded"
                )
            try:
                db.execute(
                    "INSERT INTO votes (comparison_id, outcome, comment, created) VALUES (?,?,?,?)",
                    (comparison_id, outcome, comment, time.time()),
                )
            except sqlite3.IntegrityError:
                raise VoteError("this comparison already has a vote") from None

    def voted(self) -> list[sqlite3.Row]:
        """Every voted comparison with its outcome."""
        with closing(self._connect()) as db:
            return db.execute(
                "SELECT c.*, v.outcome, v.comment FROM votes v JOIN comparisons c ON c.id = "
                "v.comparison_id ORDER BY v.id"
            ).fetchall()

    def leaderboard(self, resamples: int = 200, seed: int = 0) -> list[dict]:
        """Per variant: votes, wins, losses, ties, win rate, Bradley-Terry Elo with 95% CI."""
        games = [(r["variant_a"], r["variant_b"], r["outcome"]) for r in self.voted()]
        variants = sorted({v for a, b, _ in games for v in (a, b)})
        if not variants:
            return []
        ratings = bradley_terry(games, variants)
        rng = random.Random(seed)
        samples = {v: [] for v in variants}
        for _ in range(resamples if len(games) > 1 else 0):
            resampled = [games[rng.randrange(len(games))] for _ in games]
            for v, r in bradley_terry(resampled, variants).items():
                samples[v].append(r)
        rows = []
        for v in variants:
            mine = [(a, b, o) for a, b, o in games if v in (a, b)]
            wins = sum(1 for a, b, o in mine if (o == "a" and a == v) or (o == "b" and b == v))
            ties = sum(1 for _, _, o in mine if o in ("tie", "both_bad"))
            ordered = sorted(samples[v])
            ci = (
                [ordered[int(0.025 * len(ordered))], ordered[int(0.975 * (len(ordered) - 1))]]
                if ordered
                else [ratings[v]] * 2
            )
            rows.append(
                {
                    "variant": v,
                    "votes": len(mine),
                    "wins": wins,
                    "losses": len(mine) - wins - ties,
                    "ties": ties,
                    "win_rate": round(wins / len(mine), 3) if mine else 0.0,
                    "rating": round(ratings[v], 1),
                    "ci": [round(c, 1) for c in ci],
                }
            )
        return sorted(rows, key=lambda r: r["rating"], reverse=True)

    def export_preferences(self, path: Path) -> int:
        """Write decided votes as ``{"prompt", "chosen", "rejected"}`` JSONL; return the count."""
        count = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for row in self.voted():
                if row["outcome"] not in ("a", "b") or row["answer_a"] == row["answer_b"]:
                    continue
                chosen, rejected = ("a", "b") if row["outcome"] == "a" else ("b", "a")
                record = {
                    "prompt": row["question"],
                    "chosen": row[f"answer_{chosen}"],
                    "rejected": row[f"answer_{rejected}"],
                    "chosen_variant": row[f"variant_{chosen}"],
                    "rejected_variant": row[f"variant_{rejected}"],
                    "comment": row["comment"] or "",
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        return count


def bradley_terry(
    games: list[tuple[str, str, str]], variants: list[str], iterations: int = 200
) -> dict[str, float]:
    """Bradley-Terry strengths by MM iterations, as Elo-scale ratings centred on 1000.

    A tie or "both bad" counts half a win to each side; every variant gets one virtual
    tie against a reference of equal strength, so unbeaten variants stay finite.
    """
    strength = {v: 1.0 for v in variants}
    wins = {v: 0.5 for v in variants}
    pairs: dict[tuple[str, str], float] = {}
    for a, b, outcome in games:
        if a == b:
            continue
        key = tuple(sorted((a, b)))
        pairs[key] = pairs.get(key, 0) + 1
        if outcome == "a":
            wins[a] += 1
        elif outcome == "b":
            wins[b] += 1
        else:
            wins[a] += 0.5
            wins[b] += 0.5
    for _ in range(iterations):
        updated = {}
        for v in variants:
            denominator = 1.0 / (strength[v] + 1.0)  # the virtual reference game
            for (a, b), n in pairs.items():
                if v in (a, b):
                    other = b if v == a else a
                    denominator += n / (strength[v] + strength[other])
            updated[v] = wins[v] / denominator
        strength = updated
    return {v: 1000 + 400 * math.log10(s) for v, s in strength.items()}
