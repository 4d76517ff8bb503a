"""Answers that repeat themselves, and answers that recite the prompt's instruction.

Both are measured on words as ``words`` splits them (lower-cased letter/digit runs;
each CJK character a word), so punctuation, markdown and citation brackets neither hide
nor cause a repeat. ``words`` and ``distinct_ngram_ratio`` live here, with the metric they
define; the loop guard of chat answers (``app.generation.repetition``) uses the same two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+(?:[./:@-][^\W{_CJK}]+)*")  # a.b/c-d is one word

DEGENERATE_BELOW = 0.6  # share of distinct 4-grams under which an answer is degenerate
ECHO_WORDS = 8  # consecutive words shared with the instruction that make an echo


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``: letter/digit runs (joined across ``. / : @ -`` inside
    file names, URLs and identifiers, so a repeated path is one word), and CJK characters."""
    return _WORD.findall(text.lower())


def distinct_ngram_ratio(tokens: list[str], n: int = 4) -> float:
    """Distinct n-grams / all n-grams of ``tokens``, in [0, 1]; 1.0 when there are none.

    A sequence shorter than ``n`` has no n-grams and cannot repeat one, hence 1.0.
    """
    total = len(tokens) - n + 1
    if total <= 0:
        return 1.0
    return len({tuple(tokens[i : i + n]) for i in range(total)}) / total


def distinct_4gram_ratio(answer: str) -> float:
    """Distinct word 4-grams / all word 4-grams of the whole answer, in [0, 1].

    1.0 for an answer of fewer than 4 words (it has no 4-gram to repeat).
    """
    return distinct_ngram_ratio(words(answer), 4)


def degenerate(answer: str, threshold: float = DEGENERATE_BELOW) -> bool:
    """True when fewer than ``threshold`` (60%) of the answer's word 4-grams are distinct.

    "The answer is: The answer is: ..." scores about 0.1; ordinary answers 0.95-1.0.
    """
    return distinct_4gram_ratio(answer) < threshold


def degeneration_rate(answers: Iterable[str], threshold: float = DEGENERATE_BELOW) -> float:
    """Share of ``answers`` that are ``degenerate``, in [0, 1]; 0.0 for no answers.

    This is the rate of issue 15: an answer is degenerate when fewer than 60% of its word
    4-grams (counted over the whole answer) are distinct.
    """
    flags = [degenerate(a, threshold) for a in answers]
    return sum(flags) / len(flags) if flags else 0.0


def longest_shared_run(answer: str, instruction: str) -> int:
    """Length, in words, of the longest run of consecutive words found in both texts.

    Classic longest-common-substring dynamic programme over word sequences,
    O(len(answer) * len(instruction)) time, O(len(instruction)) memory.
    """
    a, b = words(answer), words(instruction)
    best, previous = 0, [0] * (len(b) + 1)
    for word in a:
        current = [0] * (len(b) + 1)
        for j, other in enumerate(b, 1):
            if word == other:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def echoes(answer: str, instruction: str, min_words: int = ECHO_WORDS) -> bool:
    """True when the answer recites the instruction: ``min_words`` (8) or more consecutive
    words of the answer appear, in the same order, in ``instruction``.

    ``instruction`` is every part of the prompt that is not the user's question or a
    source (system prompt, mode instruction, task line). Eight words is longer than the
    phrases an honest answer shares with an instruction ("do not know", "the sources").
    """
    return longest_shared_run(answer, instruction) >= min_words


def echo_rate(answers: Iterable[str], instruction: str, min_words: int = ECHO_WORDS) -> float:
    """Share of ``answers`` that ``echoes`` the instruction, in [0, 1]; 0.0 for no answers."""
    flags = [echoes(a, instruction, min_words) for a in answers]
    return sum(flags) / len(flags) if flags else 0.0
