"""Stop a generated answer that has started to repeat itself.

Small models, asked about retrieved text, sometimes fall into a loop ("The answer is:
The answer is: ...") and keep going until the token limit. The guard watches the text
as it streams and ends the stream once its tail repeats word n-grams.

What it measures: the text is split into words (``words``: runs of letters and digits,
lower-cased; each CJK character is a word of its own, since those scripts do not put
spaces between words). Over the last ``window`` words the guard computes the share of
distinct word n-grams (``distinct_ngram_ratio``, the "distinct-n" of Li et al. 2016,
arXiv:1510.03055, over a sliding window). Ordinary prose, lists and code keep this near
1.0; a loop with a period of p words drives it towards p / window. Once at least
``min_words`` words have streamed and the ratio drops below ``min_distinct``, the delta
that completed the repeat is dropped and the stream ends (the upstream generator is
closed, which aborts the request in vLLM). Loops with a period longer than about half
the window are not caught; the decoding penalties (``generator.frequency_penalty``) are
the first defence, this is the safety net. The default threshold, 0.6, is the line of
the degeneration metric (``evals.metrics.degeneration.DEGENERATE_BELOW``): at 0.5 a
15-word sentence said twice streamed on to its third time before the guard stopped it.
``words`` and ``distinct_ngram_ratio`` are those of the degeneration metric
(``evals.metrics.degeneration``, which defines them), so the guard and the metric count
the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from evals.metrics.degeneration import distinct_ngram_ratio, words

log = logging.getLogger(__name__)

_TAIL_CHARS_PER_WORD = 24  # characters re-read per window word; longer "words" are rare


@dataclass(frozen=True)
class RepetitionGuard:
    """Thresholds of the loop check (settings ``generator.loop_guard_*``).

    ``ngram``: n of the word n-grams; ``window``: words looked back over; ``min_words``:
    words that must have streamed before the check starts; ``min_distinct``: the stream
    stops when the window's distinct n-gram share falls below this (0 disables the guard).
    """

    ngram: int = 4
    window: int = 96
    min_words: int = 16
    min_distinct: float = 0.6

    @property
    def enabled(self) -> bool:
        """False when ``min_distinct`` is 0: the guard passes everything through."""
        return self.min_distinct > 0

    def looping(self, text: str) -> bool:
        """True when the tail of ``text`` repeats itself (see the module docstring)."""
        if not self.enabled:
            return False
        span = self.window * _TAIL_CHARS_PER_WORD
        tail = words(text[-span:])
        if len(text) > span:
            tail = tail[1:]  # the first word may be cut in half
        tail = tail[-self.window :]
        return (
            len(tail) >= self.min_words
            and distinct_ngram_ratio(tail, self.ngram) < self.min_distinct
        )

    def guard(self, deltas: Iterable[str]) -> Iterator[str]:
        """Yield ``deltas`` until the text they form starts to loop, then stop.

        The delta that completed the repeat is not yielded. ``deltas`` is closed when the
        guard stops early or its consumer does, so a streaming request is aborted.
        """
        if not self.enabled:
            yield from deltas
            return
        source = iter(deltas)
        text = ""
        try:
            for delta in source:
                text += delta
                if self.looping(text):
                    log.info("stopped a repeating answer after %d words", len(words(text)))
                    return
                yield delta
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
