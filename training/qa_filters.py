"""Quality filters for synthesised question/answer pairs, and near-duplicate grouping.

A generated pair is kept only if every check passes; the first check that fails names
the drop reason (``DROP_REASONS``, in the order they are checked):

- ``not_a_question``: the question neither ends with '?' nor starts with a wh-word or an
  auxiliary verb, or is shorter than ``min_question_words``;
- ``copies_chunk``: the question is (nearly) a sentence of the chunk, or the chunk;
- ``answer_in_question``: the answer's content words all appear in the question;
- ``answer_too_long``: the answer has more than ``max_answer_words`` words;
- ``unsupported``: too few of the answer's content words occur in the chunk, or the pair's
  embedding is too far from the chunk's;
- ``near_duplicate``: the question is a near-duplicate of a pair kept before it.

Content words are the BM25 terms of ``indexing.bm25_tokens`` (stop words removed,
stemmed); fuzzy string matching is rapidfuzz's (scores 0-100).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process, utils

from indexing.bm25_tokens import Bm25Tokenizer

DROP_REASONS = (
    "generator_error",  # counted by the caller: the request failed
    "malformed",  # counted by the caller: not a JSON object with a question and an answer
    "not_a_question",
    "copies_chunk",
    "answer_in_question",
    "answer_too_long",
    "unsupported",
    "near_duplicate",
)
_WH = ["what", "who", "whom", "whose", "which", "when", "where", "why", "how"]
_AUX = ["is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "should"]
_AUX += ["would", "will", "shall", "may", "might", "must", "has", "have", "had"]
QUESTION_WORDS = frozenset(_WH + _AUX)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_SPACE = re.compile(r"\s+")
FUZZY = utils.default_process  # lower case, punctuation and surrounding space removed


class QAFilterSettings(BaseModel):
    """Thresholds of the pair filters (the ``synth.filters`` settings)."""

    min_question_words: int = Field(3, ge=1, description="Shorter questions are not questions.")
    max_answer_words: int = Field(
        40, ge=1, description="Longer answers are dropped (answer_too_long); answers are short."
    )
    copy_ratio: float = Field(
        90,
        ge=0,
        le=100,
        description="A question this similar (rapidfuzz ratio, 0-100) to a sentence of its chunk, "
        "or to the chunk, copies it.",
    )
    answer_in_question_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Drop a pair when at least this share of the answer's content words is in the "
        "question.",
    )
    min_answer_support: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Share of the answer's content words (stemmed, no stop words) that must "
        "occur in its chunk.",
    )
    min_similarity: float = Field(
        0.3,
        ge=-1,
        le=1,
        description="Cosine similarity of the embedded 'question answer' to the embedded chunk "
        "needed (configured embedder); 0 or less turns the check off.",
    )
    near_duplicate_ratio: float = Field(
        90,
        ge=0,
        le=100,
        description="Questions this similar (rapidfuzz token_sort_ratio, 0-100) are "
        "near-duplicates: only the first is kept, and a dataset's splits keep such "
        "questions together.",
    )


@dataclass
class Candidate:
    """A generated pair before filtering, with the chunk it was written from."""

    question: str
    answer: str
    chunk: str


def normalize(text: str) -> str:
    """Lower-cased text with runs of white space as one space, for fuzzy matching."""
    return _SPACE.sub(" ", text).strip().lower()


def is_question(question: str, min_words: int = 3) -> bool:
    """True for text that ends with '?' or starts with a wh-word or an auxiliary verb."""
    words = question.split()
    if len(words) < min_words:
        return False
    first = words[0].strip("\"'¿(").lower()
    return question.rstrip().endswith("?") or first in QUESTION_WORDS


def copies_chunk(question: str, chunk: str, ratio: float) -> bool:
    """True when ``question`` is, up to ``ratio`` (0-100), a sentence of ``chunk`` or the chunk."""
    sentences = [s for s in _SENTENCE_END.split(chunk) if s.strip()]
    found = process.extractOne(
        question, [*sentences, chunk], scorer=fuzz.ratio, processor=FUZZY, score_cutoff=ratio
    )
    return found is not None


def term_share(part: str, whole: str, tokenizer: Bm25Tokenizer) -> float | None:
    """Share (0-1) of ``part``'s distinct content words that occur in ``whole``.

    None when ``part`` has no content words (only stop words, one-letter words, digits).
    """
    terms = set(tokenizer.tokenize(part))
    if not terms:
        return None
    return len(terms & set(tokenizer.tokenize(whole))) / len(terms)


class QAFilter:
    """Applies the checks to candidates; ``embedder`` (``indexing.embedding.Embedder`` or None)
    embeds pairs and chunks for the similarity check."""

    def __init__(
        self, settings: QAFilterSettings, embedder=None, tokenizer: Bm25Tokenizer | None = None
    ) -> None:
        self.settings = settings
        self.embedder = embedder if settings.min_similarity > 0 else None
        self.tokenizer = tokenizer or Bm25Tokenizer("english")

    def reason(self, pair: Candidate) -> str | None:
        """The first text check ``pair`` fails (a ``DROP_REASONS`` name), or None.

        The embedding check and the near-duplicate check need the other pairs: see ``apply``.
        """
        s = self.settings
        if not is_question(pair.question, s.min_question_words):
            return "not_a_question"
        if copies_chunk(pair.question, pair.chunk, s.copy_ratio):
            return "copies_chunk"
        in_question = term_share(pair.answer, pair.question, self.tokenizer)
        if in_question is None:
            in_question = 1.0 if normalize(pair.answer) in normalize(pair.question) else 0.0
        if in_question >= s.answer_in_question_share:
            return "answer_in_question"
        if len(pair.answer.split()) > s.max_answer_words:
            return "answer_too_long"
        support = term_share(pair.answer, pair.chunk, self.tokenizer)
        if support is None:
            support = 1.0 if normalize(pair.answer) in normalize(pair.chunk) else 0.0
        if support < s.min_answer_support:
            return "unsupported"
        return None

    def apply(self, pairs: list[Candidate]) -> tuple[list[int], Counter]:
        """Indices of the kept pairs (in input order) and the drops counted by reason."""
        verdicts = self.judge(pairs)
        kept = [i for i, why in enumerate(verdicts) if why is None]
        return kept, Counter(why for why in verdicts if why is not None)

    def judge(self, pairs: list[Candidate]) -> list[str | None]:
        """Each pair's drop reason (``DROP_REASONS``), or None when it is kept; a pair is
        a near-duplicate of an earlier kept one."""
        verdicts: list[str | None] = [self.reason(pair) for pair in pairs]
        passing = [i for i, why in enumerate(verdicts) if why is None]
        similar = self._similarities([pairs[i] for i in passing])
        kept_questions: list[str] = []
        for index, similarity in zip(passing, similar):
            question = pairs[index].question
            if similarity < self.settings.min_similarity:
                verdicts[index] = "unsupported"
            elif kept_questions and process.extractOne(
                question,
                kept_questions,
                scorer=fuzz.token_sort_ratio,
                processor=FUZZY,
                score_cutoff=self.settings.near_duplicate_ratio,
            ):
                verdicts[index] = "near_duplicate"
            else:
                kept_questions.append(question)
        return verdicts

    def _similarities(self, pairs: list[Candidate]) -> list[float]:
        """Cosine of each pair's 'question answer' to its chunk (1.0 each when the check is off)."""
        if self.embedder is None or not pairs:
            return [1.0] * len(pairs)
        asked = self.embedder.embed([f"{p.question} {p.answer}" for p in pairs])
        chunks = self.embedder.embed([p.chunk for p in pairs])
        return [float(v) for v in np.sum(asked * chunks, axis=1)]


def near_duplicate_groups(questions: list[str], ratio: float) -> list[int]:
    """A group label per question: near-duplicates (token_sort_ratio >= ``ratio``, 0-100),
    directly or through a chain of them, share one. Labels are 0..groups-1."""
    if not questions:
        return []
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    scores = process.cdist(
        questions,
        questions,
        scorer=fuzz.token_sort_ratio,
        processor=FUZZY,
        score_cutoff=ratio,
        dtype=np.uint8,
    )
    _, labels = connected_components(csr_matrix(scores > 0), directed=False)
    return [int(label) for label in labels]
