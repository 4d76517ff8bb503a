"""Many questions answered at once, so the engine batches them: ``ragtune ask --file``, compare.

A vLLM server batches the requests it has in flight; one question at a time leaves it
mostly idle (docs/performance.md measures the difference). The pool is the eval runner's
(``evals.concurrency.map_in_order``); this module adds what a front end needs on top: answers
in input order, a progress bar, and one question's failure kept as its result instead of
ending the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from tqdm import tqdm

from evals.concurrency import DEFAULT_CONCURRENCY, map_in_order
from indexing.errors import RagtuneError

T = TypeVar("T")


def iter_answers(
    answer: Callable[[str], T],
    questions: list[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
    desc: str = "answers",
) -> Iterator[T | RagtuneError]:
    """``answer(question)`` for each question, ``concurrency`` at a time, yielded in input order.

    Each result is yielded as soon as it and all earlier ones are done. A question whose
    answer raises a ``RagtuneError`` (the user's or the engine's problem: a bad request, the
    engine down) yields that error in its place and the others go on; any other exception
    is a bug and ends the batch. ``progress`` shows a tqdm bar on stderr counting finished
    answers, with the failures so far.
    """
    failed = 0
    lock = threading.Lock()
    bar = tqdm(total=len(questions), desc=desc, unit="q", disable=not progress)

    def one(question: str) -> T | RagtuneError:
        nonlocal failed
        try:
            result: T | RagtuneError = answer(question)
        except RagtuneError as exc:
            result = exc
            with lock:
                failed += 1
                bar.set_postfix(failed=failed, refresh=False)
        bar.update()
        return result

    try:
        yield from map_in_order(one, questions, concurrency=concurrency)
    finally:
        bar.close()


def answer_all(
    answer: Callable[[str], T],
    questions: list[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
) -> list[T | Exception]:
    """Every question's answer (or its ``RagtuneError``) in input order; see ``iter_answers``."""
    return list(iter_answers(answer, questions, concurrency=concurrency, progress=progress))
