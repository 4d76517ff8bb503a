"""BM25 tokenisation for every script: words where words are spaced, bigrams where not.

Scripts written without spaces between words (Chinese, Japanese and Thai; Korean spaces
words but glues particles onto them) give no useful words to a whitespace/``\\w+``
tokeniser: a whole sentence becomes one token that no query matches. Text in those
scripts (Han, Hiragana, Katakana, Hangul, Thai, Lao, Khmer, Myanmar) is cut into
overlapping character bigrams per run, a one-character run into a unigram: the scheme of
Lucene's CJKBigramFilter, which matches any word of two or more characters without a
dictionary ("过滤网" -> 过滤, 滤网, both found in "冷却塔的过滤网每三个月更换一次").

Other text is split into words of two or more word characters (bm25s's default pattern,
so English tokens are unchanged), lower-cased, stripped of the language's stop words and
stemmed with its Snowball stemmer (PyStemmer), or neither when the language is ``none``.
Every text is first normalised like ingested text (``indexing.normalize``), so a query
typed with ligatures or full-width forms gives the same tokens as the plain text.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache

import regex

from indexing.normalize import normalize_text

# Bump when the tokens change for the same text: sidecars built before are rebuilt.
SCHEME_VERSION = 2
NO_LANGUAGE = "none"

_BIGRAM_SCRIPTS = (
    r"[[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u30FC]&&\w]"
)
_WORD_RUN = regex.compile(r"\w+")
# Splits a non-ASCII run of word characters into bigram-script runs and words.
_SCRIPT_SPLIT = regex.compile(rf"(?V1)({_BIGRAM_SCRIPTS}+)|([\w--{_BIGRAM_SCRIPTS}]{{2,}})")
# PyStemmer algorithm -> bm25s stop-word list (languages bm25s has no list for get none).
_STOPWORD_LISTS = {
    "english": "EN",
    "porter": "EN",
    "danish": "DANISH",
    "dutch": "DUTCH",
    "dutch_porter": "DUTCH",
    "french": "FRENCH",
    "german": "GERMAN",
    "italian": "ITALIAN",
    "norwegian": "NORWEGIAN",
    "portuguese": "PORTUGUESE",
    "russian": "RUSSIAN",
    "spanish": "SPANISH",
    "swedish": "SWEDISH",
    "turkish": "TURKISH",
}


def languages() -> list[str]:
    """Valid values of ``indexing.bm25_language``: PyStemmer's algorithms and ``none``."""
    import Stemmer

    return [NO_LANGUAGE, *sorted(Stemmer.algorithms())]


def check_language(name: str) -> str:
    """``name`` lower-cased if it is a valid BM25 language.

    Raises ``ValueError`` naming the setting and listing the valid names otherwise.
    """
    value = name.strip().lower()
    if value not in languages():
        raise ValueError(
            f"unknown BM25 language {name!r} (setting indexing.bm25_language); use 'none' (no "
            f"stemming, no stop words) or a Snowball stemmer: {', '.join(languages()[1:])}"
        )
    return value


@cache
def _stop_words(language: str) -> frozenset[str]:
    import bm25s.stopwords

    listed = _STOPWORD_LISTS.get(language)
    return frozenset(getattr(bm25s.stopwords, f"STOPWORDS_{listed}")) if listed else frozenset()


@dataclass(frozen=True)
class Bm25Tokenizer:
    """Text -> BM25 terms for one language setting (see the module docstring).

    Raises ``ValueError`` for an unknown ``language``.
    """

    language: str = "english"

    def __post_init__(self) -> None:
        object.__setattr__(self, "language", check_language(self.language))
        object.__setattr__(self, "_local", threading.local())  # a Stemmer per thread

    @property
    def signature(self) -> str:
        """Recorded beside an index, e.g. ``bigram-v2/english``; another one means rebuild."""
        return f"bigram-v{SCHEME_VERSION}/{self.language}"

    @classmethod
    def from_signature(cls, signature: str) -> Bm25Tokenizer | None:
        """The tokenizer a signature describes; None for an older or unknown scheme."""
        scheme, _, language = signature.strip().partition("/")
        if scheme != f"bigram-v{SCHEME_VERSION}":
            return None
        try:
            return cls(language)
        except ValueError:
            return None

    def _stem(self, words: list[str]) -> list[str]:
        if self.language == NO_LANGUAGE or not words:
            return words
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import Stemmer

            stemmer = self._local.stemmer = Stemmer.Stemmer(self.language)
        return stemmer.stemWords(words)

    def tokenize(self, text: str) -> list[str]:
        """The terms of one text: stemmed words, then bigrams (order means nothing to BM25)."""
        stop = _stop_words(self.language)
        terms: list[str] = []
        words: list[str] = []
        for run in _WORD_RUN.findall(normalize_text(text).lower()):
            if run.isascii():  # the common case, without the slower script split
                if len(run) > 1 and run not in stop:
                    words.append(run)
                continue
            for script_run, word in _SCRIPT_SPLIT.findall(run):
                if word:
                    if word not in stop:
                        words.append(word)
                elif len(script_run) == 1:
                    terms.append(script_run)
                else:
                    terms.extend(script_run[i : i + 2] for i in range(len(script_run) - 1))
        return self._stem(words) + terms

    def tokenize_many(self, texts: list[str]) -> list[list[str]]:
        """``tokenize`` of each text."""
        return [self.tokenize(text) for text in texts]
