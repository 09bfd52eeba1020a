"""SMS length as carriers bill it: GSM-7 or UCS-2 encoding and the number of segments.

The drafting agent, the guardrails and the SMS sender all measure with it, before anyone pays;
the rules are those of the compliance reference (§2.1): 160/153 GSM-7 septets per single/multi-part
segment, extension characters count twice, one character outside GSM-7 switches the whole message to
UCS-2 at 70/67 UTF-16 code units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")  # sent as ESC + char: 2 septets each

# Typographic characters a model likes to write and that would switch a whole message to UCS-2.
_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u202f": " ",
        "\u2009": " ",
    }
)


@dataclass(frozen=True, slots=True)
class SmsSize:
    """How a text travels: its encoding, its length in that encoding's units, and the billed segments."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int


def normalize_typography(text: str) -> str:
    """Replace curly quotes, dashes, ellipses and odd spaces with their plain GSM-7 equivalents."""
    return text.translate(_TYPOGRAPHY)


def sms_size(text: str) -> SmsSize:
    """The encoding, length and segment count of ``text`` (0 segments for an empty text).

    May undercount by one near a segment boundary, where splitters will not cut an ESC pair or a
    surrogate pair; a budget of whole segments leaves room for that in practice.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        units = sum(2 if char in GSM7_EXTENSION else 1 for char in text)
        return SmsSize("GSM-7", units, _segments(units, single=160, multi=153))
    units = len(text.encode("utf-16-le")) // 2
    return SmsSize("UCS-2", units, _segments(units, single=70, multi=67))


def _segments(units: int, *, single: int, multi: int) -> int:
    if units == 0:
        return 0
    return 1 if units <= single else math.ceil(units / multi)
