"""Batch answers: many in flight, results in input order, one failure kept in its place."""

from __future__ import annotations

import random
import threading
import time

import pytest

from app.batch import answer_all, iter_answers
from evals.concurrency import map_in_order
from indexing.errors import RagtuneError


class Gauge:
    """Counts calls in flight and remembers the most at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def test_answers_come_back_in_input_order_with_the_concurrency_asked():
    gauge, delays = Gauge(), random.Random(0)
    pauses = {f"q{i}": delays.uniform(0.0, 0.03) for i in range(40)}

    def answer(question: str) -> str:
        with gauge:
            time.sleep(pauses[question])
        return question.upper()

    questions = list(pauses)
    assert answer_all(answer, questions, concurrency=8, progress=False) == [
        q.upper() for q in questions
    ]
    assert gauge.most == 8
    gauge.most = 0
    answer_all(answer, questions[:5], concurrency=1, progress=False)
    assert gauge.most == 1


def test_a_failed_question_keeps_its_place_and_the_others_are_answered():
    def answer(question: str) -> str:
        if question == "bad":
            raise RagtuneError("the engine refused 'bad'")
        return f"answer to {question}"

    results = answer_all(answer, ["a", "bad", "c"], concurrency=3, progress=False)
    assert results[0] == "answer to a" and results[2] == "answer to c"
    assert isinstance(results[1], RagtuneError) and "refused 'bad'" in str(results[1])


def test_a_bug_is_not_swallowed():
    def answer(question: str) -> str:
        raise TypeError("a bug")

    with pytest.raises(TypeError, match="a bug"):
        answer_all(answer, ["a", "b"], concurrency=2, progress=False)


def test_results_stream_out_before_the_slow_tail_finishes():
    release = threading.Event()

    def answer(question: str) -> str:
        if question == "slow":
            release.wait(5)
        return question

    stream = iter_answers(answer, ["fast", "slow"], concurrency=2, progress=False)
    assert next(stream) == "fast"  # yielded while "slow" still runs
    release.set()
    assert list(stream) == ["slow"]


def test_leaving_early_cancels_the_calls_not_started():
    started = []

    def work(item: int) -> int:
        started.append(item)
        time.sleep(0.02)
        return item

    stream = map_in_order(work, list(range(50)), concurrency=2)
    assert next(stream) == 0
    stream.close()
    assert len(started) < 10


def test_the_progress_bar_counts_answers_and_failures(capsys):
    def answer(question: str) -> str:
        if question == "x":
            raise RagtuneError("no")
        return question

    answer_all(answer, ["a", "x", "b"], concurrency=2, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "failed=1" in err
