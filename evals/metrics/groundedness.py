"""Groundedness: how much of an answer is supported by the sources it cites.

Definition (lexical, deterministic, no model):

1. The answer is split into sentences. Each sentence's citations are the markers
   ``[n]`` / ``[n, m]`` in it whose numbers name a source that was given (1-based, the
   order of the prompt). A sentence without a marker takes the citations of the next
   cited sentence of its paragraph (a marker at the end of a paragraph covers the
   paragraph); a sentence with none after it either is uncited.
2. A sentence's content words are its BM25 terms (``indexing.bm25_tokens``: lower-cased,
   stop words removed, Snowball-stemmed; character bigrams in unspaced scripts), the
   citation markers left out.
3. groundedness = (content words of all sentences found among the words of the sources
   that sentence cites) / (content words of all sentences). An uncited sentence
   contributes its words to the denominator only.

So 1.0 means every content word of the answer occurs in a source it cites, 0.0 that
the answer cites nothing (or cites sources that do not contain its words). It is
``None`` when no sources were given (zero-shot, few-shot, no-retrieval arms) or the
answer has no content words: the metric does not apply there. It measures lexical
support, not entailment: a cited source that contains the words of a false claim in
another order counts as support, and a correct paraphrase does not.
"""

from __future__ import annotations

import re
from functools import cache

from indexing.bm25_tokens import Bm25Tokenizer

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@cache
def _tokenizer(language: str) -> Bm25Tokenizer:
    return Bm25Tokenizer(language)


def _words(text: str, language: str) -> set[str]:
    return set(_tokenizer(language).tokenize(text))


def cited_sentences(answer: str, n_sources: int) -> list[tuple[str, list[int]]]:
    """(sentence without its markers, the 1-based source numbers it cites) in answer order.

    Markers naming no given source (``[7]`` with 3 sources) are ignored; see the module
    docstring for how an unmarked sentence inherits its paragraph's next citation.
    """
    out: list[tuple[str, list[int]]] = []
    for paragraph in _PARAGRAPH.split(answer):
        pending: list[str] = []
        for sentence in filter(str.strip, _SENTENCE.split(paragraph)):
            numbers = [
                int(n)
                for group in _CITATION.findall(sentence)
                for n in group.split(",")
                if 1 <= int(n) <= n_sources
            ]
            text = _CITATION.sub(" ", sentence)
            if numbers:
                out += [(p, numbers) for p in pending] + [(text, numbers)]
                pending = []
            else:
                pending.append(text)
        out += [(p, []) for p in pending]
    return out


def groundedness(answer: str, sources: list[str], language: str = "english") -> float | None:
    """Share of the answer's content words found in the sources its sentences cite, 0..1.

    ``sources``: the texts given to the model, in prompt order (``[1]`` is the first);
    ``language``: the stemmer and stop words (``indexing.bm25_language``'s values). None
    when ``sources`` is empty or the answer has no content words.
    """
    if not sources:
        return None
    source_words = [_words(text, language) for text in sources]
    supported = total = 0
    for sentence, numbers in cited_sentences(answer, len(sources)):
        words = _words(sentence, language)
        cited = set().union(*(source_words[n - 1] for n in numbers)) if numbers else set()
        total += len(words)
        supported += len(words & cited)
    return supported / total if total else None
