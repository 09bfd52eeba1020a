"""Text normalisation for creative the agents read: what a person cannot see is not let through.

Creative text ends up inside an LLM prompt, so anything invisible to the marketer who approved it is a
channel for indirect prompt injection (OWASP LLM01) or a poisoned library (LLM08). ``sanitize`` removes:

- **HTML comments** (``<!-- … -->``; an unterminated one runs to the end of the text, as a browser hides it);
- **zero-width characters** (U+200B–U+200D, U+2060–U+2064, U+FEFF, U+180E, the soft hyphen U+00AD);
- **bidirectional controls** (U+200E, U+200F, U+061C, U+202A–U+202E, U+2066–U+2069), which reorder what is shown;
- **tag characters** (U+E0000–U+E007F), invisible copies of ASCII used to smuggle instructions;
- **control characters** other than tab and newline (``\\r\\n`` and ``\\r`` become ``\\n``).

It then applies Unicode NFC (canonical composition only: NFKC would rewrite visible text such as ``™``).
Every removal is counted, so an import can report what it took out. Text that is visible stays as it is:
an instruction written in plain words is for the guardrails to catch, not for this module to hide.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# A comment alone on its line takes its line with it, so removing it leaves no blank gap.
_COMMENT_LINE = re.compile(r"^[ \t]*<!--.*?(?:-->|\Z)[ \t]*(?:\n|\Z)", re.DOTALL | re.MULTILINE)
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad")
_BIDI = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TAGS = range(0xE0000, 0xE0080)
_KEPT_CONTROLS = frozenset("\t\n")


@dataclass(frozen=True, slots=True)
class Stripped:
    """How many of each kind of invisible content one text had."""

    html_comments: int = 0
    zero_width: int = 0
    bidi_controls: int = 0
    tag_characters: int = 0
    control_characters: int = 0

    def __add__(self, other: Stripped) -> Stripped:
        return Stripped(*(getattr(self, name.name) + getattr(other, name.name) for name in fields(self)))

    @property
    def total(self) -> int:
        return sum(getattr(self, name.name) for name in fields(self))

    def describe(self) -> str:
        """``1 HTML comment, 2 zero-width characters`` — the non-zero counts, in a fixed order."""
        parts = [
            _counted(count, noun)
            for count, noun in (
                (self.html_comments, "HTML comment"),
                (self.zero_width, "zero-width character"),
                (self.bidi_controls, "bidi control"),
                (self.tag_characters, "invisible tag character"),
                (self.control_characters, "control character"),
            )
            if count
        ]
        return ", ".join(parts)


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def sanitize(text: str) -> tuple[str, Stripped]:
    """``text`` without invisible content, and what was removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    comments = len(_HTML_COMMENT.findall(text))
    text = _HTML_COMMENT.sub("", _COMMENT_LINE.sub("", text))
    kept: list[str] = []
    counts = {"zero_width": 0, "bidi_controls": 0, "tag_characters": 0, "control_characters": 0}
    for character in text:
        kind = _invisible_kind(character)
        if kind is None:
            kept.append(character)
        else:
            counts[kind] += 1
    return unicodedata.normalize("NFC", "".join(kept)), Stripped(html_comments=comments, **counts)


def _invisible_kind(character: str) -> str | None:
    if character in _ZERO_WIDTH:
        return "zero_width"
    if character in _BIDI:
        return "bidi_controls"
    if ord(character) in _TAGS:
        return "tag_characters"
    if unicodedata.category(character) == "Cc" and character not in _KEPT_CONTROLS:
        return "control_characters"
    return None


def clean(text: str) -> str:
    """``text`` sanitised, when only the result matters (retrieval applies this again as defence in depth)."""
    return sanitize(text)[0]
