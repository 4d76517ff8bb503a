"""Text as a reader sees it: one normalisation for ingested text and for queries.

Applied to every file's text before any parsing (so Markdown and HTML structure is read
from normalised lines) and to every query, so both retrievers compare like with like:

- line endings: CRLF and lone CR become LF;
- Unicode NFKC (compatibility composition): ligatures (U+FB01 "ﬁ" -> "fi"), full-width
  forms ("ＡＢＣ" -> "ABC"), non-breaking and other special spaces -> a plain space,
  superscripts and the like to their plain forms;
- invisible format characters are removed: soft hyphen (U+00AD), zero-width space, joiner
  and non-joiner (U+200B-U+200D), word joiner (U+2060) and the byte-order mark (U+FEFF).
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_LINE_ENDINGS = re.compile(r"\r\n?")


def normalize_text(text: str) -> str:
    """``text`` with LF line endings, NFKC-normalised, without invisible format characters.

    Idempotent: ``normalize_text(normalize_text(t)) == normalize_text(t)``.
    """
    text = _LINE_ENDINGS.sub("\n", text)
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
